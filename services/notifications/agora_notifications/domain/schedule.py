"""The retry schedule: exponential backoff with full jitter, bounded. Pure: the random draw
is passed in, so a test states the delays it expects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """After attempt ``n`` fails, wait ``base * factor**(n-1)`` capped at ``cap``, scaled by
    a jitter factor in ``[1 - jitter, 1]``; give up after ``attempts`` attempts.

    The default: 5 s, 10 s, 20 s, 40 s, … up to 1 h, 12 attempts in all (about 4.5 h)."""

    base: float = 5.0
    factor: float = 2.0
    cap: float = 3600.0
    attempts: int = 12
    jitter: float = 0.2

    def delay(self, attempt: int, draw: float) -> float | None:
        """Seconds to wait after attempt ``attempt`` failed (None: give up); ``draw`` is
        uniform in [0, 1)."""
        if attempt >= self.attempts:
            return None
        raw = min(self.cap, self.base * self.factor ** (attempt - 1))
        return raw * (1 - self.jitter * draw)

    def next_attempt(
        self, attempt: int, failed_at: datetime, draw: Callable[[], float]
    ) -> datetime | None:
        delay = self.delay(attempt, draw())
        return None if delay is None else failed_at + timedelta(seconds=delay)
