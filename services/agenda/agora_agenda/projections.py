"""The agenda's read models: tables, and the handlers that keep them in step with the log.

``programme`` holds editions, rooms, sessions with their people and history, and a snapshot of
every published version (taken when the SchedulePublished event is applied, so it is exactly
what was published). ``data_quality`` holds the current warnings of each edition.
Handlers change rows and nothing else; the runner commits them with the checkpoint.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
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
    DataQualityWarningRecorded,
    DataQualityWarningWithdrawn,
    EditionDetailsChanged,
    EditionPlanned,
    PersonAssigned,
    PersonRemoved,
    RoomAdded,
    RoomCapacityChanged,
    RoomRenamed,
    SchedulePublished,
    SessionCancelled,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.projections import EventContext, Projection
from agora_events.projections.columns import UtcDateTime

metadata = MetaData()

editions = Table(
    "agenda_editions",
    metadata,
    Column("edition_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("theme", Text),
    Column("host_city", Text, nullable=False),
    Column("host_country", String(3), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("time_zone", String(64), nullable=False),
    # The edition's workshops as its sources list them (EditionWorkshop, as JSON).
    Column("workshops", JSON, nullable=False, default=list),
    Column("updated_at", UtcDateTime, nullable=False),
)

rooms = Table(
    "agenda_rooms",
    metadata,
    Column("room_id", String(128), primary_key=True),
    Column("edition_id", String(128), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("capacity_estimated", Boolean, nullable=False, default=False),
)


def _session_columns() -> list[Column[Any]]:
    return [
        Column("kind", String(32), nullable=False),
        Column("title", Text, nullable=False),
        Column("workshop_number", Integer, index=True),
        Column("workshop_title", Text),
        Column("workshop_organisers", JSON, nullable=False, default=list),
        Column("workshop_partners", JSON, nullable=False, default=list),
        Column("room_id", String(128), nullable=False, index=True),
        Column("starts_at", UtcDateTime, nullable=False, index=True),
        Column("ends_at", UtcDateTime, nullable=False),
        Column("day", Date, nullable=False, index=True),
        Column("capacity", Integer),
        Column("tentative", Boolean, nullable=False, default=False),
        Column("time_source", Text),
        Column("cancelled", Boolean, nullable=False, default=False),
        Column("cancel_reason", Text),
        # The iCalendar SEQUENCE: one more for every command that changed the session.
        Column("revision", Integer, nullable=False, default=0),
        Column("revision_cause", String(128)),
        Column("updated_at", UtcDateTime, nullable=False),
    ]


def _people_columns() -> list[Column[Any]]:
    return [
        Column("name", Text, nullable=False),
        Column("title", Text),
        Column("role", String(32), nullable=False),
        Column("position", Integer, nullable=False),
    ]


# The working draft: every change as soon as it is applied (what organisers see).
sessions = Table(
    "agenda_sessions",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("edition_id", String(128), nullable=False, index=True),
    *_session_columns(),
)

session_people = Table(
    "agenda_session_people",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("person_id", String(128), primary_key=True, index=True),
    *_people_columns(),
)

# Every published version, as the public sees it: a copy of the draft's rows (cancelled
# sessions included, so calendars drop them) taken when SchedulePublished is applied.
published_sessions = Table(
    "agenda_published_sessions",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Column("edition_id", String(128), nullable=False, index=True),
    *_session_columns(),
)

published_people = Table(
    "agenda_published_people",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("edition_id", String(128), primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Column("person_id", String(128), primary_key=True),
    *_people_columns(),
)

session_changes = Table(
    "agenda_session_changes",
    metadata,
    Column("sequence", Integer, primary_key=True),
    Column("session_id", String(128), nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("change", String(32), nullable=False),
    Column("details", JSON, nullable=False),
)

versions = Table(
    "agenda_versions",
    metadata,
    Column("edition_id", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("label", Text, nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("new", JSON, nullable=False),
    Column("moved", JSON, nullable=False),
    Column("cancelled", JSON, nullable=False),
    Column("changed", JSON, nullable=False),
)

version_sessions = Table(
    "agenda_version_sessions",
    metadata,
    Column("edition_id", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("workshop_number", Integer),
    Column("room_id", String(128), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("capacity", Integer),
    Column("people", JSON, nullable=False),
)

warnings_metadata = MetaData()

warnings = Table(
    "agenda_data_quality",
    warnings_metadata,
    Column("edition_id", String(128), primary_key=True),
    Column("warning_id", String(64), primary_key=True),
    Column("session_id", String(128), index=True),
    Column("field", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("values", JSON, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

programme = Projection("programme", subjects=["agenda.>"], metadata=metadata)
data_quality = Projection("data_quality", subjects=["agenda.edition.>"], metadata=warnings_metadata)


def all_projections() -> list[Projection]:
    return [programme, data_quality]


# -- editions and rooms --------------------------------------------------------------------


@programme.on(EditionPlanned)
async def _edition_planned(db: AsyncSession, event: EditionPlanned, ctx: EventContext) -> None:
    await db.execute(
        insert(editions).values(
            edition_id=event.edition_id,
            name=event.name,
            theme=event.theme,
            host_city=event.host_city,
            host_country=event.host_country,
            start_date=event.start_date,
            end_date=event.end_date,
            time_zone=event.time_zone,
            workshops=[w.model_dump(mode="json") for w in event.workshops],
            updated_at=ctx.time,
        )
    )


@programme.on(EditionDetailsChanged)
async def _edition_changed(
    db: AsyncSession, event: EditionDetailsChanged, ctx: EventContext
) -> None:
    changes = event.model_dump(exclude={"edition_id", "workshops"}, exclude_none=True)
    if event.workshops is not None:
        changes["workshops"] = [w.model_dump(mode="json") for w in event.workshops]
    await db.execute(
        update(editions)
        .where(editions.c.edition_id == event.edition_id)
        .values(**changes, updated_at=ctx.time)
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
            capacity=event.capacity,
            capacity_estimated=event.capacity_estimated,
        )
    )


@programme.on(RoomCapacityChanged)
async def _room_capacity(db: AsyncSession, event: RoomCapacityChanged, ctx: EventContext) -> None:
    await db.execute(
        update(rooms)
        .where(rooms.c.room_id == event.room_id)
        .values(capacity=event.new_capacity, capacity_estimated=event.capacity_estimated)
    )


@programme.on(RoomRenamed)
async def _room_renamed(db: AsyncSession, event: RoomRenamed, ctx: EventContext) -> None:
    await db.execute(
        update(rooms).where(rooms.c.room_id == event.room_id).values(name=event.new_name)
    )


# -- sessions ------------------------------------------------------------------------------


async def _local_day(db: AsyncSession, edition_id: str, moment: datetime) -> date:
    zone = (
        await db.execute(select(editions.c.time_zone).where(editions.c.edition_id == edition_id))
    ).scalar_one()
    return moment.astimezone(ZoneInfo(zone)).date()


async def _record_change(
    db: AsyncSession,
    session_id: str,
    ctx: EventContext,
    change: str,
    details: dict[str, Any],
    **values: Any,
) -> None:
    """Store a change in the session's history; a command's first change bumps the revision."""
    row = (
        await db.execute(
            select(sessions.c.revision, sessions.c.revision_cause).where(
                sessions.c.session_id == session_id
            )
        )
    ).one()
    cause = ctx.envelope.causationid
    same_command = cause is not None and cause == row.revision_cause
    revision = row.revision if same_command else row.revision + 1
    await db.execute(
        update(sessions)
        .where(sessions.c.session_id == session_id)
        .values(revision=revision, revision_cause=cause, updated_at=ctx.time, **values)
    )
    await db.execute(
        insert(session_changes).values(
            sequence=ctx.sequence,
            session_id=session_id,
            revision=revision,
            changed_at=ctx.time,
            change=change,
            details=details,
        )
    )


@programme.on(SessionScheduled)
async def _scheduled(db: AsyncSession, event: SessionScheduled, ctx: EventContext) -> None:
    workshop = event.workshop
    await db.execute(
        insert(sessions).values(
            session_id=event.session_id,
            edition_id=event.edition_id,
            kind=event.kind,
            title=event.title,
            workshop_number=workshop.number if workshop else None,
            workshop_title=workshop.title if workshop else None,
            workshop_organisers=list(workshop.organisers) if workshop else [],
            workshop_partners=list(workshop.partners) if workshop else [],
            room_id=event.room_id,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            day=await _local_day(db, event.edition_id, event.starts_at),
            capacity=event.capacity,
            tentative=event.tentative,
            time_source=event.time_source,
            cancelled=False,
            revision=0,
            revision_cause=ctx.envelope.causationid,
            updated_at=ctx.time,
        )
    )
    await db.execute(
        insert(session_changes).values(
            sequence=ctx.sequence,
            session_id=event.session_id,
            revision=0,
            changed_at=ctx.time,
            change="scheduled",
            details=event.model_dump(mode="json", exclude={"session_id", "edition_id"}),
        )
    )


@programme.on(SessionMoved)
async def _moved(db: AsyncSession, event: SessionMoved, ctx: EventContext) -> None:
    details = event.model_dump(mode="json", exclude={"session_id", "edition_id"})
    await _record_change(
        db,
        event.session_id,
        ctx,
        "moved",
        details,
        room_id=event.new_room_id,
        starts_at=event.new_starts_at,
        ends_at=event.new_ends_at,
        day=await _local_day(db, event.edition_id, event.new_starts_at),
        tentative=event.tentative,
        **({} if event.tentative else {"time_source": None}),
    )


@programme.on(SessionDetailsChanged)
async def _details_changed(
    db: AsyncSession, event: SessionDetailsChanged, ctx: EventContext
) -> None:
    values: dict[str, Any] = {}
    if event.title is not None:
        values["title"] = event.title
    if event.kind is not None:
        values["kind"] = event.kind
    if event.workshop is not None:
        values |= {
            "workshop_number": event.workshop.number,
            "workshop_title": event.workshop.title,
            "workshop_organisers": list(event.workshop.organisers),
            "workshop_partners": list(event.workshop.partners),
        }
    if event.workshop_cleared:
        values |= {
            "workshop_number": None,
            "workshop_title": None,
            "workshop_organisers": [],
            "workshop_partners": [],
        }
    if event.capacity is not None:
        values["capacity"] = event.capacity
    if event.capacity_cleared:
        values["capacity"] = None
    details = event.model_dump(
        mode="json", exclude={"session_id", "edition_id"}, exclude_defaults=True
    )
    await _record_change(db, event.session_id, ctx, "details_changed", details, **values)


@programme.on(PersonAssigned)
async def _person_assigned(db: AsyncSession, event: PersonAssigned, ctx: EventContext) -> None:
    key = (session_people.c.session_id == event.session_id) & (
        session_people.c.person_id == event.person_id
    )
    person = {"name": event.name, "title": event.title, "role": event.role}
    if (await db.execute(select(session_people.c.position).where(key))).first() is None:
        count = (
            await db.execute(
                select(session_people.c.position).where(
                    session_people.c.session_id == event.session_id
                )
            )
        ).all()
        await db.execute(
            insert(session_people).values(
                session_id=event.session_id,
                person_id=event.person_id,
                position=len(count),
                **person,
            )
        )
    else:
        await db.execute(update(session_people).where(key).values(**person))
    details = {"person_id": event.person_id, **person}
    await _record_change(db, event.session_id, ctx, "person_assigned", details)


@programme.on(PersonRemoved)
async def _person_removed(db: AsyncSession, event: PersonRemoved, ctx: EventContext) -> None:
    await db.execute(
        delete(session_people).where(
            (session_people.c.session_id == event.session_id)
            & (session_people.c.person_id == event.person_id)
        )
    )
    details = {"person_id": event.person_id}
    await _record_change(db, event.session_id, ctx, "person_removed", details)


@programme.on(SessionCancelled)
async def _cancelled(db: AsyncSession, event: SessionCancelled, ctx: EventContext) -> None:
    await _record_change(
        db,
        event.session_id,
        ctx,
        "cancelled",
        {"reason": event.reason},
        cancelled=True,
        cancel_reason=event.reason,
    )


# -- published versions --------------------------------------------------------------------


@programme.on(SchedulePublished)
async def _published(db: AsyncSession, event: SchedulePublished, ctx: EventContext) -> None:
    await db.execute(
        insert(versions).values(
            edition_id=event.edition_id,
            version=event.version,
            label=event.label,
            published_at=event.published_at,
            sequence=ctx.sequence,
            new=list(event.new),
            moved=list(event.moved),
            cancelled=list(event.cancelled),
            changed=list(event.changed),
        )
    )
    live = (
        await db.execute(
            select(sessions).where(
                (sessions.c.edition_id == event.edition_id) & sessions.c.cancelled.is_(False)
            )
        )
    ).all()
    people = (
        await db.execute(
            select(session_people)
            .where(session_people.c.session_id.in_([row.session_id for row in live]))
            .order_by(session_people.c.session_id, session_people.c.position)
        )
    ).all()
    panels: dict[str, list[dict[str, Any]]] = {}
    for person in people:
        panels.setdefault(person.session_id, []).append(
            {
                "person_id": person.person_id,
                "name": person.name,
                "title": person.title,
                "role": person.role,
            }
        )
    await _copy_published(db, event)
    if live:
        await db.execute(
            insert(version_sessions),
            [
                {
                    "edition_id": event.edition_id,
                    "version": event.version,
                    "session_id": row.session_id,
                    "kind": row.kind,
                    "title": row.title,
                    "workshop_number": row.workshop_number,
                    "room_id": row.room_id,
                    "starts_at": row.starts_at,
                    "ends_at": row.ends_at,
                    "capacity": row.capacity,
                    "people": panels.get(row.session_id, []),
                }
                for row in live
            ],
        )


async def _copy_published(db: AsyncSession, event: SchedulePublished) -> None:
    """Copy the draft's rows of the edition as its version ``event.version``."""
    rows = (
        await db.execute(select(sessions).where(sessions.c.edition_id == event.edition_id))
    ).all()
    if not rows:
        return
    await db.execute(
        insert(published_sessions), [{**row._mapping, "version": event.version} for row in rows]
    )
    people = (
        await db.execute(
            select(session_people).where(
                session_people.c.session_id.in_([row.session_id for row in rows])
            )
        )
    ).all()
    if people:
        await db.execute(
            insert(published_people),
            [
                {**person._mapping, "version": event.version, "edition_id": event.edition_id}
                for person in people
            ],
        )


# -- data quality --------------------------------------------------------------------------


@data_quality.on(DataQualityWarningRecorded)
async def _warning_recorded(
    db: AsyncSession, event: DataQualityWarningRecorded, ctx: EventContext
) -> None:
    await db.execute(
        insert(warnings).values(
            edition_id=event.edition_id,
            warning_id=event.warning_id,
            session_id=event.session_id,
            field=event.field,
            message=event.message,
            values=list(event.values),
            sequence=ctx.sequence,
            recorded_at=ctx.time,
        )
    )


@data_quality.on(DataQualityWarningWithdrawn)
async def _warning_withdrawn(
    db: AsyncSession, event: DataQualityWarningWithdrawn, ctx: EventContext
) -> None:
    await db.execute(
        delete(warnings).where(
            (warnings.c.edition_id == event.edition_id)
            & (warnings.c.warning_id == event.warning_id)
        )
    )
