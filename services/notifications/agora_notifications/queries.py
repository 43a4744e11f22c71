"""Read-model queries: whom an event concerns (for the reactor), and what the API shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import SessionCancelled, SessionMoved
from agora_events.contracts.declarations import DeclarationSigned, SignatureWithdrawn
from agora_events.contracts.notifications import EndpointDisabled
from agora_events.contracts.registration import PromotedFromWaitlist, Waitlisted
from agora_events.decider import NotFound

from .domain import Audience, Person, Session, WebhookTarget
from .projections import (
    assigned,
    attempts,
    editions,
    endpoints,
    notices,
    participants,
    places,
    rooms,
    sessions,
)

ORGANISER_EVENTS = (DeclarationSigned, SignatureWithdrawn, EndpointDisabled)


async def person(db: AsyncSession, participant_id: str) -> Person | None:
    row = (
        await db.execute(
            select(participants).where(participants.c.participant_id == participant_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return Person(row.participant_id, row.name, row.email, row.language)


async def _room_name(db: AsyncSession, room_id: str | None) -> str | None:
    if room_id is None:
        return None
    name = await db.scalar(select(rooms.c.name).where(rooms.c.room_id == room_id))
    return name or room_id


async def session(db: AsyncSession, session_id: str) -> Session | None:
    row = (
        await db.execute(select(sessions).where(sessions.c.session_id == session_id))
    ).one_or_none()
    if row is None:
        return None
    edition = (
        await db.execute(select(editions).where(editions.c.edition_id == row.edition_id))
    ).one_or_none()
    return Session(
        session_id=row.session_id,
        title=row.title,
        room=await _room_name(db, row.room_id) or row.room_id,
        old_room=await _room_name(db, row.old_room_id),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        time_zone=edition.time_zone if edition else "UTC",
        place=edition.host_city if edition else "",
        sequence=row.revision,
    )


async def holders(db: AsyncSession, session_id: str) -> list[Person]:
    """Those holding a place in the session, and those assigned to it who are registered
    (an agenda person id that is a participant id), each once, withdrawn ones left out."""
    holding = select(places.c.participant_id).where(places.c.session_id == session_id)
    named = select(assigned.c.person_id).where(assigned.c.session_id == session_id)
    rows = (
        await db.execute(
            select(participants)
            .where(
                participants.c.participant_id.in_(holding.union(named)),
                participants.c.status != "withdrawn",
            )
            .order_by(participants.c.participant_id)
        )
    ).all()
    return [Person(r.participant_id, r.name, r.email, r.language) for r in rows]


async def webhook_targets(db: AsyncSession) -> list[WebhookTarget]:
    rows = (
        await db.execute(
            select(endpoints.c.endpoint_id, endpoints.c.event_types).where(
                endpoints.c.status == "enabled"
            )
        )
    ).all()
    return [WebhookTarget(r.endpoint_id, tuple(r.event_types)) for r in rows]


async def audience(
    db: AsyncSession, event: DomainEvent, organisers: Sequence[str], *, webhooks: bool
) -> Audience:
    """Whom ``event`` may concern, as this service's read models know them now."""
    found: dict[str, Any] = {}
    participant_id = getattr(event, "participant_id", None)
    if event.meta.context == "registration" and isinstance(participant_id, str):
        found["participant"] = await person(db, participant_id)
    if isinstance(event, Waitlisted | PromotedFromWaitlist | SessionMoved | SessionCancelled):
        found["session"] = await session(db, event.session_id)
    if isinstance(event, SessionMoved | SessionCancelled):
        found["holders"] = await holders(db, event.session_id)
    if isinstance(event, ORGANISER_EVENTS):
        found["organisers"] = tuple(organisers)
    if webhooks:
        found["endpoints"] = await webhook_targets(db)
    return Audience(**found)


# -- the API's views ---------------------------------------------------------------------------


class EndpointView(BaseModel):
    endpoint_id: str
    url: str
    event_types: list[str]
    description: str | None
    status: str
    reason: str | None
    secret_generation: int
    previous_secret_valid_until: datetime | None
    created_at: datetime


class AttemptView(BaseModel):
    notice_id: str
    attempt: int
    outcome: str
    status: int | None
    latency_ms: int | None
    error: str | None
    at: datetime
    sequence: int


class NoticeView(BaseModel):
    notice_id: str
    rule: str
    channel: str
    recipient: str
    trigger_event_id: str
    trigger_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    reason: str | None
    message_id: str | None
    decided_at: datetime


def _endpoint_view(row: Any) -> EndpointView:
    return EndpointView(
        endpoint_id=row.endpoint_id,
        url=row.url,
        event_types=list(row.event_types),
        description=row.description,
        status=row.status,
        reason=row.reason,
        secret_generation=row.generation,
        previous_secret_valid_until=row.previous_valid_until,
        created_at=row.created_at,
    )


async def endpoint_list(db: AsyncSession) -> list[EndpointView]:
    rows = (
        await db.execute(
            select(endpoints)
            .where(endpoints.c.status != "removed")
            .order_by(endpoints.c.created_at)
        )
    ).all()
    return [_endpoint_view(r) for r in rows]


async def endpoint(db: AsyncSession, endpoint_id: str) -> EndpointView:
    row = (
        await db.execute(select(endpoints).where(endpoints.c.endpoint_id == endpoint_id))
    ).one_or_none()
    if row is None or row.status == "removed":
        raise NotFound(f"there is no webhook endpoint {endpoint_id}")
    return _endpoint_view(row)


async def delivery_log(db: AsyncSession, endpoint_id: str, limit: int) -> list[AttemptView]:
    await endpoint(db, endpoint_id)
    rows = (
        await db.execute(
            select(attempts)
            .where(attempts.c.recipient == endpoint_id)
            .order_by(attempts.c.sequence.desc())
            .limit(limit)
        )
    ).all()
    return [
        AttemptView(
            notice_id=r.notice_id,
            attempt=r.attempt,
            outcome=r.outcome,
            status=r.status,
            latency_ms=r.latency_ms,
            error=r.error,
            at=r.at,
            sequence=r.sequence,
        )
        for r in rows
    ]


def _notice_view(r: Any) -> NoticeView:
    return NoticeView(
        notice_id=r.notice_id,
        rule=r.rule,
        channel=r.channel,
        recipient=r.recipient,
        trigger_event_id=r.trigger_event_id,
        trigger_type=r.trigger_type,
        status=r.status,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        reason=r.reason,
        message_id=r.message_id,
        decided_at=r.decided_at,
    )


async def notice_list(
    db: AsyncSession, *, status: str | None, recipient: str | None, limit: int
) -> list[NoticeView]:
    query = select(notices).order_by(notices.c.sequence.desc()).limit(limit)
    if status is not None:
        query = query.where(notices.c.status == status)
    if recipient is not None:
        query = query.where(notices.c.recipient == recipient)
    return [_notice_view(r) for r in (await db.execute(query)).all()]


async def notice(db: AsyncSession, notice_id: str) -> NoticeView:
    row = (await db.execute(select(notices).where(notices.c.notice_id == notice_id))).one_or_none()
    if row is None:
        raise NotFound(f"there is no notice {notice_id}")
    return _notice_view(row)
