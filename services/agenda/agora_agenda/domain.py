"""The agenda's rules, pure: commands, state, ``decide`` and ``evolve``. No I/O here.

One consistency scope holds the whole agenda (every edition, room and session), because the
rules span sessions: a room holds one session at a time and a person is in one session at a
time. ``decide`` works out the events of a command, folds them into a tentative state and
checks every rule the command could break on that state; the first breach refuses the command.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import TypeAlias, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agora_events.catalogue import ID_TOKEN, DomainEvent
from agora_events.contracts.agenda import (
    DataQualityWarningRecorded,
    DataQualityWarningWithdrawn,
    EditionDetailsChanged,
    EditionPlanned,
    PersonAssigned,
    PersonRemoved,
    PersonRole,
    RoomAdded,
    RoomCapacityChanged,
    RoomRenamed,
    SchedulePublished,
    SessionCancelled,
    SessionDetailsChanged,
    SessionKind,
    SessionMoved,
    SessionScheduled,
    WorkshopRef,
)
from agora_events.decider import Decider, InvalidCommand, InvariantViolated, NotFound

SESSION_KINDS: frozenset[str] = frozenset(get_args(SessionKind))
MAX_EVENTS_PER_COMMAND = 1000
"""A command's events are stored as one atomic batch, which JetStream caps at 1000."""
PERSON_ROLES: frozenset[str] = frozenset(get_args(PersonRole))
MISSING_REASON = "removed from the programme file"
"""Why an import with ``cancel_missing`` cancels a session its file no longer lists."""

# -- commands ------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class MoveSession:
    """A new time and/or room. A new start without a new end keeps the session's length."""

    session_id: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    room_id: str | None = None


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

# -- state ---------------------------------------------------------------------------------


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

    @property
    def placement(self) -> tuple[str, datetime, datetime]:
        return self.room_id, self.starts_at, self.ends_at

    @property
    def details(self) -> tuple[object, ...]:
        return self.title, self.kind, self.workshop_number, self.capacity, self.people


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


# -- schedule diffs ------------------------------------------------------------------------


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


# -- evolve --------------------------------------------------------------------------------


def evolve(state: Agenda, event: DomainEvent) -> Agenda:
    match event:
        case EditionPlanned():
            edition = Edition(
                edition_id=event.edition_id,
                name=event.name,
                theme=event.theme,
                host_city=event.host_city,
                host_country=event.host_country,
                start_date=event.start_date,
                end_date=event.end_date,
                time_zone=event.time_zone,
            )
            return replace(state, editions={**state.editions, edition.edition_id: edition})
        case EditionDetailsChanged():
            old = state.editions[event.edition_id]
            changes = {
                name: value
                for name in (
                    "name",
                    "theme",
                    "host_city",
                    "host_country",
                    "start_date",
                    "end_date",
                    "time_zone",
                )
                if (value := getattr(event, name)) is not None
            }
            edition = replace(old, **changes)
            return replace(state, editions={**state.editions, edition.edition_id: edition})
        case RoomAdded():
            room = Room(
                room_id=event.room_id,
                edition_id=event.edition_id,
                name=event.name,
                capacity=event.capacity,
                capacity_estimated=event.capacity_estimated,
            )
            return replace(state, rooms={**state.rooms, room.room_id: room})
        case RoomCapacityChanged():
            room = replace(
                state.rooms[event.room_id],
                capacity=event.new_capacity,
                capacity_estimated=event.capacity_estimated,
            )
            return replace(state, rooms={**state.rooms, room.room_id: room})
        case RoomRenamed():
            room = replace(state.rooms[event.room_id], name=event.new_name)
            return replace(state, rooms={**state.rooms, room.room_id: room})
        case SessionScheduled():
            session = Session(
                session_id=event.session_id,
                edition_id=event.edition_id,
                kind=event.kind,
                title=event.title,
                room_id=event.room_id,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                workshop=event.workshop,
                capacity=event.capacity,
            )
            return _with_session(state, session)
        case SessionMoved():
            session = replace(
                state.sessions[event.session_id],
                room_id=event.new_room_id,
                starts_at=event.new_starts_at,
                ends_at=event.new_ends_at,
            )
            return _with_session(state, session)
        case SessionDetailsChanged():
            session = state.sessions[event.session_id]
            workshop = session.workshop if event.workshop is None else event.workshop
            capacity = session.capacity if event.capacity is None else event.capacity
            session = replace(
                session,
                title=session.title if event.title is None else event.title,
                kind=session.kind if event.kind is None else event.kind,
                workshop=None if event.workshop_cleared else workshop,
                capacity=None if event.capacity_cleared else capacity,
            )
            return _with_session(state, session)
        case PersonAssigned():
            session = state.sessions[event.session_id]
            assignment = Assignment(event.person_id, event.name, event.role, event.title)
            others = tuple(p for p in session.people if p.person_id != event.person_id)
            if len(others) == len(session.people):
                people = (*session.people, assignment)
            else:
                people = tuple(
                    assignment if p.person_id == event.person_id else p for p in session.people
                )
            return _with_session(state, replace(session, people=people))
        case PersonRemoved():
            session = state.sessions[event.session_id]
            people = tuple(p for p in session.people if p.person_id != event.person_id)
            return _with_session(state, replace(session, people=people))
        case SessionCancelled():
            return _with_session(state, replace(state.sessions[event.session_id], cancelled=True))
        case SchedulePublished():
            release = Release(event.version, event.label, state.snapshot(event.edition_id))
            labels = state.labels.get(event.edition_id, frozenset()) | {event.label}
            return replace(
                state,
                releases={**state.releases, event.edition_id: release},
                labels={**state.labels, event.edition_id: labels},
            )
        case DataQualityWarningRecorded():
            warning = Warning(event.session_id, event.field, event.message, event.values)
            current = dict(state.warnings.get(event.edition_id, {}))
            current[event.warning_id] = warning
            return replace(state, warnings={**state.warnings, event.edition_id: current})
        case DataQualityWarningWithdrawn():
            current = dict(state.warnings.get(event.edition_id, {}))
            current.pop(event.warning_id, None)
            return replace(state, warnings={**state.warnings, event.edition_id: current})
    return state


def _with_session(state: Agenda, session: Session) -> Agenda:
    return replace(state, sessions={**state.sessions, session.session_id: session})


def fold(state: Agenda, events: Iterable[DomainEvent]) -> Agenda:
    for event in events:
        state = evolve(state, event)
    return state


# -- decide --------------------------------------------------------------------------------


def decide(state: Agenda, command: Command) -> list[DomainEvent]:
    """The events ``command`` yields on ``state``; raises Rejected when a rule forbids it."""
    if isinstance(command, ImportEdition):
        return _import(state, command)
    events = _events_for(state, command)
    if events:
        _check(fold(state, events), events)
    return events


def _events_for(state: Agenda, command: Command) -> list[DomainEvent]:
    match command:
        case PlanEdition():
            return _plan_edition(state, command)
        case ChangeEditionDetails():
            return _change_edition(state, command)
        case AddRoom():
            return _add_room(state, command)
        case ChangeRoomCapacity():
            return _change_capacity(state, command)
        case RenameRoom():
            return _rename_room(state, command)
        case ScheduleSession():
            return _schedule(state, command)
        case MoveSession():
            return _move(state, command)
        case ChangeSessionDetails():
            return _change_details(state, command)
        case AssignPerson():
            return _assign(state, command)
        case RemovePerson():
            return _remove(state, command)
        case CancelSession():
            return _cancel(state, command)
        case PublishSchedule():
            return _publish(state, command)
    raise TypeError(f"not an agenda command: {command!r}")


def _plan_edition(state: Agenda, command: PlanEdition) -> list[DomainEvent]:
    _check_id("edition id", command.edition_id)
    _check_text("name", command.name)
    _check_text("host city", command.host_city)
    _check_country(command.host_country)
    _check_zone(command.time_zone)
    _check_dates(command.start_date, command.end_date)
    existing = state.editions.get(command.edition_id)
    planned = Edition(
        edition_id=command.edition_id,
        name=command.name,
        theme=command.theme,
        host_city=command.host_city,
        host_country=command.host_country,
        start_date=command.start_date,
        end_date=command.end_date,
        time_zone=command.time_zone,
    )
    if existing == planned:
        return []
    if existing is not None:
        raise InvariantViolated(
            f"edition '{command.edition_id}' is already planned as '{existing.name}' "
            f"({existing.start_date} to {existing.end_date}); change its details instead"
        )
    return [
        EditionPlanned(
            edition_id=command.edition_id,
            name=command.name,
            theme=command.theme,
            host_city=command.host_city,
            host_country=command.host_country,
            start_date=command.start_date,
            end_date=command.end_date,
            time_zone=command.time_zone,
        )
    ]


def _change_edition(state: Agenda, command: ChangeEditionDetails) -> list[DomainEvent]:
    edition = _edition(state, command.edition_id)
    if command.time_zone is not None:
        _check_zone(command.time_zone)
    if command.host_country is not None:
        _check_country(command.host_country)
    for label, text in (("name", command.name), ("host city", command.host_city)):
        if text is not None:
            _check_text(label, text)
    _check_dates(command.start_date or edition.start_date, command.end_date or edition.end_date)
    changes = {
        name: value
        for name in (
            "name",
            "theme",
            "host_city",
            "host_country",
            "start_date",
            "end_date",
            "time_zone",
        )
        if (value := getattr(command, name)) is not None and value != getattr(edition, name)
    }
    if not changes:
        return []
    return [EditionDetailsChanged(edition_id=edition.edition_id, **changes)]


def _add_room(state: Agenda, command: AddRoom) -> list[DomainEvent]:
    _check_id("room id", command.room_id)
    _check_text("room name", command.name)
    _check_capacity(command.capacity)
    _edition(state, command.edition_id)
    existing = state.rooms.get(command.room_id)
    wanted = Room(
        command.room_id,
        command.edition_id,
        command.name,
        command.capacity,
        command.capacity_estimated,
    )
    if existing == wanted:
        return []
    if existing is not None:
        raise InvariantViolated(
            f"room id '{command.room_id}' is already used by '{existing.name}' "
            f"in edition '{existing.edition_id}'"
        )
    return [
        RoomAdded(
            room_id=command.room_id,
            edition_id=command.edition_id,
            name=command.name,
            capacity=command.capacity,
            capacity_estimated=command.capacity_estimated,
        )
    ]


def _change_capacity(state: Agenda, command: ChangeRoomCapacity) -> list[DomainEvent]:
    _check_capacity(command.capacity)
    room = _room(state, command.room_id)
    if (room.capacity, room.capacity_estimated) == (command.capacity, command.capacity_estimated):
        return []
    return [
        RoomCapacityChanged(
            room_id=room.room_id,
            edition_id=room.edition_id,
            old_capacity=room.capacity,
            new_capacity=command.capacity,
            capacity_estimated=command.capacity_estimated,
        )
    ]


def _rename_room(state: Agenda, command: RenameRoom) -> list[DomainEvent]:
    _check_text("room name", command.name)
    room = _room(state, command.room_id)
    if room.name == command.name:
        return []
    return [
        RoomRenamed(
            room_id=room.room_id,
            edition_id=room.edition_id,
            old_name=room.name,
            new_name=command.name,
        )
    ]


def _schedule(state: Agenda, command: ScheduleSession) -> list[DomainEvent]:
    _check_id("session id", command.session_id)
    _check_text("title", command.title)
    _check_kind(command.kind)
    if command.capacity is not None:
        _check_capacity(command.capacity)
    _check_times(command.starts_at, command.ends_at)
    edition = _edition(state, command.edition_id)
    _room_of_edition(state, command.room_id, edition)
    people = _distinct_people(command.people)
    existing = state.sessions.get(command.session_id)
    if existing is not None:
        if _same_session(existing, command):
            return []
        raise InvariantViolated(
            f"session id '{command.session_id}' is already used by '{existing.label}'"
        )
    zone = edition.zone
    events: list[DomainEvent] = [
        SessionScheduled(
            session_id=command.session_id,
            edition_id=command.edition_id,
            kind=command.kind,
            title=command.title,
            workshop=command.workshop,
            room_id=command.room_id,
            starts_at=command.starts_at.astimezone(zone),
            ends_at=command.ends_at.astimezone(zone),
            capacity=command.capacity,
        )
    ]
    events += [_assigned(command.session_id, command.edition_id, person) for person in people]
    return events


def _same_session(existing: Session, command: ScheduleSession) -> bool:
    return (
        existing.edition_id == command.edition_id
        and not existing.cancelled
        and (existing.kind, existing.title, existing.workshop, existing.capacity)
        == (command.kind, command.title, command.workshop, command.capacity)
        and existing.placement_is(command.room_id, command.starts_at, command.ends_at)
        and people_key(existing.people) == people_key(_assignment(p) for p in command.people)
    )


def _move(state: Agenda, command: MoveSession) -> list[DomainEvent]:
    session = _live_session(state, command.session_id, "moved")
    edition = state.editions[session.edition_id]
    if command.starts_at is not None and command.ends_at is not None:
        _check_times(command.starts_at, command.ends_at)
    for moment in (command.starts_at, command.ends_at):
        if moment is not None:
            _check_aware(moment)
    starts_at = command.starts_at or session.starts_at
    if command.ends_at is not None:
        ends_at = command.ends_at
    elif command.starts_at is not None:
        ends_at = command.starts_at + (session.ends_at - session.starts_at)
    else:
        ends_at = session.ends_at
    room_id = command.room_id or session.room_id
    _room_of_edition(state, room_id, edition)
    if session.placement_is(room_id, starts_at, ends_at):
        return []
    zone = edition.zone
    return [
        SessionMoved(
            session_id=session.session_id,
            edition_id=session.edition_id,
            old_room_id=session.room_id,
            new_room_id=room_id,
            old_starts_at=session.starts_at.astimezone(zone),
            old_ends_at=session.ends_at.astimezone(zone),
            new_starts_at=starts_at.astimezone(zone),
            new_ends_at=ends_at.astimezone(zone),
        )
    ]


def _change_details(state: Agenda, command: ChangeSessionDetails) -> list[DomainEvent]:
    session = _live_session(state, command.session_id, "changed")
    if command.title is not None:
        _check_text("title", command.title)
    if command.kind is not None:
        _check_kind(command.kind)
    if command.capacity is not None:
        _check_capacity(command.capacity)
    if command.clear_capacity and command.capacity is not None:
        raise InvalidCommand("give a capacity or clear it, not both")
    if command.clear_workshop and command.workshop is not None:
        raise InvalidCommand("give a workshop or clear it, not both")
    title = command.title if command.title not in (None, session.title) else None
    kind = command.kind if command.kind not in (None, session.kind) else None
    workshop = command.workshop if command.workshop not in (None, session.workshop) else None
    capacity = command.capacity if command.capacity not in (None, session.capacity) else None
    clear_workshop = command.clear_workshop and session.workshop is not None
    clear_capacity = command.clear_capacity and session.capacity is not None
    if not (title or kind or workshop or capacity or clear_workshop or clear_capacity):
        return []
    return [
        SessionDetailsChanged(
            session_id=session.session_id,
            edition_id=session.edition_id,
            title=title,
            kind=kind,
            workshop=workshop,
            workshop_cleared=clear_workshop,
            capacity=capacity,
            capacity_cleared=clear_capacity,
        )
    ]


def _assign(state: Agenda, command: AssignPerson) -> list[DomainEvent]:
    session = _live_session(state, command.session_id, "given a speaker")
    person = _distinct_people((command.person,))[0]
    if session.person(person.person_id) == _assignment(person):
        return []
    return [_assigned(session.session_id, session.edition_id, person)]


def _remove(state: Agenda, command: RemovePerson) -> list[DomainEvent]:
    session = _session(state, command.session_id)
    if session.person(command.person_id) is None:
        raise NotFound(f"'{command.person_id}' is not on the panel of '{session.label}'")
    return [
        PersonRemoved(
            session_id=session.session_id,
            edition_id=session.edition_id,
            person_id=command.person_id,
        )
    ]


def _cancel(state: Agenda, command: CancelSession) -> list[DomainEvent]:
    _check_text("reason", command.reason)
    session = _session(state, command.session_id)
    if session.cancelled:
        return []
    return [
        SessionCancelled(
            session_id=session.session_id, edition_id=session.edition_id, reason=command.reason
        )
    ]


def _publish(state: Agenda, command: PublishSchedule) -> list[DomainEvent]:
    _check_text("label", command.label)
    _check_aware(command.published_at)
    edition = _edition(state, command.edition_id)
    if command.label in state.labels.get(edition.edition_id, frozenset()):
        raise InvariantViolated(
            f"a version labelled '{command.label}' of '{edition.edition_id}' is already published"
        )
    previous = state.releases.get(edition.edition_id)
    changes = diff(previous.sessions if previous else {}, state.snapshot(edition.edition_id))
    if previous is not None and changes.empty:
        raise InvariantViolated(
            f"nothing changed since version {previous.version} ('{previous.label}') "
            f"of '{edition.edition_id}'; there is nothing to publish"
        )
    return [
        SchedulePublished(
            edition_id=edition.edition_id,
            version=previous.version + 1 if previous else 1,
            label=command.label,
            published_at=command.published_at,
            new=changes.new,
            moved=changes.moved,
            cancelled=changes.cancelled,
            changed=changes.changed,
        )
    ]


# -- import --------------------------------------------------------------------------------


def _import(state: Agenda, command: ImportEdition) -> list[DomainEvent]:
    """Each part is decided on the state the previous parts leave; the rules that span
    sessions are checked once, on the final state, so a file may swap two sessions."""
    edition_id = command.edition.edition_id
    _check_unique("room", [room.room_id for room in command.rooms])
    _check_unique("session", [session.session_id for session in command.sessions])
    parts = [(r.room_id, r.edition_id) for r in command.rooms]
    parts += [(s.session_id, s.edition_id) for s in command.sessions]
    for part_id, part_edition in parts:
        if part_edition != edition_id:
            raise InvalidCommand(
                f"'{part_id}' belongs to '{part_edition}', not to '{edition_id}' being imported"
            )
    events: list[DomainEvent] = []
    current = state

    def take(new: list[DomainEvent]) -> None:
        nonlocal current
        events.extend(new)
        current = fold(current, new)

    existing = current.editions.get(edition_id)
    if existing is None:
        take(_plan_edition(current, command.edition))
    else:
        take(_change_edition(current, _edition_changes(command.edition)))
    for room in command.rooms:
        known = current.rooms.get(room.room_id)
        if known is None:
            take(_add_room(current, room))
            continue
        if known.edition_id != edition_id:
            raise InvariantViolated(
                f"room id '{room.room_id}' already belongs to edition '{known.edition_id}'"
            )
        take(_rename_room(current, RenameRoom(room.room_id, room.name)))
        take(
            _change_capacity(
                current, ChangeRoomCapacity(room.room_id, room.capacity, room.capacity_estimated)
            )
        )
    for spec in command.sessions:
        known_session = current.sessions.get(spec.session_id)
        if known_session is None:
            take(_schedule(current, spec))
        elif known_session.edition_id != edition_id:
            raise InvariantViolated(
                f"session id '{spec.session_id}' already belongs to edition "
                f"'{known_session.edition_id}'"
            )
        elif not known_session.cancelled:
            take(_reconcile_session(current, known_session, spec))
    if command.cancel_missing:
        for session in missing_sessions(current, command):
            take(_cancel(current, CancelSession(session.session_id, MISSING_REASON)))
    take(_reconcile_warnings(current, edition_id, command.warnings))
    if len(events) > MAX_EVENTS_PER_COMMAND:
        raise InvalidCommand(
            f"importing '{edition_id}' would take {len(events)} changes at once; one command "
            f"holds at most {MAX_EVENTS_PER_COMMAND}: import the programme in parts"
        )
    if events:
        _check(current, events)
    return events


def missing_sessions(state: Agenda, command: ImportEdition) -> list[Session]:
    """The edition's scheduled (not cancelled) sessions that ``command``'s file does not list,
    in programme order."""
    listed = {spec.session_id for spec in command.sessions}
    missing = [
        session
        for session in state.live_sessions(command.edition.edition_id)
        if session.session_id not in listed
    ]
    return sorted(missing, key=lambda s: (s.starts_at, s.session_id))


def _edition_changes(plan: PlanEdition) -> ChangeEditionDetails:
    return ChangeEditionDetails(
        edition_id=plan.edition_id,
        name=plan.name,
        theme=plan.theme,
        host_city=plan.host_city,
        host_country=plan.host_country,
        start_date=plan.start_date,
        end_date=plan.end_date,
        time_zone=plan.time_zone,
    )


def _reconcile_session(state: Agenda, session: Session, spec: ScheduleSession) -> list[DomainEvent]:
    _check_times(spec.starts_at, spec.ends_at)
    move = MoveSession(session.session_id, spec.starts_at, spec.ends_at, spec.room_id)
    events = _move(state, move)
    events += _change_details(
        state,
        ChangeSessionDetails(
            session_id=session.session_id,
            title=spec.title,
            kind=spec.kind,
            workshop=spec.workshop,
            clear_workshop=spec.workshop is None,
            capacity=spec.capacity,
            clear_capacity=spec.capacity is None,
        ),
    )
    wanted = _distinct_people(spec.people)
    for person in wanted:
        if session.person(person.person_id) != _assignment(person):
            events.append(_assigned(session.session_id, session.edition_id, person))
    keep = {person.person_id for person in wanted}
    events += [
        PersonRemoved(
            session_id=session.session_id, edition_id=session.edition_id, person_id=p.person_id
        )
        for p in session.people
        if p.person_id not in keep
    ]
    return events


def _reconcile_warnings(
    state: Agenda, edition_id: str, warnings: Sequence[Warning]
) -> list[DomainEvent]:
    recorded = state.warnings.get(edition_id, {})
    wanted = {warning.warning_id: warning for warning in warnings}
    events: list[DomainEvent] = [
        DataQualityWarningRecorded(
            edition_id=edition_id,
            warning_id=warning_id,
            session_id=warning.session_id,
            field=warning.field,
            message=warning.message,
            values=warning.values,
        )
        for warning_id, warning in wanted.items()
        if warning_id not in recorded
    ]
    events += [
        DataQualityWarningWithdrawn(edition_id=edition_id, warning_id=warning_id)
        for warning_id in recorded
        if warning_id not in wanted
    ]
    return events


# -- the rules that span sessions ----------------------------------------------------------


def _check(state: Agenda, events: Sequence[DomainEvent]) -> None:
    """Check, on the state after ``events``, every rule those events could break."""
    touched: set[str] = set()
    rooms: set[str] = set()
    editions: set[str] = set()
    for event in events:
        match event:
            case SessionScheduled() | SessionMoved() | PersonAssigned() | SessionDetailsChanged():
                touched.add(event.session_id)
            case RoomCapacityChanged():
                rooms.add(event.room_id)
            case EditionDetailsChanged():
                editions.add(event.edition_id)
    touched |= {s.session_id for s in state.sessions.values() if s.room_id in rooms}
    touched |= {s.session_id for s in state.sessions.values() if s.edition_id in editions}
    sessions = sorted(
        (state.sessions[i] for i in touched if not state.sessions[i].cancelled),
        key=lambda s: (s.starts_at, s.session_id),
    )
    if not sessions:
        return
    by_room: dict[str, list[Session]] = defaultdict(list)
    by_person: dict[str, list[Session]] = defaultdict(list)
    for other in state.sessions.values():
        if not other.cancelled:
            by_room[other.room_id].append(other)
            for person in other.people:
                by_person[person.person_id].append(other)
    for session in sessions:
        edition = state.editions[session.edition_id]
        room = state.rooms[session.room_id]
        _check_within_edition(session, edition)
        if session.ends_at <= session.starts_at:
            raise InvariantViolated(
                f"'{session.label}' would end at {_clock(session.ends_at, edition)}, "
                f"before it starts at {_clock(session.starts_at, edition)}"
            )
        if session.capacity is not None and session.capacity > room.capacity:
            raise InvariantViolated(
                f"'{session.label}' wants {session.capacity} seats but room '{room.name}' "
                f"holds {room.capacity}"
            )
        for other in by_room[session.room_id]:
            if other.session_id != session.session_id and _overlap(session, other):
                raise InvariantViolated(f"room '{room.name}' is taken by {_describe(other, state)}")
        for person in session.people:
            for other in by_person[person.person_id]:
                if other.session_id != session.session_id and _overlap(session, other):
                    raise InvariantViolated(
                        f"{person.name} ({person.person_id}) is already in "
                        f"{_describe(other, state)}"
                    )


def _check_within_edition(session: Session, edition: Edition) -> None:
    if session.starts_at < edition.opens or session.ends_at > edition.closes:
        raise InvariantViolated(
            f"'{session.label}' would run {_span(session.starts_at, session.ends_at, edition)}, "
            f"outside '{edition.name}' ({edition.start_date} to {edition.end_date}, "
            f"{edition.time_zone})"
        )


def _overlap(a: Session, b: Session) -> bool:
    return a.starts_at < b.ends_at and b.starts_at < a.ends_at


def _describe(session: Session, state: Agenda) -> str:
    edition = state.editions[session.edition_id]
    return (
        f"'{session.label}' {_span(session.starts_at, session.ends_at, edition)} "
        f"(session {session.session_id})"
    )


def _clock(moment: datetime, edition: Edition) -> str:
    return moment.astimezone(edition.zone).strftime("%H:%M")


def _span(starts_at: datetime, ends_at: datetime, edition: Edition) -> str:
    day = starts_at.astimezone(edition.zone).date().isoformat()
    return f"{_clock(starts_at, edition)}\u2013{_clock(ends_at, edition)} on {day}"


# -- small checks and lookups --------------------------------------------------------------


def _edition(state: Agenda, edition_id: str) -> Edition:
    edition = state.editions.get(edition_id)
    if edition is None:
        raise NotFound(f"no edition '{edition_id}'; plan it first")
    return edition


def _room(state: Agenda, room_id: str) -> Room:
    room = state.rooms.get(room_id)
    if room is None:
        raise NotFound(f"no room '{room_id}'")
    return room


def _room_of_edition(state: Agenda, room_id: str, edition: Edition) -> Room:
    room = _room(state, room_id)
    if room.edition_id != edition.edition_id:
        raise InvariantViolated(
            f"room '{room.name}' ({room_id}) belongs to edition '{room.edition_id}', "
            f"not '{edition.edition_id}'"
        )
    return room


def _session(state: Agenda, session_id: str) -> Session:
    session = state.sessions.get(session_id)
    if session is None:
        raise NotFound(f"no session '{session_id}'")
    return session


def _live_session(state: Agenda, session_id: str, action: str) -> Session:
    session = _session(state, session_id)
    if session.cancelled:
        raise InvariantViolated(
            f"'{session.label}' ({session_id}) is cancelled and cannot be {action}"
        )
    return session


def _assignment(person: Person) -> Assignment:
    return Assignment(person.person_id, person.name, person.role, person.title)


def _assigned(session_id: str, edition_id: str, person: Person) -> PersonAssigned:
    return PersonAssigned(
        session_id=session_id,
        edition_id=edition_id,
        person_id=person.person_id,
        name=person.name,
        title=person.title,
        role=person.role,
    )


def _distinct_people(people: Sequence[Person]) -> Sequence[Person]:
    seen: set[str] = set()
    for person in people:
        _check_id("person id", person.person_id)
        _check_text("person's name", person.name)
        if person.role not in PERSON_ROLES:
            raise InvalidCommand(
                f"role '{person.role}' is not one of {', '.join(sorted(PERSON_ROLES))}"
            )
        if person.person_id in seen:
            raise InvalidCommand(f"'{person.person_id}' is listed twice on one panel")
        seen.add(person.person_id)
    return people


def _check_unique(what: str, ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            raise InvalidCommand(f"{what} id '{identifier}' appears twice")
        seen.add(identifier)


def _check_id(what: str, value: str) -> None:
    if not ID_TOKEN.match(value):
        raise InvalidCommand(
            f"{what} {value!r} is not usable: use 1-128 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )


def _check_text(what: str, value: str) -> None:
    if not value.strip():
        raise InvalidCommand(f"the {what} must not be blank")


def _check_kind(kind: str) -> None:
    if kind not in SESSION_KINDS:
        raise InvalidCommand(f"kind '{kind}' is not one of {', '.join(sorted(SESSION_KINDS))}")


def _check_capacity(capacity: int) -> None:
    if capacity < 1:
        raise InvalidCommand(f"a capacity must be at least 1, not {capacity}")


def _check_country(code: str) -> None:
    if len(code) != 3 or not code.isalpha() or not code.isupper():
        raise InvalidCommand(f"host country {code!r} is not an ISO 3166-1 alpha-3 code")


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCommand(f"{name!r} is not an IANA time zone") from None


def _check_dates(start: date, end: date) -> None:
    if end < start:
        raise InvalidCommand(f"the edition would end on {end}, before it starts on {start}")


def _check_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidCommand(f"{moment.isoformat()} has no UTC offset")


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    _check_aware(starts_at)
    _check_aware(ends_at)
    if ends_at <= starts_at:
        raise InvalidCommand(
            f"a session must end after it starts: {starts_at.isoformat()} to {ends_at.isoformat()}"
        )


agenda_decider: Decider[Agenda, Command, DomainEvent] = Decider(Agenda, decide, evolve)
