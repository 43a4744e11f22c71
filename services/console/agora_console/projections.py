"""The console's read models, built from the other contexts' events like any consumer's.

``programme`` (agenda.>) holds editions, rooms, the working draft of sessions and a copy of
every published version, taken when SchedulePublished is applied: the public pages show
only what was published. ``declaration`` (declarations.>) holds declarations, their texts'
hashes and every signature ever made, so the status as of any instant is answered by the
events' own times. ``participants`` (registration.participant.>) holds who holds which
badge, their accreditation and whether they are inside: what the gate and the accreditation
queue answer from. No e-mail address is kept. ``workshops`` (registration.enrolment.>)
holds each enrollable session's capacity and its places, enrolled or waitlisted (a place is
a participant's numbered claim). Handlers change rows and nothing else.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
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
    SchedulePublished,
    SessionCancelled,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.contracts.declarations import (
    DeclarationDrafted,
    DeclarationOpenedForSignature,
    DeclarationRedrafted,
    DeclarationSigned,
    DeclarationTextSet,
    SignatureWindowExtended,
    SignatureWithdrawn,
)
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

from .domain import normalise_badge

# -- the programme ------------------------------------------------------------------------

programme_tables = MetaData()

editions = Table(
    "console_editions",
    programme_tables,
    Column("edition_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("host_city", Text, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("time_zone", String(64), nullable=False),
)

rooms = Table(
    "console_rooms",
    programme_tables,
    Column("room_id", String(128), primary_key=True),
    Column("edition_id", String(128), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
)


def _session_columns() -> list[Column[Any]]:
    return [
        Column("edition_id", String(128), nullable=False, index=True),
        Column("kind", String(32), nullable=False),
        Column("title", Text, nullable=False),
        Column("workshop_number", Integer),
        Column("workshop_title", Text),
        Column("room_id", String(128), nullable=False),
        Column("starts_at", UtcDateTime, nullable=False),
        Column("ends_at", UtcDateTime, nullable=False),
        Column("day", Date, nullable=False),
        Column("tentative", Boolean, nullable=False),
        Column("cancelled", Boolean, nullable=False),
        Column("cancel_reason", Text),
        # [{"person_id", "name", "title", "role"}], in the order they were assigned
        Column("people", JSON, nullable=False),
    ]


sessions = Table(
    "console_sessions",
    programme_tables,
    Column("session_id", String(128), primary_key=True),
    *_session_columns(),
)

published_sessions = Table(
    "console_published_sessions",
    programme_tables,
    Column("version", Integer, primary_key=True),
    Column("session_id", String(128), primary_key=True),
    *_session_columns(),
)

versions = Table(
    "console_versions",
    programme_tables,
    Column("edition_id", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("label", Text, nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
    # What changed since the version before, as agenda's SchedulePublished says (session ids)
    Column("changes", JSON, nullable=False),
)

programme = Projection("programme", subjects=["agenda.>"], metadata=programme_tables)


@programme.on(EditionPlanned)
async def _planned(db: AsyncSession, event: EditionPlanned, ctx: EventContext) -> None:
    await db.execute(
        insert(editions).values(
            edition_id=event.edition_id,
            name=event.name,
            host_city=event.host_city,
            start_date=event.start_date,
            end_date=event.end_date,
            time_zone=event.time_zone,
        )
    )


@programme.on(EditionDetailsChanged)
async def _edition_changed(
    db: AsyncSession, event: EditionDetailsChanged, ctx: EventContext
) -> None:
    changes = event.model_dump(
        include={"name", "host_city", "start_date", "end_date", "time_zone"}, exclude_none=True
    )
    if changes:
        await db.execute(
            update(editions).where(editions.c.edition_id == event.edition_id).values(**changes)
        )
    if event.time_zone is not None:
        zone = ZoneInfo(event.time_zone)
        rows = await db.execute(
            select(sessions.c.session_id, sessions.c.starts_at).where(
                sessions.c.edition_id == event.edition_id
            )
        )
        for session_id, starts_at in rows.all():
            await db.execute(
                update(sessions)
                .where(sessions.c.session_id == session_id)
                .values(day=starts_at.astimezone(zone).date())
            )


@programme.on(RoomAdded)
async def _room_added(db: AsyncSession, event: RoomAdded, ctx: EventContext) -> None:
    await db.execute(
        insert(rooms).values(
            room_id=event.room_id,
            edition_id=event.edition_id,
            name=event.name,
            position=ctx.sequence,
        )
    )


@programme.on(RoomRenamed)
async def _room_renamed(db: AsyncSession, event: RoomRenamed, ctx: EventContext) -> None:
    await db.execute(
        update(rooms).where(rooms.c.room_id == event.room_id).values(name=event.new_name)
    )


async def _local_day(db: AsyncSession, edition_id: str, moment: datetime) -> date:
    zone = (
        await db.execute(select(editions.c.time_zone).where(editions.c.edition_id == edition_id))
    ).scalar_one()
    return moment.astimezone(ZoneInfo(zone)).date()


@programme.on(SessionScheduled)
async def _scheduled(db: AsyncSession, event: SessionScheduled, ctx: EventContext) -> None:
    await db.execute(
        insert(sessions).values(
            session_id=event.session_id,
            edition_id=event.edition_id,
            kind=event.kind,
            title=event.title,
            workshop_number=event.workshop.number if event.workshop else None,
            workshop_title=event.workshop.title if event.workshop else None,
            room_id=event.room_id,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            day=await _local_day(db, event.edition_id, event.starts_at),
            tentative=event.tentative,
            cancelled=False,
            people=[],
        )
    )


@programme.on(SessionMoved)
async def _moved(db: AsyncSession, event: SessionMoved, ctx: EventContext) -> None:
    await db.execute(
        update(sessions)
        .where(sessions.c.session_id == event.session_id)
        .values(
            room_id=event.new_room_id,
            starts_at=event.new_starts_at,
            ends_at=event.new_ends_at,
            day=await _local_day(db, event.edition_id, event.new_starts_at),
            tentative=event.tentative,
        )
    )


@programme.on(SessionDetailsChanged)
async def _details(db: AsyncSession, event: SessionDetailsChanged, ctx: EventContext) -> None:
    values: dict[str, Any] = {}
    if event.title is not None:
        values["title"] = event.title
    if event.kind is not None:
        values["kind"] = event.kind
    if event.workshop is not None:
        values |= {"workshop_number": event.workshop.number, "workshop_title": event.workshop.title}
    if event.workshop_cleared:
        values |= {"workshop_number": None, "workshop_title": None}
    if values:
        await db.execute(
            update(sessions).where(sessions.c.session_id == event.session_id).values(**values)
        )


@programme.on(SessionCancelled)
async def _cancelled(db: AsyncSession, event: SessionCancelled, ctx: EventContext) -> None:
    await db.execute(
        update(sessions)
        .where(sessions.c.session_id == event.session_id)
        .values(cancelled=True, cancel_reason=event.reason)
    )


async def _people(db: AsyncSession, session_id: str) -> list[dict[str, Any]]:
    found = await db.execute(select(sessions.c.people).where(sessions.c.session_id == session_id))
    return list(found.scalar_one())


@programme.on(PersonAssigned)
async def _assigned(db: AsyncSession, event: PersonAssigned, ctx: EventContext) -> None:
    person = {
        "person_id": event.person_id,
        "name": event.name,
        "title": event.title,
        "role": event.role,
    }
    people = await _people(db, event.session_id)
    at = next((i for i, p in enumerate(people) if p["person_id"] == event.person_id), None)
    if at is None:
        people.append(person)
    else:
        people[at] = person
    await db.execute(
        update(sessions).where(sessions.c.session_id == event.session_id).values(people=people)
    )


@programme.on(PersonRemoved)
async def _removed(db: AsyncSession, event: PersonRemoved, ctx: EventContext) -> None:
    people = [p for p in await _people(db, event.session_id) if p["person_id"] != event.person_id]
    await db.execute(
        update(sessions).where(sessions.c.session_id == event.session_id).values(people=people)
    )


@programme.on(SchedulePublished)
async def _published(db: AsyncSession, event: SchedulePublished, ctx: EventContext) -> None:
    await db.execute(
        insert(versions).values(
            edition_id=event.edition_id,
            version=event.version,
            label=event.label,
            published_at=event.published_at,
            changes={
                "new": list(event.new),
                "moved": list(event.moved),
                "cancelled": list(event.cancelled),
                "changed": list(event.changed),
            },
        )
    )
    draft = (
        await db.execute(select(sessions).where(sessions.c.edition_id == event.edition_id))
    ).all()
    if draft:
        await db.execute(
            insert(published_sessions),
            [{**row._mapping, "version": event.version} for row in draft],
        )


# -- declarations ---------------------------------------------------------------------------

declaration_tables = MetaData()

declarations = Table(
    "console_declarations",
    declaration_tables,
    Column("declaration_id", String(128), primary_key=True),
    Column("title", Text, nullable=False),
    Column("edition_id", String(128), nullable=False),
    Column("launched_by", String(3), nullable=False),
    Column("priorities", JSON, nullable=False),
    Column("status", String(8), nullable=False),
    Column("opens_at", UtcDateTime),
    Column("closes_at", UtcDateTime),
)

texts = Table(
    "console_declaration_texts",
    declaration_tables,
    Column("declaration_id", String(128), primary_key=True),
    Column("language", String(35), primary_key=True),
    Column("sha256", String(64), nullable=False),
)

signatures = Table(
    "console_signatures",
    declaration_tables,
    Column("declaration_id", String(128), primary_key=True),
    Column("state", String(3), primary_key=True),
    Column("signed_at", UtcDateTime, primary_key=True),
    Column("signatory_name", Text, nullable=False),
    Column("signatory_title", Text),
    Column("capacity", String(32), nullable=False),
    Column("demo", Boolean, nullable=False),
    Column("withdrawn_at", UtcDateTime),
)

declaration = Projection("declaration", subjects=["declarations.>"], metadata=declaration_tables)


@declaration.on(DeclarationDrafted)
async def _drafted(db: AsyncSession, event: DeclarationDrafted, ctx: EventContext) -> None:
    await db.execute(
        insert(declarations).values(
            declaration_id=event.declaration_id,
            title=event.title,
            edition_id=event.edition_id,
            launched_by=event.launched_by,
            priorities=[p.model_dump() for p in event.priorities],
            status="draft",
        )
    )


@declaration.on(DeclarationRedrafted)
async def _redrafted(db: AsyncSession, event: DeclarationRedrafted, ctx: EventContext) -> None:
    values: dict[str, Any] = {}
    if event.title is not None:
        values["title"] = event.title
    if event.priorities is not None:
        values["priorities"] = [p.model_dump() for p in event.priorities]
    if values:
        await db.execute(
            update(declarations)
            .where(declarations.c.declaration_id == event.declaration_id)
            .values(**values)
        )


@declaration.on(DeclarationTextSet)
async def _text_set(db: AsyncSession, event: DeclarationTextSet, ctx: EventContext) -> None:
    await db.execute(
        delete(texts).where(
            texts.c.declaration_id == event.declaration_id, texts.c.language == event.language
        )
    )
    await db.execute(
        insert(texts).values(
            declaration_id=event.declaration_id, language=event.language, sha256=event.sha256
        )
    )


@declaration.on(DeclarationOpenedForSignature)
async def _opened(
    db: AsyncSession, event: DeclarationOpenedForSignature, ctx: EventContext
) -> None:
    await db.execute(
        update(declarations)
        .where(declarations.c.declaration_id == event.declaration_id)
        .values(status="open", opens_at=event.opens_at, closes_at=event.closes_at)
    )


@declaration.on(SignatureWindowExtended)
async def _extended(db: AsyncSession, event: SignatureWindowExtended, ctx: EventContext) -> None:
    await db.execute(
        update(declarations)
        .where(declarations.c.declaration_id == event.declaration_id)
        .values(closes_at=event.closes_at)
    )


@declaration.on(DeclarationSigned)
async def _signed(db: AsyncSession, event: DeclarationSigned, ctx: EventContext) -> None:
    await db.execute(
        insert(signatures).values(
            declaration_id=event.declaration_id,
            state=event.state,
            signed_at=event.signed_at,
            signatory_name=event.signatory_name,
            signatory_title=event.signatory_title,
            capacity=event.capacity,
            demo=event.demo,
        )
    )


@declaration.on(SignatureWithdrawn)
async def _withdrawn(db: AsyncSession, event: SignatureWithdrawn, ctx: EventContext) -> None:
    await db.execute(
        update(signatures)
        .where(
            signatures.c.declaration_id == event.declaration_id,
            signatures.c.state == event.state,
            signatures.c.signed_at == event.signed_at,
        )
        .values(withdrawn_at=event.withdrawn_at)
    )


# -- participants at the gates ------------------------------------------------------------------

participant_tables = MetaData()

participants = Table(
    "console_participants",
    participant_tables,
    Column("participant_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("category", String(32), nullable=False),
    Column("delegation", String(3)),
    Column("status", String(16), nullable=False),
    Column("badge", String(16), index=True),
    Column("badge_number", String(16)),
    Column("inside_since", UtcDateTime),
    Column("gate", Text),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("reason", Text),
)

people = Projection(
    "participants", subjects=["registration.participant.>"], metadata=participant_tables
)


async def _participant(db: AsyncSession, participant_id: str, **values: Any) -> None:
    await db.execute(
        update(participants).where(participants.c.participant_id == participant_id).values(**values)
    )


def _badge(number: str) -> dict[str, str]:
    return {"badge": normalise_badge(number), "badge_number": number}


@people.on(ParticipantRegistered)
async def _registered(db: AsyncSession, event: ParticipantRegistered, ctx: EventContext) -> None:
    await db.execute(
        insert(participants).values(
            participant_id=event.participant_id,
            name=event.name,
            category=event.category,
            delegation=event.delegation,
            status="submitted",
            registered_at=ctx.time,
        )
    )


@people.on(ContactDetailsAmended)
async def _amended(db: AsyncSession, event: ContactDetailsAmended, ctx: EventContext) -> None:
    if event.name is not None:
        await _participant(db, event.participant_id, name=event.name)


@people.on(ParticipantReclassified)
async def _reclassified(
    db: AsyncSession, event: ParticipantReclassified, ctx: EventContext
) -> None:
    await _participant(
        db,
        event.participant_id,
        category=event.category,
        delegation=event.delegation,
        status="submitted",
        reason=None,
    )


@people.on(AccreditationApproved)
async def _approved(db: AsyncSession, event: AccreditationApproved, ctx: EventContext) -> None:
    badge = _badge(event.badge.badge_number) if event.badge is not None else {}
    await _participant(db, event.participant_id, status="approved", reason=None, **badge)


@people.on(BadgeIssued)
async def _badge_issued(db: AsyncSession, event: BadgeIssued, ctx: EventContext) -> None:
    await _participant(db, event.participant_id, **_badge(event.badge_number))


@people.on(AccreditationRejected)
async def _rejected(db: AsyncSession, event: AccreditationRejected, ctx: EventContext) -> None:
    await _participant(db, event.participant_id, status="rejected", reason=event.reason)


@people.on(ParticipantWithdrew)
async def _withdrew(db: AsyncSession, event: ParticipantWithdrew, ctx: EventContext) -> None:
    await _participant(db, event.participant_id, status="withdrawn", reason=event.reason)


@people.on(CheckedIn)
async def _checked_in(db: AsyncSession, event: CheckedIn, ctx: EventContext) -> None:
    await _participant(db, event.participant_id, inside_since=event.at, gate=event.gate)


@people.on(CheckedOut)
async def _checked_out(db: AsyncSession, event: CheckedOut, ctx: EventContext) -> None:
    await _participant(db, event.participant_id, inside_since=None, gate=None)


# -- workshop places ------------------------------------------------------------------------------

enrolment_tables = MetaData()

enrolment_sessions = Table(
    "console_enrolment_sessions",
    enrolment_tables,
    Column("session_id", String(128), primary_key=True),
    Column("edition_id", String(128), nullable=False),
    Column("title", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("promotions", Integer, nullable=False),
    Column("last_promotion_at", UtcDateTime),
    Column("closed_reason", Text),
)

claims = Table(
    "console_claims",
    enrolment_tables,
    Column("session_id", String(128), primary_key=True),
    Column("participant_id", String(128), primary_key=True),
    Column("claim", Integer, primary_key=True),
    Column("state", String(16), nullable=False),  # enrolled, waitlisted
)

workshops = Projection(
    "workshops", subjects=["registration.enrolment.>"], metadata=enrolment_tables
)


@workshops.on(SessionTermsRecorded)
async def _terms(db: AsyncSession, event: SessionTermsRecorded, ctx: EventContext) -> None:
    terms = {
        "edition_id": event.edition_id,
        "title": event.title,
        "kind": event.kind,
        "starts_at": event.starts_at,
        "capacity": event.capacity,
    }
    key = enrolment_sessions.c.session_id == event.session_id
    if (await db.execute(select(enrolment_sessions.c.session_id).where(key))).first() is None:
        await db.execute(
            insert(enrolment_sessions).values(session_id=event.session_id, promotions=0, **terms)
        )
    else:
        await db.execute(update(enrolment_sessions).where(key).values(**terms))


async def _claim(
    db: AsyncSession, session_id: str, claim: int, participant_id: str, state: str
) -> None:
    await db.execute(
        delete(claims).where(
            claims.c.session_id == session_id,
            claims.c.participant_id == participant_id,
            claims.c.claim == claim,
        )
    )
    await db.execute(
        insert(claims).values(
            session_id=session_id, claim=claim, participant_id=participant_id, state=state
        )
    )


@workshops.on(Enrolled)
async def _enrolled(db: AsyncSession, event: Enrolled, ctx: EventContext) -> None:
    await _claim(db, event.session_id, event.claim, event.participant_id, "enrolled")


@workshops.on(Waitlisted)
async def _waitlisted(db: AsyncSession, event: Waitlisted, ctx: EventContext) -> None:
    await _claim(db, event.session_id, event.claim, event.participant_id, "waitlisted")


@workshops.on(PromotedFromWaitlist)
async def _promoted(db: AsyncSession, event: PromotedFromWaitlist, ctx: EventContext) -> None:
    await _claim(db, event.session_id, event.claim, event.participant_id, "enrolled")
    await db.execute(
        update(enrolment_sessions)
        .where(enrolment_sessions.c.session_id == event.session_id)
        .values(promotions=enrolment_sessions.c.promotions + 1, last_promotion_at=ctx.time)
    )


@workshops.on(Unenrolled)
async def _unenrolled(db: AsyncSession, event: Unenrolled, ctx: EventContext) -> None:
    await db.execute(
        delete(claims).where(
            claims.c.session_id == event.session_id,
            claims.c.participant_id == event.participant_id,
            claims.c.claim == event.claim,
        )
    )


@workshops.on(EnrolmentClosed)
async def _closed(db: AsyncSession, event: EnrolmentClosed, ctx: EventContext) -> None:
    await db.execute(delete(claims).where(claims.c.session_id == event.session_id))
    await db.execute(
        update(enrolment_sessions)
        .where(enrolment_sessions.c.session_id == event.session_id)
        .values(closed_reason=event.reason)
    )


def all_projections() -> list[Projection]:
    return [programme, declaration, people, workshops]
