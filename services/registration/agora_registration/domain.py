"""Registration's rules, pure: commands, state, ``decide`` and ``evolve``. No I/O here.

Two consistency scopes:

* a **participant** (``registration.participant.<id>.*``): accreditation, badge, presence at
  the venue, and the *claims*: the session times the participant holds a place in. The rule
  "no two places in sessions that overlap" lives here, so concurrent enrolments of one person
  are serialised by this scope's optimistic concurrency;
* a **session enrolment** (``registration.enrolment.<session_id>.*``): the terms learnt from
  the agenda (time, capacity), the roster and the ordered waitlist. Capacity and promotion
  live here.

An enrolment claims on the participant first, then takes a place on the session; leaving
gives up the place first, then the claim. So a roster entry always has a claim behind it,
and the overlap rule on claims covers every roster and waitlist. Each claim has a number
(a fencing token) that roster entries carry: a late release for an old claim can never
remove a newer enrolment of the same person.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, assert_never

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
from agora_events.contracts.registration import (
    CATEGORIES,
    AccreditationApproved,
    AccreditationRejected,
    BadgeIssued,
    Category,
    CheckedIn,
    CheckedOut,
    ClaimRef,
    ClaimRescheduled,
    ContactDetailsAmended,
    Enrolled,
    EnrolmentClosed,
    ParticipantReclassified,
    ParticipantRegistered,
    ParticipantWithdrew,
    PlaceClaimed,
    PlaceRef,
    PlaceReleased,
    PromotedFromWaitlist,
    ReleaseReason,
    SessionTermsRecorded,
    Unenrolled,
    Waitlisted,
)
from agora_events.decider import Decider, InvalidCommand, InvariantViolated, NotFound

from . import states

# -- participant ids and badge numbers -----------------------------------------------------
#
# A participant id is 8 characters of Crockford's base 32 (40 random bits, chosen by the
# service). The badge number is the same 40 bits, upper case, grouped, with a Luhn mod 32
# check character: unique because ids are (a new id is guarded by the store's "scope is
# empty" expectation), stable across re-issues, and needing no shared counter.

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LENGTH = 8
_PARTICIPANT_ID = re.compile(f"^[{ALPHABET}]{{{ID_LENGTH}}}$")
_BADGE = re.compile(r"^([0-9A-Z]{4})-?([0-9A-Z]{4})-?([0-9A-Z])$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
REPRESENTING_A_STATE: frozenset[Category] = frozenset(
    {"head_of_state_or_government", "minister", "head_of_delegation", "delegate"}
)


def participant_id_from_bits(bits: int) -> str:
    if not 0 <= bits < 32**ID_LENGTH:
        raise ValueError("a participant id holds 40 bits")
    return "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in reversed(range(ID_LENGTH)))


def check_participant_id(participant_id: str) -> str:
    if not _PARTICIPANT_ID.match(participant_id):
        raise NotFound(
            f"{participant_id!r} is not a participant id (8 characters of "
            f"{ALPHABET!r}, as returned on registration)"
        )
    return participant_id


def _check_character(payload: str) -> str:
    """Luhn mod N over Crockford base 32: catches every single-character slip and most
    swaps of neighbours."""
    total, factor = 0, 2
    for character in reversed(payload):
        addend = factor * ALPHABET.index(character)
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def badge_number(participant_id: str) -> str:
    check_participant_id(participant_id)
    code = participant_id.upper()
    return f"{code[:4]}-{code[4:]}-{_check_character(participant_id).upper()}"


def participant_id_from_badge(badge: str) -> str:
    """The participant a badge belongs to; refuses a misread or mistyped number."""
    normalised = badge.strip().upper().translate(str.maketrans("OIL", "011"))
    match = _BADGE.match(normalised)
    if match is None or any(c.lower() not in ALPHABET for c in normalised.replace("-", "")):
        raise InvalidCommand(f"{badge!r} is not a badge number; they read like 7K2M-9QXD-C")
    participant_id = (match.group(1) + match.group(2)).lower()
    if _check_character(participant_id) != match.group(3).lower():
        raise InvalidCommand(f"badge number {badge!r} has a typo: its check character is wrong")
    return participant_id


# -- values --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    starts_at: datetime
    ends_at: datetime

    def overlaps(self, other: Window) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at

    def __str__(self) -> str:
        return f"{self.starts_at.isoformat(timespec='minutes')} to {self.ends_at:%H:%M}"


@dataclass(frozen=True, slots=True)
class Claim:
    session_id: str
    number: int
    window: Window


@dataclass(frozen=True, slots=True)
class Presence:
    gate: str
    at: datetime


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""An amendment field left as it is (``None`` is a value: no delegation)."""

Status = Literal["unregistered", "submitted", "approved", "rejected", "withdrawn"]


# -- participant: commands -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Register:
    participant_id: str
    name: str
    email: str
    category: str
    delegation: str | None = None
    organisation: str = ""
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Amend:
    participant_id: str
    name: str | _Keep = KEEP
    email: str | _Keep = KEEP
    organisation: str | _Keep = KEEP
    title: str | _Keep | None = KEEP
    category: str | _Keep = KEEP
    delegation: str | _Keep | None = KEEP


@dataclass(frozen=True, slots=True)
class Approve:
    participant_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    participant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Withdraw:
    participant_id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CheckIn:
    participant_id: str
    gate: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CheckOut:
    participant_id: str
    gate: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ClaimPlace:
    participant_id: str
    session_id: str
    window: Window


@dataclass(frozen=True, slots=True)
class RescheduleClaim:
    participant_id: str
    session_id: str
    claim: int
    window: Window


@dataclass(frozen=True, slots=True)
class ReleasePlace:
    participant_id: str
    session_id: str
    claim: int
    reason: ReleaseReason = "left"


ParticipantCommand = (
    Register
    | Amend
    | Approve
    | Reject
    | Withdraw
    | CheckIn
    | CheckOut
    | ClaimPlace
    | RescheduleClaim
    | ReleasePlace
)


# -- participant: state --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Participant:
    participant_id: str = ""
    status: Status = "unregistered"
    name: str = ""
    email: str = ""
    organisation: str = ""
    title: str | None = None
    category: Category = "delegate"
    delegation: str | None = None
    reason: str | None = None
    badge_issues: int = 0
    inside: Presence | None = None
    claims: tuple[Claim, ...] = ()
    claims_made: int = 0

    def claim_for(self, session_id: str) -> Claim | None:
        return next((c for c in self.claims if c.session_id == session_id), None)

    def released(self) -> tuple[ClaimRef, ...]:
        return tuple(ClaimRef(session_id=c.session_id, claim=c.number) for c in self.claims)


# -- participant: decide -------------------------------------------------------------------


def decide_participant(state: Participant, command: ParticipantCommand) -> list[DomainEvent]:
    pid = command.participant_id
    if isinstance(command, Register):
        return _register(state, command)
    if state.status == "unregistered":
        raise NotFound(f"no participant {pid} is registered")
    match command:
        case Amend():
            return _amend(state, command)
        case Approve():
            if state.status in ("approved", "withdrawn"):
                raise InvariantViolated(f"participant {pid} is already {state.status}")
            return [
                AccreditationApproved(participant_id=pid),
                BadgeIssued(
                    participant_id=pid,
                    badge_number=badge_number(pid),
                    issue=state.badge_issues + 1,
                    category=state.category,
                    delegation=state.delegation,
                ),
            ]
        case Reject(reason=reason):
            if state.status in ("rejected", "withdrawn"):
                raise InvariantViolated(f"participant {pid} is already {state.status}")
            return [
                AccreditationRejected(
                    participant_id=pid,
                    reason=_required(reason, "a rejection needs a reason the participant can read"),
                    released=state.released(),
                )
            ]
        case Withdraw(reason=reason):
            if state.status == "withdrawn":
                raise InvariantViolated(f"participant {pid} has already withdrawn")
            return [
                ParticipantWithdrew(
                    participant_id=pid,
                    reason=(reason or "").strip() or None,
                    released=state.released(),
                )
            ]
        case CheckIn(gate=gate, at=at):
            _require_approved(state, "check in")
            if state.inside is not None:
                raise InvariantViolated(
                    f"participant {pid} is already checked in (gate {state.inside.gate} at "
                    f"{state.inside.at.isoformat(timespec='minutes')}); check out first"
                )
            return [CheckedIn(participant_id=pid, gate=_gate(gate), at=_aware(at))]
        case CheckOut(gate=gate, at=at):
            if state.inside is None:
                raise InvariantViolated(f"participant {pid} is not checked in")
            if _aware(at) < state.inside.at:
                raise InvalidCommand(
                    f"check-out at {at.isoformat(timespec='minutes')} is before the check-in "
                    f"at {state.inside.at.isoformat(timespec='minutes')}"
                )
            return [CheckedOut(participant_id=pid, gate=_gate(gate), at=at)]
        case ClaimPlace(session_id=session_id, window=window):
            return _claim(state, session_id, window)
        case RescheduleClaim(session_id=session_id, claim=number, window=window):
            held = state.claim_for(session_id)
            if held is None or held.number != number or held.window == window:
                return []
            return [
                ClaimRescheduled(
                    participant_id=pid,
                    session_id=session_id,
                    claim=number,
                    starts_at=window.starts_at,
                    ends_at=window.ends_at,
                )
            ]
        case ReleasePlace(session_id=session_id, claim=number, reason=reason):
            held = state.claim_for(session_id)
            if held is None or held.number != number:
                return []
            return [
                PlaceReleased(
                    participant_id=pid, session_id=session_id, claim=number, reason=reason
                )
            ]
        case _:
            assert_never(command)


def _register(state: Participant, command: Register) -> list[DomainEvent]:
    if state.status != "unregistered":
        raise InvariantViolated(f"participant {command.participant_id} is already registered")
    check_participant_id(command.participant_id)
    category = _category(command.category)
    return [
        ParticipantRegistered(
            participant_id=command.participant_id,
            name=_required(command.name, "name must not be empty"),
            email=_email(command.email),
            organisation=command.organisation.strip(),
            title=(command.title or "").strip() or None,
            category=category,
            delegation=_delegation(category, command.delegation),
        )
    ]


def _amend(state: Participant, command: Amend) -> list[DomainEvent]:
    pid = command.participant_id
    if state.status == "withdrawn":
        raise InvariantViolated(f"participant {pid} has withdrawn; their record is closed")
    contact: dict[str, str | None] = {}
    if command.name is not KEEP:
        contact["name"] = _required(command.name, "name must not be empty")
    if command.email is not KEEP:
        contact["email"] = _email(command.email)
    if command.organisation is not KEEP:
        contact["organisation"] = command.organisation.strip()
    if command.title is not KEEP:
        contact["title"] = (command.title or "").strip() or None
    changed = {key: value for key, value in contact.items() if getattr(state, key) != value}
    events: list[DomainEvent] = []
    if "title" in changed and changed["title"] is None:
        # ``None`` means "unchanged" in the event, so a cleared title travels as "".
        changed["title"] = ""
    if changed:
        events.append(ContactDetailsAmended(participant_id=pid, **changed))
    category = state.category if command.category is KEEP else _category(command.category)
    delegation = state.delegation if command.delegation is KEEP else command.delegation
    delegation = _delegation(category, delegation)
    if (category, delegation) != (state.category, state.delegation):
        previous: Literal["submitted", "approved", "rejected"]
        match state.status:
            case "submitted" | "approved" | "rejected":
                previous = state.status
            case _:
                raise AssertionError(f"amending a participant who is {state.status}")
        events.append(
            ParticipantReclassified(
                participant_id=pid,
                category=category,
                delegation=delegation,
                previous_status=previous,
            )
        )
    return events


def _claim(state: Participant, session_id: str, window: Window) -> list[DomainEvent]:
    pid = state.participant_id
    _require_approved(state, "enrol in a workshop")
    if window.ends_at <= window.starts_at:
        raise InvalidCommand(f"session {session_id} ends before it starts")
    if state.claim_for(session_id) is not None:
        return []  # the claim exists: a retried enrolment completes on the session
    for other in state.claims:
        if other.window.overlaps(window):
            raise InvariantViolated(
                f"session {session_id} ({window}) overlaps session {other.session_id} "
                f"({other.window}), where participant {pid} already holds a place; "
                "leave that one first"
            )
    return [
        PlaceClaimed(
            participant_id=pid,
            session_id=session_id,
            claim=state.claims_made + 1,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
        )
    ]


def _require_approved(state: Participant, action: str) -> None:
    pid = state.participant_id
    match state.status:
        case "approved":
            return
        case "submitted":
            raise InvariantViolated(
                f"participant {pid} cannot {action}: their accreditation awaits an "
                "organiser's review"
            )
        case "rejected":
            raise InvariantViolated(
                f"participant {pid} cannot {action}: their accreditation was rejected "
                f"({state.reason})"
            )
        case "withdrawn":
            raise InvariantViolated(f"participant {pid} cannot {action}: they withdrew")
        case "unregistered":
            raise NotFound(f"no participant {pid} is registered")
        case _:
            assert_never(state.status)


def _required(text: str, problem: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise InvalidCommand(problem)
    return cleaned


def _email(text: str) -> str:
    cleaned = text.strip()
    if not _EMAIL.match(cleaned):
        raise InvalidCommand(f"{text!r} is not an email address")
    return cleaned


def _category(text: str) -> Category:
    for category in CATEGORIES:
        if category == text:
            return category
    raise InvalidCommand(f"unknown category {text!r}; use one of {', '.join(CATEGORIES)}")


def _delegation(category: Category, code: str | None) -> str | None:
    if code is None or not code.strip():
        if category in REPRESENTING_A_STATE:
            raise InvalidCommand(
                f"a {category.replace('_', ' ')} represents a State: give the delegation's "
                "ISO 3166-1 alpha-3 code"
            )
        return None
    return states.lookup(code).alpha3


def _gate(text: str) -> str:
    return _required(text, "say which gate: gate must not be empty")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidCommand("a time needs its UTC offset, e.g. 2025-06-23T08:45:00+05:00")
    return moment


# -- participant: evolve -------------------------------------------------------------------


def evolve_participant(state: Participant, event: DomainEvent) -> Participant:
    match event:
        case ParticipantRegistered():
            return Participant(
                participant_id=event.participant_id,
                status="submitted",
                name=event.name,
                email=event.email,
                organisation=event.organisation,
                title=event.title,
                category=event.category,
                delegation=event.delegation,
            )
        case ContactDetailsAmended():
            return replace(
                state,
                name=event.name if event.name is not None else state.name,
                email=event.email if event.email is not None else state.email,
                organisation=(
                    event.organisation if event.organisation is not None else state.organisation
                ),
                title=state.title if event.title is None else (event.title or None),
            )
        case ParticipantReclassified():
            return replace(
                state,
                category=event.category,
                delegation=event.delegation,
                status="submitted",
                reason=None,
            )
        case AccreditationApproved():
            return replace(state, status="approved", reason=None)
        case BadgeIssued():
            return replace(state, badge_issues=event.issue)
        case AccreditationRejected():
            return replace(state, status="rejected", reason=event.reason, claims=())
        case ParticipantWithdrew():
            return replace(state, status="withdrawn", reason=event.reason, claims=())
        case CheckedIn():
            return replace(state, inside=Presence(event.gate, event.at))
        case CheckedOut():
            return replace(state, inside=None)
        case PlaceClaimed():
            claim = Claim(event.session_id, event.claim, Window(event.starts_at, event.ends_at))
            return replace(
                state,
                claims=(*state.claims, claim),
                claims_made=max(state.claims_made, event.claim),
            )
        case ClaimRescheduled():
            window = Window(event.starts_at, event.ends_at)
            return replace(
                state,
                claims=tuple(
                    replace(c, window=window) if c.number == event.claim else c
                    for c in state.claims
                ),
            )
        case PlaceReleased():
            return replace(state, claims=tuple(c for c in state.claims if c.number != event.claim))
    return state


participant_decider: Decider[Participant, ParticipantCommand, DomainEvent] = Decider(
    Participant, decide_participant, evolve_participant
)


def participant_scope(command: ParticipantCommand) -> str:
    return f"registration.participant.{command.participant_id}.*"


def held_claim(state: Participant, participant_id: str, session_id: str) -> Claim:
    """The claim a participant leaving ``session_id`` gives up."""
    if state.status == "unregistered":
        raise NotFound(f"no participant {participant_id} is registered")
    claim = state.claim_for(session_id)
    if claim is None:
        raise NotFound(f"participant {participant_id} holds no place in session {session_id}")
    return claim


# -- session enrolment ---------------------------------------------------------------------


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


def decide_enrolment(state: SessionEnrolment, command: EnrolmentCommand) -> list[DomainEvent]:
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


def _promotions(state: SessionEnrolment) -> list[DomainEvent]:
    free = state.free_places()
    return [
        PromotedFromWaitlist(
            session_id=state.session_id, participant_id=place.participant_id, claim=place.claim
        )
        for place in state.waitlist[:free]
    ]


def evolve_enrolment(state: SessionEnrolment, event: DomainEvent) -> SessionEnrolment:
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
    return state


enrolment_decider: Decider[SessionEnrolment, EnrolmentCommand, DomainEvent] = Decider(
    SessionEnrolment, decide_enrolment, evolve_enrolment
)


def enrolment_scope(command: EnrolmentCommand) -> str:
    return f"registration.enrolment.{command.session_id}.*"


# -- what the agenda says ------------------------------------------------------------------
#
# The reactor reads a session's (or a room's) agenda history up to the event it reacts to and
# folds it here; the result is the same however often, and however late, it runs.


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
                )
            case SessionMoved() if event.session_id in sessions:
                sessions[event.session_id] = replace(
                    sessions[event.session_id],
                    room_id=event.new_room_id,
                    window=Window(event.new_starts_at, event.new_ends_at),
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
