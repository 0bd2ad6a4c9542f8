"""Progress on a terminal for runs that take a while.

A one-line display on stderr, redrawn in place with a carriage return and erased at the end,
so what stays on the screen is the result. Nothing is written when the stream is not a
terminal (a log, a pipe, CI) or before the run has taken `delay` seconds: short runs stay
silent.

- `Progress(label, total)`: `update(done)` after each step shows `label done/total`.
- `Progress(label)` without a total, used as a context manager around one long call (an
  emulated run), shows `label 3 s` from a background thread until the call returns.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO


class Progress:
    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None, delay: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, interval: float = 0.1):
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        self.delay, self.clock, self.interval = delay, clock, interval
        self.start = clock()
        self.enabled = _is_terminal(self.stream)
        self.width = 0  # characters on the line now (0: nothing shown)
        self.text = ""
        self.last = -1.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def update(self, done: int) -> None:
        """Show `done` of `total` (at most every `interval` seconds, and the last step always)."""
        now = self.clock()
        if not self.enabled or now - self.start < self.delay:
            return
        if now - self.last < self.interval and done != self.total:
            return
        self.last = now
        self._show(f"{self.label} {done}/{self.total}" if self.total is not None else f"{self.label} {done}")

    def close(self) -> None:
        """Erase the line (if anything was shown) and stop the ticker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self.width:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
                self.width, self.text = 0, ""

    def __enter__(self) -> "Progress":
        if self.enabled and self.total is None:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            elapsed = self.clock() - self.start
            if elapsed >= self.delay:
                self._show(f"{self.label} {elapsed:.0f} s")

    def _show(self, text: str) -> None:
        with self._lock:
            if text == self.text:
                return
            self.text = text
            pad = " " * max(0, self.width - len(text))
            self.stream.write("\r" + text + pad)
            self.stream.flush()
            self.width = len(text)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
