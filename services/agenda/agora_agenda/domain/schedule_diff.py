"""What changed between two published versions of a schedule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .state import SessionSnapshot


@dataclass(frozen=True, slots=True)
class ScheduleDiff:
    new: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.new or self.moved or self.cancelled or self.changed)


def diff(
    before: Mapping[str, SessionSnapshot], after: Mapping[str, SessionSnapshot]
) -> ScheduleDiff:
    """What happened to the sessions between two published versions, ordered by start time.

    A session absent from ``after`` was cancelled (sessions are never deleted). A session
    whose time or room changed is ``moved``; one whose other details changed is ``changed``;
    it can be both."""

    def ordered(ids: Iterable[str], side: Mapping[str, SessionSnapshot]) -> tuple[str, ...]:
        return tuple(sorted(ids, key=lambda i: (side[i].starts_at, i)))

    common = before.keys() & after.keys()
    return ScheduleDiff(
        new=ordered(after.keys() - before.keys(), after),
        moved=ordered((i for i in common if before[i].placement != after[i].placement), after),
        cancelled=ordered(before.keys() - after.keys(), before),
        changed=ordered((i for i in common if before[i].details != after[i].details), after),
    )
