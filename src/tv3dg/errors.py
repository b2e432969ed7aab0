"""Errors that the command line reports as one line and a non-zero exit, and one-line warnings."""

import sys


class UserError(Exception):
    """A problem with what the user gave us; the message names the problem and the fix."""


def warn(message: str) -> None:
    """One line on stderr for something the user should know that does not stop the run."""
    print(f"tv3dg: warning: {message}", file=sys.stderr, flush=True)
