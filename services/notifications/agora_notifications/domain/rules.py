"""The rules: which stored event tells whom what. Pure: the facts about recipients come in
as values the reactor read from this service's own read models.

Each rule has a name; with the triggering event's id and the recipient it names one notice
(``ids.notice_id``), so deciding twice decides one notice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import SessionCancelled, SessionMoved
from agora_events.contracts.declarations import DeclarationSigned, SignatureWithdrawn
from agora_events.contracts.notifications import Channel, EndpointDisabled
from agora_events.contracts.registration import (
    AccreditationApproved,
    AccreditationRejected,
    BadgeIssued,
    ParticipantRegistered,
    PromotedFromWaitlist,
    Waitlisted,
)

from .endpoint import subscribes

LANGUAGES = ("en", "fr")
"""The languages notices are written in; any other tag falls back to English."""


@dataclass(frozen=True, slots=True)
class Person:
    """Someone a notice can reach by email, as the read model knows them."""

    participant_id: str
    name: str
    email: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A session as the read model knows it after the triggering event."""

    session_id: str
    title: str
    room: str
    old_room: str | None
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    place: str
    sequence: int
    """The iCalendar SEQUENCE of the agenda's feed after this change."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    endpoint_id: str
    event_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Trigger:
    event: DomainEvent
    event_id: str
    event_type: str
    time: datetime
    cloudevent: dict[str, Any] = field(default_factory=dict)
    """The event as a structured-mode CloudEvent, the body a webhook posts."""


@dataclass(frozen=True, slots=True)
class Draft:
    """A notice a rule decided, before it has an id."""

    rule: str
    recipient: str
    channel: Channel
    facts: dict[str, Any]
    address: str | None = None
    language: str = "en"
    digest_key: str | None = None
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Audience:
    """Who the triggering event concerns, read by the reactor before the rules run."""

    participant: Person | None = None
    """The participant a registration event names."""
    session: Session | None = None
    holders: Sequence[Person] = ()
    """Those holding a place in, or assigned to, the session an agenda event names."""
    organisers: Sequence[str] = ()
    """The organisers' addresses."""
    endpoints: Sequence[WebhookTarget] = ()


def language_of(tag: str | None) -> str:
    primary = (tag or "en").split("-")[0].lower()
    return primary if primary in LANGUAGES else "en"


def organiser_recipient(address: str) -> str:
    return "organiser-" + hashlib.sha256(address.lower().encode()).hexdigest()[:16]


def _to(person: Person, rule: str, facts: dict[str, Any], **more: Any) -> Draft:
    return Draft(
        rule=rule,
        recipient=person.participant_id,
        channel="email",
        facts={"name": person.name} | facts,
        address=person.email,
        language=language_of(person.language),
        **more,
    )


def _organisers(audience: Audience, rule: str, facts: dict[str, Any]) -> list[Draft]:
    return [
        Draft(rule, organiser_recipient(address), "email", facts, address=address)
        for address in audience.organisers
    ]


def _session_facts(session: Session, change: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "title": session.title,
        "room": session.room,
        "starts_at": session.starts_at.isoformat(),
        "ends_at": session.ends_at.isoformat(),
        "time_zone": session.time_zone,
        "place": session.place,
        "sequence": session.sequence,
        "change": change,
    }


def decide_notices(trigger: Trigger, audience: Audience, digest_window: timedelta) -> list[Draft]:
    """Every notice the triggering event causes: emails by the rules, and one webhook per
    enabled endpoint subscribing to its type."""
    drafts = _emails(trigger, audience, digest_window)
    drafts += [
        Draft("webhook", target.endpoint_id, "webhook", {"cloudevent": trigger.cloudevent})
        for target in audience.endpoints
        if subscribes(target.event_types, trigger.event_type)
    ]
    return drafts


def _emails(trigger: Trigger, audience: Audience, window: timedelta) -> list[Draft]:
    event, person = trigger.event, audience.participant
    match event:
        case ParticipantRegistered() if person is not None:
            return [_to(person, "registration.received", {})]
        case AccreditationApproved(badge=badge) if person is not None and badge is not None:
            return [_to(person, "accreditation.approved", {"badge_number": badge.badge_number})]
        case BadgeIssued() if person is not None:
            # Approvals recorded before the badge travelled with them: the badge follows.
            return [_to(person, "accreditation.approved", {"badge_number": event.badge_number})]
        case AccreditationRejected() if person is not None:
            return [_to(person, "accreditation.rejected", {"reason": event.reason})]
        case Waitlisted() if person is not None and audience.session is not None:
            facts = {"title": audience.session.title, "position": event.position}
            return [_to(person, "enrolment.waitlisted", facts)]
        case PromotedFromWaitlist() if person is not None and audience.session is not None:
            facts = _session_facts(audience.session, {})
            return [_to(person, "enrolment.promoted", facts)]
        case SessionMoved() | SessionCancelled() if audience.session is not None:
            return _session_changed(event, trigger, audience.session, audience.holders, window)
        case DeclarationSigned():
            facts = {
                "declaration_id": event.declaration_id,
                "state": event.state,
                "signatory": event.signatory_name,
                "capacity": event.capacity,
                "at": event.signed_at.isoformat(),
            }
            return _organisers(audience, "declaration.signed", facts)
        case SignatureWithdrawn():
            facts = {
                "declaration_id": event.declaration_id,
                "state": event.state,
                "reason": event.reason,
                "at": event.withdrawn_at.isoformat(),
            }
            return _organisers(audience, "declaration.withdrawn", facts)
        case EndpointDisabled():
            facts = {"endpoint_id": event.endpoint_id, "reason": event.reason}
            return _organisers(audience, "endpoint.disabled", facts)
        case _:
            return []


def _session_changed(
    event: SessionMoved | SessionCancelled,
    trigger: Trigger,
    session: Session,
    holders: Sequence[Person],
    window: timedelta,
) -> list[Draft]:
    if isinstance(event, SessionMoved):
        rule = "session.moved"
        change: dict[str, Any] = {
            "kind": "moved",
            "old_starts_at": event.old_starts_at.isoformat(),
            "old_ends_at": event.old_ends_at.isoformat(),
            "new_starts_at": event.new_starts_at.isoformat(),
            "new_ends_at": event.new_ends_at.isoformat(),
            "old_room": session.old_room or event.old_room_id,
            "new_room": session.room,
        }
    else:
        rule = "session.cancelled"
        change = {"kind": "cancelled", "reason": event.reason}
    facts = _session_facts(session, change)
    return [
        _to(
            person,
            rule,
            facts,
            digest_key=f"session:{session.session_id}:{person.participant_id}",
            not_before=trigger.time + window,
        )
        for person in holders
    ]
