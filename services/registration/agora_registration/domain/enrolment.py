"""A workshop session's enrolment, pure: the terms learnt from the agenda (time, capacity),
the roster and the ordered waitlist. Consistency scope ``registration.enrolment.<session_id>.*``.
Capacity and promotion from the waitlist live here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import assert_never

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import SessionKind
from agora_events.contracts.registration import (
    Enrolled,
    EnrolmentClosed,
    PlaceRef,
    PromotedFromWaitlist,
    ReleaseReason,
    SessionTermsRecorded,
    Unenrolled,
    Waitlisted,
)
from agora_events.decider import Decider, InvariantViolated, NotFound, members

from .window import Window

EnrolmentEvent = (
    SessionTermsRecorded
    | Enrolled
    | Waitlisted
    | PromotedFromWaitlist
    | Unenrolled
    | EnrolmentClosed
)
"""Every event a session's enrolment scope records."""


@dataclass(frozen=True, slots=True)
class SessionTerms:
    edition_id: str
    kind: SessionKind
    title: str
    room_id: str
    window: Window
    capacity: int


@dataclass(frozen=True, slots=True)
class Place:
    participant_id: str
    claim: int


@dataclass(frozen=True, slots=True)
class SessionEnrolment:
    session_id: str = ""
    terms: SessionTerms | None = None
    roster: tuple[Place, ...] = ()
    waitlist: tuple[Place, ...] = ()
    cancelled: str | None = None
    released: tuple[Place, ...] = ()

    def place_of(self, participant_id: str) -> tuple[Place, bool] | None:
        """The participant's place and whether it is on the waitlist."""
        for place in self.roster:
            if place.participant_id == participant_id:
                return place, False
        for place in self.waitlist:
            if place.participant_id == participant_id:
                return place, True
        return None

    def free_places(self) -> int:
        return 0 if self.terms is None else max(0, self.terms.capacity - len(self.roster))


@dataclass(frozen=True, slots=True)
class SyncSession:
    """Tell registration what the agenda now says about a session."""

    session_id: str
    terms: SessionTerms
    cancelled: str | None = None


@dataclass(frozen=True, slots=True)
class Enrol:
    session_id: str
    participant_id: str
    claim: int


@dataclass(frozen=True, slots=True)
class Unenrol:
    session_id: str
    participant_id: str
    claim: int
    reason: ReleaseReason = "left"


EnrolmentCommand = SyncSession | Enrol | Unenrol


def decide_enrolment(state: SessionEnrolment, command: EnrolmentCommand) -> list[EnrolmentEvent]:
    sid = command.session_id
    match command:
        case SyncSession(terms=terms, cancelled=cancelled):
            if state.cancelled is not None:
                return []
            if state.terms is None and (cancelled is not None or terms.kind != WORKSHOP):
                return []  # registration only keeps the sessions people enrol in
            if cancelled is not None:
                released = tuple(
                    PlaceRef(participant_id=p.participant_id, claim=p.claim)
                    for p in (*state.roster, *state.waitlist)
                )
                return [EnrolmentClosed(session_id=sid, reason=cancelled, released=released)]
            if terms == state.terms:
                return []
            recorded = SessionTermsRecorded(
                session_id=sid,
                edition_id=terms.edition_id,
                kind=terms.kind,
                title=terms.title,
                room_id=terms.room_id,
                starts_at=terms.window.starts_at,
                ends_at=terms.window.ends_at,
                capacity=terms.capacity,
            )
            return [recorded, *_promotions(evolve_enrolment(state, recorded))]
        case Enrol(participant_id=pid, claim=claim):
            ensure_open(state, sid)
            held = state.place_of(pid)
            if held is not None:
                place, waiting = held
                if waiting:
                    position = state.waitlist.index(place) + 1
                    raise InvariantViolated(
                        f"participant {pid} is already on the waitlist of session {sid} "
                        f"(position {position})"
                    )
                raise InvariantViolated(f"participant {pid} is already enrolled in session {sid}")
            if state.free_places() > 0:
                return [Enrolled(session_id=sid, participant_id=pid, claim=claim)]
            return [
                Waitlisted(
                    session_id=sid,
                    participant_id=pid,
                    claim=claim,
                    position=len(state.waitlist) + 1,
                )
            ]
        case Unenrol(participant_id=pid, claim=claim, reason=reason):
            held = state.place_of(pid)
            if held is None or held[0].claim != claim:
                return []  # already gone, or a newer place of the same person: leave it be
            left = Unenrolled(
                session_id=sid,
                participant_id=pid,
                claim=claim,
                from_waitlist=held[1],
                reason=reason,
            )
            return [left, *_promotions(evolve_enrolment(state, left))]
        case _:
            assert_never(command)


WORKSHOP: SessionKind = "workshop_session"


def ensure_open(state: SessionEnrolment, session_id: str) -> SessionTerms:
    """The terms of a session that takes enrolments, or why it does not."""
    if state.cancelled is not None:
        raise InvariantViolated(f"session {session_id} was cancelled: {state.cancelled}")
    if state.terms is None:
        raise NotFound(
            f"no workshop session {session_id} is open for enrolment "
            "(registration has not heard of it from the agenda)"
        )
    if state.terms.kind != WORKSHOP:
        kind = state.terms.kind.replace("_", " ")
        raise InvariantViolated(
            f"session {session_id} is now a {kind}; only workshop sessions take enrolments"
        )
    return state.terms


def _promotions(state: SessionEnrolment) -> list[EnrolmentEvent]:
    free = state.free_places()
    return [
        PromotedFromWaitlist(
            session_id=state.session_id, participant_id=place.participant_id, claim=place.claim
        )
        for place in state.waitlist[:free]
    ]


def evolve_enrolment(state: SessionEnrolment, event: EnrolmentEvent) -> SessionEnrolment:
    match event:
        case SessionTermsRecorded():
            terms = SessionTerms(
                edition_id=event.edition_id,
                kind=event.kind,
                title=event.title,
                room_id=event.room_id,
                window=Window(event.starts_at, event.ends_at),
                capacity=event.capacity,
            )
            return replace(state, session_id=event.session_id, terms=terms)
        case Enrolled():
            place = Place(event.participant_id, event.claim)
            return replace(state, roster=(*state.roster, place))
        case Waitlisted():
            place = Place(event.participant_id, event.claim)
            return replace(state, waitlist=(*state.waitlist, place))
        case PromotedFromWaitlist():
            place = Place(event.participant_id, event.claim)
            return replace(
                state,
                roster=(*state.roster, place),
                waitlist=tuple(p for p in state.waitlist if p != place),
            )
        case Unenrolled():
            place = Place(event.participant_id, event.claim)
            return replace(
                state,
                roster=tuple(p for p in state.roster if p != place),
                waitlist=tuple(p for p in state.waitlist if p != place),
            )
        case EnrolmentClosed():
            return replace(
                state,
                cancelled=event.reason,
                roster=(),
                waitlist=(),
                released=tuple(Place(r.participant_id, r.claim) for r in event.released),
            )
        case _:
            assert_never(event)


def _evolve_stored(state: SessionEnrolment, event: DomainEvent) -> SessionEnrolment:
    """The decider's evolve, for any event the store hands over: another aggregate's leaves
    the state as it is."""
    return evolve_enrolment(state, event) if isinstance(event, EnrolmentEvent) else state


enrolment_decider: Decider[SessionEnrolment, EnrolmentCommand, DomainEvent] = Decider(
    SessionEnrolment, decide_enrolment, _evolve_stored, events=members(EnrolmentEvent)
)


def enrolment_scope(command: EnrolmentCommand) -> str:
    return f"registration.enrolment.{command.session_id}.*"
