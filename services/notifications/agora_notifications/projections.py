"""Notifications' read models.

``recipients`` learns, from REGISTRATION and AGENDA, whom a notice can reach and about what:
participants (name, address, language), the places they hold, the people assigned to
sessions, and the sessions themselves with the iCalendar SEQUENCE the agenda's feed gives
them (one more for every command that changed the session, as the agenda counts).

``deliveries`` follows this service's own stream: every notice with its delivery state
(what the dispatcher picks due notices from), every attempt (the delivery log), and the
webhook endpoints. Handlers change rows and nothing else; times are the log's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.contracts.agenda import (
    EditionDetailsChanged,
    EditionPlanned,
    PersonAssigned,
    PersonRemoved,
    RoomAdded,
    RoomRenamed,
    SessionCancelled,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.contracts.notifications import (
    DeliveryAttemptFailed,
    EndpointDisabled,
    EndpointEnabled,
    EndpointRegistered,
    EndpointRemoved,
    EndpointSecretRotated,
    NoticeDeadLettered,
    NoticeDecided,
    NoticeDelivered,
    NoticeDiscarded,
    NoticeRequeued,
)
from agora_events.contracts.registration import (
    AccreditationApproved,
    AccreditationRejected,
    ClaimRef,
    ContactDetailsAmended,
    ParticipantRegistered,
    ParticipantWithdrew,
    PlaceClaimed,
    PlaceReleased,
)
from agora_events.projections import EventContext, Projection
from agora_events.projections.columns import UtcDateTime

# -- recipients ------------------------------------------------------------------------------

recipient_tables = MetaData()

participants = Table(
    "notifications_participants",
    recipient_tables,
    Column("participant_id", String(8), primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("language", String(35)),
    Column("status", String(16), nullable=False),
)

places = Table(
    "notifications_places",
    recipient_tables,
    Column("participant_id", String(8), primary_key=True),
    Column("claim", Integer, primary_key=True),
    Column("session_id", String(128), nullable=False, index=True),
)

assigned = Table(
    "notifications_assigned",
    recipient_tables,
    Column("session_id", String(128), primary_key=True),
    Column("person_id", String(128), primary_key=True),
)

sessions = Table(
    "notifications_sessions",
    recipient_tables,
    Column("session_id", String(128), primary_key=True),
    Column("edition_id", String(128), nullable=False),
    Column("title", Text, nullable=False),
    Column("room_id", String(128), nullable=False),
    Column("old_room_id", String(128)),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("cancelled", Integer, nullable=False, default=0),
    Column("revision", Integer, nullable=False),
    Column("revision_cause", String(128)),
)

rooms = Table(
    "notifications_rooms",
    recipient_tables,
    Column("room_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
)

editions = Table(
    "notifications_editions",
    recipient_tables,
    Column("edition_id", String(128), primary_key=True),
    Column("time_zone", String(64), nullable=False),
    Column("host_city", Text, nullable=False),
)

recipients = Projection(
    "recipients",
    subjects=["registration.participant.>", "agenda.>"],
    metadata=recipient_tables,
)


@recipients.on(ParticipantRegistered)
async def _registered(db: AsyncSession, event: ParticipantRegistered, ctx: EventContext) -> None:
    await db.execute(
        insert(participants).values(
            participant_id=event.participant_id,
            name=event.name,
            email=event.email,
            language=event.language,
            status="submitted",
        )
    )


@recipients.on(ContactDetailsAmended)
async def _amended(db: AsyncSession, event: ContactDetailsAmended, ctx: EventContext) -> None:
    changed = event.model_dump(include={"name", "email"}, exclude_none=True)
    if changed:
        await db.execute(
            update(participants)
            .where(participants.c.participant_id == event.participant_id)
            .values(**changed)
        )


async def _status(db: AsyncSession, participant_id: str, status: str) -> None:
    await db.execute(
        update(participants)
        .where(participants.c.participant_id == participant_id)
        .values(status=status)
    )


async def _release(db: AsyncSession, participant_id: str, released: tuple[ClaimRef, ...]) -> None:
    for ref in released:
        await db.execute(
            delete(places).where(
                places.c.participant_id == participant_id, places.c.claim == ref.claim
            )
        )


@recipients.on(AccreditationApproved)
async def _approved(db: AsyncSession, event: AccreditationApproved, ctx: EventContext) -> None:
    await _status(db, event.participant_id, "approved")


@recipients.on(AccreditationRejected)
async def _rejected(db: AsyncSession, event: AccreditationRejected, ctx: EventContext) -> None:
    await _status(db, event.participant_id, "rejected")
    await _release(db, event.participant_id, event.released)


@recipients.on(ParticipantWithdrew)
async def _withdrew(db: AsyncSession, event: ParticipantWithdrew, ctx: EventContext) -> None:
    await _status(db, event.participant_id, "withdrawn")
    await _release(db, event.participant_id, event.released)


@recipients.on(PlaceClaimed)
async def _claimed(db: AsyncSession, event: PlaceClaimed, ctx: EventContext) -> None:
    await db.execute(
        insert(places).values(
            participant_id=event.participant_id, claim=event.claim, session_id=event.session_id
        )
    )


@recipients.on(PlaceReleased)
async def _released(db: AsyncSession, event: PlaceReleased, ctx: EventContext) -> None:
    await db.execute(
        delete(places).where(
            places.c.participant_id == event.participant_id, places.c.claim == event.claim
        )
    )


@recipients.on(EditionPlanned)
async def _edition(db: AsyncSession, event: EditionPlanned, ctx: EventContext) -> None:
    await db.execute(
        insert(editions).values(
            edition_id=event.edition_id, time_zone=event.time_zone, host_city=event.host_city
        )
    )


@recipients.on(EditionDetailsChanged)
async def _edition_changed(
    db: AsyncSession, event: EditionDetailsChanged, ctx: EventContext
) -> None:
    changed = event.model_dump(include={"time_zone", "host_city"}, exclude_none=True)
    if changed:
        await db.execute(
            update(editions).where(editions.c.edition_id == event.edition_id).values(**changed)
        )


@recipients.on(RoomAdded)
async def _room(db: AsyncSession, event: RoomAdded, ctx: EventContext) -> None:
    await db.execute(insert(rooms).values(room_id=event.room_id, name=event.name))


@recipients.on(RoomRenamed)
async def _room_renamed(db: AsyncSession, event: RoomRenamed, ctx: EventContext) -> None:
    await db.execute(
        update(rooms).where(rooms.c.room_id == event.room_id).values(name=event.new_name)
    )


@recipients.on(SessionScheduled)
async def _scheduled(db: AsyncSession, event: SessionScheduled, ctx: EventContext) -> None:
    await db.execute(
        insert(sessions).values(
            session_id=event.session_id,
            edition_id=event.edition_id,
            title=event.title,
            room_id=event.room_id,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            cancelled=0,
            revision=0,
            revision_cause=ctx.envelope.causationid,
        )
    )


async def _changed(db: AsyncSession, session_id: str, ctx: EventContext, **values: Any) -> None:
    """The agenda's revision rule: a command's first change to a session bumps it."""
    row = (
        await db.execute(
            select(sessions.c.revision, sessions.c.revision_cause).where(
                sessions.c.session_id == session_id
            )
        )
    ).one_or_none()
    if row is None:
        return
    cause = ctx.envelope.causationid
    revision = (
        row.revision if cause is not None and cause == row.revision_cause else row.revision + 1
    )
    await db.execute(
        update(sessions)
        .where(sessions.c.session_id == session_id)
        .values(revision=revision, revision_cause=cause, **values)
    )


@recipients.on(SessionMoved)
async def _moved(db: AsyncSession, event: SessionMoved, ctx: EventContext) -> None:
    await _changed(
        db,
        event.session_id,
        ctx,
        room_id=event.new_room_id,
        old_room_id=event.old_room_id,
        starts_at=event.new_starts_at,
        ends_at=event.new_ends_at,
    )


@recipients.on(SessionDetailsChanged)
async def _details(db: AsyncSession, event: SessionDetailsChanged, ctx: EventContext) -> None:
    values = {"title": event.title} if event.title is not None else {}
    await _changed(db, event.session_id, ctx, **values)


@recipients.on(SessionCancelled)
async def _cancelled(db: AsyncSession, event: SessionCancelled, ctx: EventContext) -> None:
    await _changed(db, event.session_id, ctx, cancelled=1)


@recipients.on(PersonAssigned)
async def _assigned(db: AsyncSession, event: PersonAssigned, ctx: EventContext) -> None:
    await _changed(db, event.session_id, ctx)
    await db.execute(
        delete(assigned).where(
            assigned.c.session_id == event.session_id, assigned.c.person_id == event.person_id
        )
    )
    await db.execute(
        insert(assigned).values(session_id=event.session_id, person_id=event.person_id)
    )


@recipients.on(PersonRemoved)
async def _removed(db: AsyncSession, event: PersonRemoved, ctx: EventContext) -> None:
    await _changed(db, event.session_id, ctx)
    await db.execute(
        delete(assigned).where(
            assigned.c.session_id == event.session_id, assigned.c.person_id == event.person_id
        )
    )


# -- deliveries ------------------------------------------------------------------------------

delivery_tables = MetaData()

notices = Table(
    "notifications_notices",
    delivery_tables,
    Column("notice_id", String(32), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient", String(128), nullable=False, index=True),
    Column("trigger_event_id", String(128), nullable=False),
    Column("trigger_type", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("digest_key", String(300)),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("trigger_sequence", BigInteger),
    Column("message_id", Text),
    Column("reason", Text),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Index("ix_notifications_notices_due", "status", "next_attempt_at"),
    Index("ix_notifications_notices_digest", "digest_key", "status"),
)

attempts = Table(
    "notifications_attempts",
    delivery_tables,
    Column("sequence", BigInteger, primary_key=True),
    Column("notice_id", String(32), nullable=False, index=True),
    Column("recipient", String(128), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer),
    Column("latency_ms", Integer),
    Column("error", Text),
    Column("at", UtcDateTime, nullable=False),
)

endpoints = Table(
    "notifications_endpoints",
    delivery_tables,
    Column("endpoint_id", String(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("description", Text),
    Column("status", String(16), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("previous_valid_until", UtcDateTime),
    Column("reason", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

deliveries = Projection("deliveries", subjects=["notifications.>"], metadata=delivery_tables)


async def _notice(db: AsyncSession, notice_id: str, ctx: EventContext, **values: Any) -> None:
    await db.execute(
        update(notices)
        .where(notices.c.notice_id == notice_id)
        .values(updated_at=ctx.time, sequence=ctx.sequence, **values)
    )


async def _recipient_of(db: AsyncSession, notice_id: str) -> str:
    found = await db.scalar(select(notices.c.recipient).where(notices.c.notice_id == notice_id))
    return found or ""


@deliveries.on(NoticeDecided)
async def _decided(db: AsyncSession, event: NoticeDecided, ctx: EventContext) -> None:
    sequence = event.facts.get("trigger_sequence")
    await db.execute(
        insert(notices).values(
            notice_id=event.notice_id,
            rule=event.rule,
            channel=event.channel,
            recipient=event.recipient,
            trigger_event_id=event.trigger_event_id,
            trigger_type=event.trigger_type,
            status="pending",
            attempts=0,
            next_attempt_at=event.not_before,
            digest_key=event.digest_key,
            decided_at=ctx.time,
            trigger_sequence=sequence if isinstance(sequence, int) else None,
            updated_at=ctx.time,
            sequence=ctx.sequence,
        )
    )


@deliveries.on(DeliveryAttemptFailed)
async def _failed(db: AsyncSession, event: DeliveryAttemptFailed, ctx: EventContext) -> None:
    values: dict[str, Any] = {"attempts": event.attempt, "reason": event.error}
    if event.next_attempt_at is not None:
        values["next_attempt_at"] = event.next_attempt_at
    await _notice(db, event.notice_id, ctx, **values)
    await db.execute(
        insert(attempts).values(
            sequence=ctx.sequence,
            notice_id=event.notice_id,
            recipient=await _recipient_of(db, event.notice_id),
            attempt=event.attempt,
            outcome="failed",
            status=event.status,
            latency_ms=event.latency_ms,
            error=event.error,
            at=ctx.time,
        )
    )


@deliveries.on(NoticeDelivered)
async def _delivered(db: AsyncSession, event: NoticeDelivered, ctx: EventContext) -> None:
    await _notice(
        db,
        event.notice_id,
        ctx,
        status="delivered",
        attempts=event.attempt,
        message_id=event.message_id,
        reason=None,
    )
    await db.execute(
        insert(attempts).values(
            sequence=ctx.sequence,
            notice_id=event.notice_id,
            recipient=await _recipient_of(db, event.notice_id),
            attempt=event.attempt,
            outcome="delivered" if event.carried_by is None else "carried",
            status=event.status,
            latency_ms=event.latency_ms,
            at=ctx.time,
        )
    )


@deliveries.on(NoticeDeadLettered)
async def _dead(db: AsyncSession, event: NoticeDeadLettered, ctx: EventContext) -> None:
    await _notice(db, event.notice_id, ctx, status="dead", reason=event.reason)


@deliveries.on(NoticeRequeued)
async def _requeued(db: AsyncSession, event: NoticeRequeued, ctx: EventContext) -> None:
    await _notice(
        db,
        event.notice_id,
        ctx,
        status="pending",
        attempts=0,
        next_attempt_at=ctx.time,
        reason=None,
    )


@deliveries.on(NoticeDiscarded)
async def _discarded(db: AsyncSession, event: NoticeDiscarded, ctx: EventContext) -> None:
    await _notice(db, event.notice_id, ctx, status="discarded", reason=event.reason)


@deliveries.on(EndpointRegistered)
async def _endpoint(db: AsyncSession, event: EndpointRegistered, ctx: EventContext) -> None:
    await db.execute(
        insert(endpoints).values(
            endpoint_id=event.endpoint_id,
            url=event.url,
            event_types=list(event.event_types),
            description=event.description,
            status="enabled",
            generation=1,
            created_at=ctx.time,
            updated_at=ctx.time,
        )
    )


async def _endpoint_update(
    db: AsyncSession, endpoint_id: str, ctx: EventContext, **values: Any
) -> None:
    await db.execute(
        update(endpoints)
        .where(endpoints.c.endpoint_id == endpoint_id)
        .values(updated_at=ctx.time, **values)
    )


@deliveries.on(EndpointSecretRotated)
async def _rotated(db: AsyncSession, event: EndpointSecretRotated, ctx: EventContext) -> None:
    await _endpoint_update(
        db,
        event.endpoint_id,
        ctx,
        generation=event.generation,
        previous_valid_until=event.previous_valid_until,
    )


@deliveries.on(EndpointDisabled)
async def _disabled(db: AsyncSession, event: EndpointDisabled, ctx: EventContext) -> None:
    await _endpoint_update(db, event.endpoint_id, ctx, status="disabled", reason=event.reason)


@deliveries.on(EndpointEnabled)
async def _enabled(db: AsyncSession, event: EndpointEnabled, ctx: EventContext) -> None:
    await _endpoint_update(db, event.endpoint_id, ctx, status="enabled", reason=None)


@deliveries.on(EndpointRemoved)
async def _endpoint_removed(db: AsyncSession, event: EndpointRemoved, ctx: EventContext) -> None:
    await _endpoint_update(db, event.endpoint_id, ctx, status="removed")


def all_projections() -> list[Projection]:
    return [recipients, deliveries]
