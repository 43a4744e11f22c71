"""The rules that span sessions, checked on the tentative state a command would leave.

A room holds one session at a time, a person is in one session at a time, a session lies
within its edition's dates (in the edition's time zone), ends after it starts and seats no
more than its room holds. The first breach refuses the command with ``InvariantViolated``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    EditionDetailsChanged,
    PersonAssigned,
    RoomCapacityChanged,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.decider import InvariantViolated

from .state import Agenda, Edition, Session


def check_rules(state: Agenda, events: Sequence[DomainEvent]) -> None:
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
