"""Errors that the command line reports as one line and a non-zero exit."""


class UserError(Exception):
    """A problem with what the user gave us; the message names the problem and the fix."""
