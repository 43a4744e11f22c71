"""Registration's read models: tables, and the handlers that keep them in step with the log.

``participants`` holds one row per participant (contact details, accreditation, badge, where
they are) and the history of their passages through the venue gates. ``enrolments`` holds the
workshop sessions registration knows from the agenda, and every place on their rosters and
waitlists. Handlers change rows and nothing else; the runner commits them with the checkpoint.
Times are the log's (event bodies or envelopes), so a rebuild yields the same rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

from agora_events.contracts.registration import (
    AccreditationApproved,
    AccreditationRejected,
    BadgeIssued,
    CheckedIn,
    CheckedOut,
    ContactDetailsAmended,
    Enrolled,
    EnrolmentClosed,
    ParticipantReclassified,
    ParticipantRegistered,
    ParticipantWithdrew,
    PromotedFromWaitlist,
    SessionTermsRecorded,
    Unenrolled,
    Waitlisted,
)
from agora_events.projections import EventContext, Projection
from agora_events.projections.columns import UtcDateTime

# -- participants --------------------------------------------------------------------------

participant_tables = MetaData()

participants = Table(
    "registration_participants",
    participant_tables,
    Column("participant_id", String(8), primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("organisation", Text, nullable=False),
    Column("title", Text),
    Column("category", String(32), nullable=False),
    Column("delegation", String(3)),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("badge_number", String(16), unique=True),
    Column("badge_issue", Integer, nullable=False),
    Column("inside", Boolean, nullable=False),
    Column("last_gate", Text),
    Column("last_passage_at", UtcDateTime),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Index("ix_registration_participants_delegation", "delegation"),
    Index("ix_registration_participants_status", "status"),
    Index("ix_registration_participants_category", "category"),
)

passages = Table(
    "registration_passages",
    participant_tables,
    Column("participant_id", String(8), primary_key=True),
    Column("sequence", BigInteger, primary_key=True),
    Column("direction", String(3), nullable=False),
    Column("gate", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

participant_view = Projection(
    "participants", subjects=["registration.participant.>"], metadata=participant_tables
)


async def _touch(
    db: AsyncSession, participant_id: str, ctx: EventContext, **values: object
) -> None:
    await db.execute(
        update(participants)
        .where(participants.c.participant_id == participant_id)
        .values(updated_at=ctx.time, sequence=ctx.sequence, **values)
    )


_REGISTER = insert(participants)
"""Built once and executed with each registration's values: the runner queues it without
analysing it, and sends a batch's registrations as one executemany."""


@participant_view.on(ParticipantRegistered)
async def registered(db: AsyncSession, event: ParticipantRegistered, ctx: EventContext) -> None:
    await db.execute(
        _REGISTER,
        {
            "participant_id": event.participant_id,
            "name": event.name,
            "email": event.email,
            "organisation": event.organisation,
            "title": event.title,
            "category": event.category,
            "delegation": event.delegation,
            "status": "submitted",
            "badge_issue": 0,
            "inside": False,
            "registered_at": ctx.time,
            "updated_at": ctx.time,
            "sequence": ctx.sequence,
        },
    )


@participant_view.on(ContactDetailsAmended)
async def amended(db: AsyncSession, event: ContactDetailsAmended, ctx: EventContext) -> None:
    changed = event.model_dump(exclude={"participant_id"}, exclude_none=True)
    if "title" in changed:
        changed["title"] = changed["title"] or None
    await _touch(db, event.participant_id, ctx, **changed)


@participant_view.on(ParticipantReclassified)
async def reclassified(db: AsyncSession, event: ParticipantReclassified, ctx: EventContext) -> None:
    await _touch(
        db,
        event.participant_id,
        ctx,
        category=event.category,
        delegation=event.delegation,
        status="submitted",
        reason=None,
    )


@participant_view.on(AccreditationApproved)
async def approved(db: AsyncSession, event: AccreditationApproved, ctx: EventContext) -> None:
    badge = event.badge
    if badge is None:  # recorded before approvals carried the badge: a BadgeIssued follows
        await _touch(db, event.participant_id, ctx, status="approved", reason=None)
        return
    await _touch(
        db,
        event.participant_id,
        ctx,
        status="approved",
        reason=None,
        badge_number=badge.badge_number,
        badge_issue=badge.issue,
    )


@participant_view.on(BadgeIssued)
async def badge_issued(db: AsyncSession, event: BadgeIssued, ctx: EventContext) -> None:
    await _touch(
        db, event.participant_id, ctx, badge_number=event.badge_number, badge_issue=event.issue
    )


@participant_view.on(AccreditationRejected)
async def rejected(db: AsyncSession, event: AccreditationRejected, ctx: EventContext) -> None:
    await _touch(db, event.participant_id, ctx, status="rejected", reason=event.reason)


@participant_view.on(ParticipantWithdrew)
async def withdrew(db: AsyncSession, event: ParticipantWithdrew, ctx: EventContext) -> None:
    await _touch(db, event.participant_id, ctx, status="withdrawn", reason=event.reason)


async def _passage(
    db: AsyncSession, event: CheckedIn | CheckedOut, ctx: EventContext, direction: str
) -> None:
    await db.execute(
        insert(passages).values(
            participant_id=event.participant_id,
            sequence=ctx.sequence,
            direction=direction,
            gate=event.gate,
            at=event.at,
        )
    )
    await _touch(
        db,
        event.participant_id,
        ctx,
        inside=direction == "in",
        last_gate=event.gate,
        last_passage_at=event.at,
    )


@participant_view.on(CheckedIn)
async def checked_in(db: AsyncSession, event: CheckedIn, ctx: EventContext) -> None:
    await _passage(db, event, ctx, "in")


@participant_view.on(CheckedOut)
async def checked_out(db: AsyncSession, event: CheckedOut, ctx: EventContext) -> None:
    await _passage(db, event, ctx, "out")


# -- enrolments ----------------------------------------------------------------------------

enrolment_tables = MetaData()

sessions = Table(
    "registration_sessions",
    enrolment_tables,
    Column("session_id", String(128), primary_key=True),
    Column("edition_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("room_id", String(128), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("cancelled", Text),
    Column("sequence", BigInteger, nullable=False),
)

places = Table(
    "registration_places",
    enrolment_tables,
    Column("session_id", String(128), primary_key=True),
    Column("participant_id", String(8), primary_key=True),
    Column("claim", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    # The sequence of the event that put the place in its current list: orders the waitlist.
    Column("since", BigInteger, nullable=False),
    Index("ix_registration_places_participant", "participant_id"),
)

enrolment_view = Projection(
    "enrolments", subjects=["registration.enrolment.>"], metadata=enrolment_tables
)


@enrolment_view.on(SessionTermsRecorded)
async def terms_recorded(db: AsyncSession, event: SessionTermsRecorded, ctx: EventContext) -> None:
    values = {
        "edition_id": event.edition_id,
        "kind": event.kind,
        "title": event.title,
        "room_id": event.room_id,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "capacity": event.capacity,
        "sequence": ctx.sequence,
    }
    known = await db.execute(
        select(sessions.c.session_id).where(sessions.c.session_id == event.session_id)
    )
    if known.first() is None:
        await db.execute(insert(sessions).values(session_id=event.session_id, **values))
    else:
        await db.execute(
            update(sessions).where(sessions.c.session_id == event.session_id).values(**values)
        )


@enrolment_view.on(Enrolled)
async def enrolled(db: AsyncSession, event: Enrolled, ctx: EventContext) -> None:
    await _place(db, event, ctx, "enrolled")


@enrolment_view.on(Waitlisted)
async def waitlisted(db: AsyncSession, event: Waitlisted, ctx: EventContext) -> None:
    await _place(db, event, ctx, "waitlisted")


async def _place(
    db: AsyncSession, event: Enrolled | Waitlisted, ctx: EventContext, status: str
) -> None:
    await db.execute(
        insert(places).values(
            session_id=event.session_id,
            participant_id=event.participant_id,
            claim=event.claim,
            status=status,
            since=ctx.sequence,
        )
    )


@enrolment_view.on(PromotedFromWaitlist)
async def promoted(db: AsyncSession, event: PromotedFromWaitlist, ctx: EventContext) -> None:
    await db.execute(
        update(places)
        .where(
            (places.c.session_id == event.session_id)
            & (places.c.participant_id == event.participant_id)
        )
        .values(status="enrolled", since=ctx.sequence)
    )


@enrolment_view.on(Unenrolled)
async def unenrolled(db: AsyncSession, event: Unenrolled, ctx: EventContext) -> None:
    await db.execute(
        delete(places).where(
            (places.c.session_id == event.session_id)
            & (places.c.participant_id == event.participant_id)
        )
    )


@enrolment_view.on(EnrolmentClosed)
async def closed(db: AsyncSession, event: EnrolmentClosed, ctx: EventContext) -> None:
    await db.execute(delete(places).where(places.c.session_id == event.session_id))
    await db.execute(
        update(sessions)
        .where(sessions.c.session_id == event.session_id)
        .values(cancelled=event.reason, sequence=ctx.sequence)
    )


def all_projections() -> list[Projection]:
    return [participant_view, enrolment_view]
