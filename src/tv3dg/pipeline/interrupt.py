"""Stopping a run between steps, from Ctrl-C or from a front end (the app's Stop button), and
treating a scheduler's SIGTERM as Ctrl-C where a command only needs to clean up.

The first request asks the loop to stop at the next step boundary (so the asset and checkpoint
are written from a consistent state); a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator


class StopRequest:
    """A stop flag the loop checks after each step.

    `request()` sets it from any thread; inside a `with` block on the main thread, Ctrl-C sets it
    too (a SIGINT handler is installed for the duration of the block).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: signal.Handlers | None = None
        self._installed = False

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        self._event.set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.request()

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (what Slurm, Kubernetes and `kill` send) raises KeyboardInterrupt, so
    the Ctrl-C clean-up runs for it too. Only on the main thread; elsewhere the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
