"""What the agenda knows: editions, rooms, sessions, published versions and warnings.

The state ``evolve`` builds and ``decide`` reads; frozen, changed only by replacing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agora_events.contracts.agenda import EditionWorkshop, PersonRole, SessionKind, WorkshopRef

from .commands import Warning


@dataclass(frozen=True, slots=True)
class Edition:
    edition_id: str
    name: str
    host_city: str
    host_country: str
    start_date: date
    end_date: date
    time_zone: str
    theme: str | None = None
    workshops: tuple[EditionWorkshop, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def opens(self) -> datetime:
        return datetime.combine(self.start_date, time(0), self.zone)

    @property
    def closes(self) -> datetime:
        return datetime.combine(self.end_date + timedelta(days=1), time(0), self.zone)


@dataclass(frozen=True, slots=True)
class Room:
    room_id: str
    edition_id: str
    name: str
    capacity: int
    capacity_estimated: bool = False


@dataclass(frozen=True, slots=True)
class Assignment:
    person_id: str
    name: str
    role: PersonRole
    title: str | None = None


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """What a published version records of a session; the unit of a schedule diff."""

    session_id: str
    title: str
    kind: str
    workshop_number: int | None
    room_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int | None
    people: tuple[tuple[str, str, str, str | None], ...] = ()
    tentative: bool = False

    @property
    def placement(self) -> tuple[str, datetime, datetime]:
        return self.room_id, self.starts_at, self.ends_at

    @property
    def details(self) -> tuple[object, ...]:
        return (
            self.title,
            self.kind,
            self.workshop_number,
            self.capacity,
            self.people,
            self.tentative,
        )


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    edition_id: str
    kind: SessionKind
    title: str
    room_id: str
    starts_at: datetime
    ends_at: datetime
    workshop: WorkshopRef | None = None
    capacity: int | None = None
    people: tuple[Assignment, ...] = ()
    cancelled: bool = False
    tentative: bool = False
    time_source: str | None = None

    @property
    def label(self) -> str:
        if self.workshop is None:
            return self.title
        return f"Workshop {self.workshop.number}: {self.title}"

    def placement_is(self, room_id: str, starts_at: datetime, ends_at: datetime) -> bool:
        return (self.room_id, self.starts_at, self.ends_at) == (room_id, starts_at, ends_at)

    def person(self, person_id: str) -> Assignment | None:
        return next((p for p in self.people if p.person_id == person_id), None)

    def snapshot(self) -> SessionSnapshot:
        return SessionSnapshot(
            session_id=self.session_id,
            title=self.title,
            kind=self.kind,
            workshop_number=None if self.workshop is None else self.workshop.number,
            room_id=self.room_id,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            capacity=self.capacity,
            people=people_key(self.people),
            tentative=self.tentative,
        )


def people_key(people: Iterable[Assignment]) -> tuple[tuple[str, str, str, str | None], ...]:
    return tuple(sorted((p.person_id, p.role, p.name, p.title) for p in people))


@dataclass(frozen=True, slots=True)
class Release:
    version: int
    label: str
    sessions: Mapping[str, SessionSnapshot]


@dataclass(frozen=True, slots=True)
class Agenda:
    editions: Mapping[str, Edition] = field(default_factory=dict)
    rooms: Mapping[str, Room] = field(default_factory=dict)
    sessions: Mapping[str, Session] = field(default_factory=dict)
    releases: Mapping[str, Release] = field(default_factory=dict)
    labels: Mapping[str, frozenset[str]] = field(default_factory=dict)
    warnings: Mapping[str, Mapping[str, Warning]] = field(default_factory=dict)

    def live_sessions(self, edition_id: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.edition_id == edition_id and not s.cancelled]

    def snapshot(self, edition_id: str) -> dict[str, SessionSnapshot]:
        return {s.session_id: s.snapshot() for s in self.live_sessions(edition_id)}
