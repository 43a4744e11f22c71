"""What registration learns of the agenda's sessions and rooms, and what it makes of it.

The reactor reads a session's (or a room's) agenda history up to the event it reacts to and
folds it here; the result is the same however often, and however late, it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    RoomAdded,
    RoomCapacityChanged,
    SessionCancelled,
    SessionDetailsChanged,
    SessionKind,
    SessionMoved,
    SessionScheduled,
)

from .enrolment import SessionTerms, SyncSession
from .window import Window


@dataclass(frozen=True, slots=True)
class AgendaSession:
    session_id: str
    edition_id: str
    kind: SessionKind
    title: str
    room_id: str
    window: Window
    own_capacity: int | None
    cancelled: str | None = None
    tentative: bool = False
    """The agenda holds the time as a placeholder no source states: not offered for enrolment
    until an organiser fixes it."""


def agenda_sessions(events: Iterable[DomainEvent]) -> dict[str, AgendaSession]:
    sessions: dict[str, AgendaSession] = {}
    for event in events:
        match event:
            case SessionScheduled():
                sessions[event.session_id] = AgendaSession(
                    session_id=event.session_id,
                    edition_id=event.edition_id,
                    kind=event.kind,
                    title=event.title,
                    room_id=event.room_id,
                    window=Window(event.starts_at, event.ends_at),
                    own_capacity=event.capacity,
                    tentative=event.tentative,
                )
            case SessionMoved() if event.session_id in sessions:
                sessions[event.session_id] = replace(
                    sessions[event.session_id],
                    room_id=event.new_room_id,
                    window=Window(event.new_starts_at, event.new_ends_at),
                    tentative=event.tentative,
                )
            case SessionDetailsChanged() if event.session_id in sessions:
                current = sessions[event.session_id]
                capacity = current.own_capacity
                if event.capacity_cleared:
                    capacity = None
                elif event.capacity is not None:
                    capacity = event.capacity
                sessions[event.session_id] = replace(
                    current,
                    title=event.title if event.title is not None else current.title,
                    kind=event.kind if event.kind is not None else current.kind,
                    own_capacity=capacity,
                )
            case SessionCancelled() if event.session_id in sessions:
                sessions[event.session_id] = replace(
                    sessions[event.session_id], cancelled=event.reason
                )
    return sessions


def room_capacities(events: Iterable[DomainEvent]) -> dict[str, int]:
    capacities: dict[str, int] = {}
    for event in events:
        match event:
            case RoomAdded():
                capacities[event.room_id] = event.capacity
            case RoomCapacityChanged():
                capacities[event.room_id] = event.new_capacity
    return capacities


def sync_command(session: AgendaSession, rooms: Mapping[str, int]) -> SyncSession | None:
    """What registration should record of ``session``; ``None`` when no capacity is known."""
    capacity = session.own_capacity or rooms.get(session.room_id)
    if capacity is None:
        return None
    terms = SessionTerms(
        edition_id=session.edition_id,
        kind=session.kind,
        title=session.title,
        room_id=session.room_id,
        window=session.window,
        capacity=capacity,
    )
    return SyncSession(session.session_id, terms, cancelled=session.cancelled)


def sessions_in_room(sessions: Mapping[str, AgendaSession], room_id: str) -> Sequence[str]:
    return sorted(s.session_id for s in sessions.values() if s.room_id == room_id)
