"""How the agenda's state follows from its events: ``evolve`` one, ``fold`` many.

``AgendaEvent`` lists exactly the events the agenda aggregate records; ``evolve`` matches
over it and ends in ``assert_never``, so mypy refuses an event added to the union but not
handled here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TypeAlias, assert_never

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

from .commands import Warning
from .state import Agenda, Assignment, Edition, Release, Room, Session

AgendaEvent: TypeAlias = (
    EditionPlanned
    | EditionDetailsChanged
    | RoomAdded
    | RoomCapacityChanged
    | RoomRenamed
    | SessionScheduled
    | SessionMoved
    | SessionDetailsChanged
    | PersonAssigned
    | PersonRemoved
    | SessionCancelled
    | SchedulePublished
    | DataQualityWarningRecorded
    | DataQualityWarningWithdrawn
)
"""The events of the agenda aggregate, one consistency scope (``agenda.>``)."""


def evolve(state: Agenda, event: AgendaEvent) -> Agenda:
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
                workshops=event.workshops,
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
                    "workshops",
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
                tentative=event.tentative,
                time_source=event.time_source,
            )
            return _with_session(state, session)
        case SessionMoved():
            session = state.sessions[event.session_id]
            session = replace(
                session,
                room_id=event.new_room_id,
                starts_at=event.new_starts_at,
                ends_at=event.new_ends_at,
                tentative=event.tentative,
                time_source=session.time_source if event.tentative else None,
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
        case _:
            assert_never(event)


def _with_session(state: Agenda, session: Session) -> Agenda:
    return replace(state, sessions={**state.sessions, session.session_id: session})


def evolve_any(state: Agenda, event: DomainEvent) -> Agenda:
    """``evolve`` for any ``DomainEvent``, as the kernel and the store hand them over: an
    event outside ``AgendaEvent`` leaves the state as it is."""
    if isinstance(event, AgendaEvent):
        return evolve(state, event)
    return state


def fold(state: Agenda, events: Iterable[DomainEvent]) -> Agenda:
    for event in events:
        state = evolve_any(state, event)
    return state
