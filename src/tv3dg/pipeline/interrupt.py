"""Ctrl-C between steps: the first press asks the loop to stop at the next step boundary (so the
asset and checkpoint are written from a consistent state); a second press aborts at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """Installs a SIGINT handler for the duration of a `with` block (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: signal.Handlers | None = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
