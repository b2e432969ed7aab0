"""Run a child command so that the stops its parent script gets reach it exactly once.

Its own module, importing nothing heavy, so that the ablation script's stop handling is tested
without loading the pipeline.
"""

from __future__ import annotations

import signal
import subprocess
from types import FrameType


def call_forwarding_stops(command: list[str]) -> int:
    """Run `command` and pass each Ctrl-C or SIGTERM this process gets on to it, then wait for its exit.

    The child gets its own session so that a terminal's Ctrl-C reaches it once, through here, and
    not twice (a second one would abort its clean-up); and a SIGTERM sent to this script alone (a
    scheduler, `kill`) still stops the batch, which then writes the index of what finished, so the
    ablation script's report covers it."""
    child = subprocess.Popen(command, start_new_session=True)

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
