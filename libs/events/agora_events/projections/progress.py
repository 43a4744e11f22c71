"""Progress of a replay: position in the stream, events per second and time left, on stderr."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    def begin(self, label: str, first: int, last: int) -> None:
        """A replay of stream sequences ``first..last`` starts."""

    def advance(self, sequence: int, events: int) -> None:
        """The replay reached ``sequence`` after ``events`` more events."""

    def end(self) -> None: ...


class SilentProgress:
    def begin(self, label: str, first: int, last: int) -> None:
        pass

    def advance(self, sequence: int, events: int) -> None:
        pass

    def end(self) -> None:
        pass


TERMINAL_INTERVAL = 0.25
LOG_INTERVAL = 5.0


class StderrProgress:
    """A one-line bar redrawn at most every ``interval`` seconds on a terminal. When the
    output is not a terminal (a log, a CI job), a new line at most every 5 s instead, so the
    log stays readable."""

    def __init__(
        self, out: TextIO | None = None, *, interval: float | None = None, width: int = 24
    ):
        self._out = out or sys.stderr
        if interval is None:
            interval = TERMINAL_INTERVAL if self._out.isatty() else LOG_INTERVAL
        self._interval = interval
        self._width = width
        self._label = ""
        self._first = self._last = self._position = self._events = 0
        self._started = self._drawn = 0.0

    def begin(self, label: str, first: int, last: int) -> None:
        self._label, self._first, self._last = label, first, max(first, last)
        self._position, self._events = first, 0
        self._started = self._drawn = time.monotonic()
        self._draw(final=False)

    def advance(self, sequence: int, events: int) -> None:
        self._position = max(self._position, sequence)
        self._events += events
        if time.monotonic() - self._drawn >= self._interval:
            self._draw(final=False)

    def end(self) -> None:
        self._position = max(self._position, self._last)
        self._draw(final=True)

    def _draw(self, *, final: bool) -> None:
        self._drawn = time.monotonic()
        elapsed = max(self._drawn - self._started, 1e-9)
        span = max(self._last - self._first, 1)
        done = min(max(self._position - self._first, 0) / span, 1.0)
        rate = self._events / elapsed
        # The time left follows the pace through the stream's sequences, not the event count:
        # a projection reading some subjects of a stream skips the rest for free.
        eta = (elapsed / done - elapsed) if done > 0 else float("inf")
        filled = int(done * self._width)
        bar = "#" * filled + "-" * (self._width - filled)
        line = (
            f"{self._label} [{bar}] {done:6.1%} seq {self._position}/{self._last} "
            f"{self._events} events {rate:,.0f}/s "
            + (f"in {format_seconds(elapsed)}" if final else f"ETA {format_seconds(eta)}")
        )
        tty = self._out.isatty()
        ending = "\n" if final or not tty else ""
        self._out.write(("\r\x1b[2K" if tty else "") + line + ending)
        self._out.flush()


def format_seconds(seconds: float) -> str:
    if seconds == float("inf"):
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
