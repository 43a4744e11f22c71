"""What can be asked of the agenda: the command records and the ``Command`` union.

Plain frozen dataclasses, named in the imperative; ``Person`` and ``Warning`` are the values
some of them carry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeAlias

from agora_events.contracts.agenda import EditionWorkshop, PersonRole, SessionKind, WorkshopRef


@dataclass(frozen=True, slots=True)
class PlanEdition:
    edition_id: str
    name: str
    host_city: str
    host_country: str
    start_date: date
    end_date: date
    time_zone: str
    theme: str | None = None
    workshops: tuple[EditionWorkshop, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangeEditionDetails:
    edition_id: str
    name: str | None = None
    theme: str | None = None
    host_city: str | None = None
    host_country: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    time_zone: str | None = None
    workshops: tuple[EditionWorkshop, ...] | None = None


@dataclass(frozen=True, slots=True)
class AddRoom:
    room_id: str
    edition_id: str
    name: str
    capacity: int
    capacity_estimated: bool = False


@dataclass(frozen=True, slots=True)
class ChangeRoomCapacity:
    room_id: str
    capacity: int
    capacity_estimated: bool = False


@dataclass(frozen=True, slots=True)
class RenameRoom:
    room_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Person:
    """Someone on a session's panel, with the title stated for that session."""

    person_id: str
    name: str
    role: PersonRole
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleSession:
    session_id: str
    edition_id: str
    kind: SessionKind
    title: str
    room_id: str
    starts_at: datetime
    ends_at: datetime
    workshop: WorkshopRef | None = None
    capacity: int | None = None
    people: tuple[Person, ...] = ()
    tentative: bool = False
    """No source states the time: it is a placeholder (``time_source`` says whose)."""
    time_source: str | None = None


@dataclass(frozen=True, slots=True)
class MoveSession:
    """A new time and/or room. A new start without a new end keeps the session's length.

    An organiser's move fixes the time (``tentative`` False): moving a tentative session,
    even to where it is, confirms its time."""

    session_id: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    room_id: str | None = None
    tentative: bool = False


@dataclass(frozen=True, slots=True)
class ChangeSessionDetails:
    session_id: str
    title: str | None = None
    kind: SessionKind | None = None
    workshop: WorkshopRef | None = None
    clear_workshop: bool = False
    capacity: int | None = None
    clear_capacity: bool = False


@dataclass(frozen=True, slots=True)
class AssignPerson:
    session_id: str
    person: Person


@dataclass(frozen=True, slots=True)
class RemovePerson:
    session_id: str
    person_id: str


@dataclass(frozen=True, slots=True)
class CancelSession:
    session_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PublishSchedule:
    edition_id: str
    label: str
    published_at: datetime


@dataclass(frozen=True, slots=True)
class Warning:
    """A gap or contradiction in an edition's sources; ``values`` holds both facts."""

    session_id: str | None
    field: str
    message: str
    values: tuple[str, ...] = ()

    @property
    def warning_id(self) -> str:
        text = "\x1f".join([self.session_id or "", self.field, self.message, *self.values])
        return "dq-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ImportEdition:
    """Make the agenda hold an edition as a programme file describes it.

    Missing things are added and differing ones changed; cancelled sessions are left alone.
    Scheduled sessions of the edition that the file does not list are left alone too, unless
    ``cancel_missing`` is set: then they are cancelled, for ``MISSING_REASON``, in the same
    batch. Importing the same programme twice yields no events."""

    edition: PlanEdition
    rooms: tuple[AddRoom, ...] = ()
    sessions: tuple[ScheduleSession, ...] = ()
    warnings: tuple[Warning, ...] = ()
    cancel_missing: bool = False


Command: TypeAlias = (
    PlanEdition
    | ChangeEditionDetails
    | AddRoom
    | ChangeRoomCapacity
    | RenameRoom
    | ScheduleSession
    | MoveSession
    | ChangeSessionDetails
    | AssignPerson
    | RemovePerson
    | CancelSession
    | PublishSchedule
    | ImportEdition
)
