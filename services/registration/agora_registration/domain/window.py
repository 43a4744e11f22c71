"""A span of time: when a session runs, and so the time a place in it claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Window:
    starts_at: datetime
    ends_at: datetime

    def overlaps(self, other: Window) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at

    def __str__(self) -> str:
        return f"{self.starts_at.isoformat(timespec='minutes')} to {self.ends_at:%H:%M}"
