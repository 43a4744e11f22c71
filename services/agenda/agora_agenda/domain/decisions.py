"""What each command yields: ``decide`` and its per-command functions, the import included.

``decide`` works out the events of a command, folds them into a tentative state and checks
on it every rule the command could break (``rules``); the first breach refuses the command.
Checks of the command's own values come first (``validation``), then lookups that refuse a
command naming something unknown.
"""

from __future__ import annotations

from collections.abc import Sequence

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    DataQualityWarningRecorded,
    DataQualityWarningWithdrawn,
    EditionDetailsChanged,
    EditionPlanned,
    PersonAssigned,
    PersonRemoved,
    RoomAdded,
    RoomCapacityChanged,
    RoomRenamed,
    SchedulePublished,
    SessionCancelled,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.decider import InvalidCommand, InvariantViolated, NotFound

from .commands import (
    AddRoom,
    AssignPerson,
    CancelSession,
    ChangeEditionDetails,
    ChangeRoomCapacity,
    ChangeSessionDetails,
    Command,
    ImportEdition,
    MoveSession,
    Person,
    PlanEdition,
    PublishSchedule,
    RemovePerson,
    RenameRoom,
    ScheduleSession,
    Warning,
)
from .evolve import fold
from .rules import check_rules
from .schedule_diff import diff
from .state import Agenda, Assignment, Edition, Room, Session, people_key
from .validation import (
    check_aware,
    check_capacity,
    check_country,
    check_dates,
    check_id,
    check_kind,
    check_text,
    check_times,
    check_unique,
    check_zone,
    distinct_people,
)

MAX_EVENTS_PER_COMMAND = 1000
"""A command's events are stored as one atomic batch, which JetStream caps at 1000."""
MISSING_REASON = "removed from the programme file"
"""Why an import with ``cancel_missing`` cancels a session its file no longer lists."""


def decide(state: Agenda, command: Command) -> list[DomainEvent]:
    """The events ``command`` yields on ``state``; raises Rejected when a rule forbids it."""
    if isinstance(command, ImportEdition):
        return _import(state, command)
    events = _events_for(state, command)
    if events:
        check_rules(fold(state, events), events)
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
    check_id("edition id", command.edition_id)
    check_text("name", command.name)
    check_text("host city", command.host_city)
    check_country(command.host_country)
    check_zone(command.time_zone)
    check_dates(command.start_date, command.end_date)
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
        workshops=command.workshops,
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
            workshops=command.workshops,
        )
    ]


def _change_edition(state: Agenda, command: ChangeEditionDetails) -> list[DomainEvent]:
    edition = _edition(state, command.edition_id)
    if command.time_zone is not None:
        check_zone(command.time_zone)
    if command.host_country is not None:
        check_country(command.host_country)
    for label, text in (("name", command.name), ("host city", command.host_city)):
        if text is not None:
            check_text(label, text)
    check_dates(command.start_date or edition.start_date, command.end_date or edition.end_date)
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
            "workshops",
        )
        if (value := getattr(command, name)) is not None and value != getattr(edition, name)
    }
    if not changes:
        return []
    return [EditionDetailsChanged(edition_id=edition.edition_id, **changes)]


def _add_room(state: Agenda, command: AddRoom) -> list[DomainEvent]:
    check_id("room id", command.room_id)
    check_text("room name", command.name)
    check_capacity(command.capacity)
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
    check_capacity(command.capacity)
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
    check_text("room name", command.name)
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
    check_id("session id", command.session_id)
    check_text("title", command.title)
    check_kind(command.kind)
    if command.capacity is not None:
        check_capacity(command.capacity)
    check_times(command.starts_at, command.ends_at)
    edition = _edition(state, command.edition_id)
    _room_of_edition(state, command.room_id, edition)
    people = distinct_people(command.people)
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
            tentative=command.tentative,
            time_source=command.time_source if command.tentative else None,
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
        and existing.tentative == command.tentative
        and people_key(existing.people) == people_key(_assignment(p) for p in command.people)
    )


def _move(state: Agenda, command: MoveSession) -> list[DomainEvent]:
    session = _live_session(state, command.session_id, "moved")
    edition = state.editions[session.edition_id]
    if command.starts_at is not None and command.ends_at is not None:
        check_times(command.starts_at, command.ends_at)
    for moment in (command.starts_at, command.ends_at):
        if moment is not None:
            check_aware(moment)
    starts_at = command.starts_at or session.starts_at
    if command.ends_at is not None:
        ends_at = command.ends_at
    elif command.starts_at is not None:
        ends_at = command.starts_at + (session.ends_at - session.starts_at)
    else:
        ends_at = session.ends_at
    room_id = command.room_id or session.room_id
    _room_of_edition(state, room_id, edition)
    if session.placement_is(room_id, starts_at, ends_at) and session.tentative == command.tentative:
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
            tentative=command.tentative,
        )
    ]


def _change_details(state: Agenda, command: ChangeSessionDetails) -> list[DomainEvent]:
    session = _live_session(state, command.session_id, "changed")
    if command.title is not None:
        check_text("title", command.title)
    if command.kind is not None:
        check_kind(command.kind)
    if command.capacity is not None:
        check_capacity(command.capacity)
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
    person = distinct_people((command.person,))[0]
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
    check_text("reason", command.reason)
    session = _session(state, command.session_id)
    if session.cancelled:
        return []
    return [
        SessionCancelled(
            session_id=session.session_id, edition_id=session.edition_id, reason=command.reason
        )
    ]


def _publish(state: Agenda, command: PublishSchedule) -> list[DomainEvent]:
    check_text("label", command.label)
    check_aware(command.published_at)
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
    check_unique("room", [room.room_id for room in command.rooms])
    check_unique("session", [session.session_id for session in command.sessions])
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
        check_rules(current, events)
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
        workshops=plan.workshops,
    )


def _reconcile_session(state: Agenda, session: Session, spec: ScheduleSession) -> list[DomainEvent]:
    check_times(spec.starts_at, spec.ends_at)
    move = MoveSession(
        session.session_id, spec.starts_at, spec.ends_at, spec.room_id, tentative=spec.tentative
    )
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
    wanted = distinct_people(spec.people)
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


# -- lookups -------------------------------------------------------------------------------


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
