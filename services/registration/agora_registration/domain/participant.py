"""The participant, pure: a person's registration, accreditation, badge, presence at the
venue, and the *claims*: the session times they hold a place in. Consistency scope
``registration.participant.<id>.*``.

The rule "no two places in sessions that overlap" lives here, so concurrent enrolments of
one person are serialised by this scope's optimistic concurrency. Each claim has a number
(a fencing token) that roster entries carry: a late release for an old claim can never
remove a newer enrolment of the same person.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, assert_never

from agora_events.catalogue import DomainEvent
from agora_events.contracts.registration import (
    CATEGORIES,
    AccreditationApproved,
    AccreditationRejected,
    Badge,
    BadgeIssued,
    Category,
    CheckedIn,
    CheckedOut,
    ClaimRef,
    ClaimRescheduled,
    ContactDetailsAmended,
    ParticipantReclassified,
    ParticipantRegistered,
    ParticipantWithdrew,
    PlaceClaimed,
    PlaceReleased,
    ReleaseReason,
)
from agora_events.decider import Decider, InvalidCommand, InvariantViolated, NotFound, members

from .. import states
from .ids import badge_number, check_participant_id
from .window import Window

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
REPRESENTING_A_STATE: frozenset[Category] = frozenset(
    {"head_of_state_or_government", "minister", "head_of_delegation", "delegate"}
)

ParticipantEvent = (
    ParticipantRegistered
    | ContactDetailsAmended
    | ParticipantReclassified
    | AccreditationApproved
    | BadgeIssued
    | AccreditationRejected
    | ParticipantWithdrew
    | CheckedIn
    | CheckedOut
    | PlaceClaimed
    | ClaimRescheduled
    | PlaceReleased
)
"""Every event a participant's scope records."""


# -- values --------------------------------------------------------------------------------


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


# -- commands ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Register:
    participant_id: str
    name: str
    email: str
    category: str
    delegation: str | None = None
    organisation: str = ""
    title: str | None = None
    language: str | None = None


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


# -- state ---------------------------------------------------------------------------------


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


# -- decide --------------------------------------------------------------------------------


def decide_participant(state: Participant, command: ParticipantCommand) -> list[ParticipantEvent]:
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
            # One event, so the approval is one message: an atomic batch of two commits
            # at a tenth of one message's rate and does not scale with concurrency.
            badge = Badge(
                badge_number=badge_number(pid),
                issue=state.badge_issues + 1,
                category=state.category,
                delegation=state.delegation,
            )
            return [AccreditationApproved(participant_id=pid, badge=badge)]
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


def _register(state: Participant, command: Register) -> list[ParticipantEvent]:
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
            language=(command.language or "").strip() or None,
        )
    ]


def _amend(state: Participant, command: Amend) -> list[ParticipantEvent]:
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
    events: list[ParticipantEvent] = []
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


def _claim(state: Participant, session_id: str, window: Window) -> list[ParticipantEvent]:
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


# -- evolve --------------------------------------------------------------------------------


def evolve_participant(state: Participant, event: ParticipantEvent) -> Participant:
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
        case AccreditationApproved(badge=badge):
            issues = state.badge_issues if badge is None else badge.issue
            return replace(state, status="approved", reason=None, badge_issues=issues)
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
        case _:
            assert_never(event)


def _evolve_stored(state: Participant, event: DomainEvent) -> Participant:
    """The decider's evolve, for any event the store hands over: another aggregate's leaves
    the state as it is."""
    return evolve_participant(state, event) if isinstance(event, ParticipantEvent) else state


participant_decider: Decider[Participant, ParticipantCommand, DomainEvent] = Decider(
    Participant, decide_participant, _evolve_stored, events=members(ParticipantEvent)
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
