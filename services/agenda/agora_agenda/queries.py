"""Questions the read model answers, and the shapes of the answers.

Times are given in the edition's own time zone (an ISO 8601 offset such as +05:00), which is
how people at the forum read a programme.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import FromClause, Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.decider import InvalidCommand, NotFound

from .domain import SessionSnapshot, diff
from .projections import (
    editions,
    published_people,
    published_sessions,
    rooms,
    session_changes,
    session_people,
    sessions,
    version_sessions,
    versions,
    warnings,
)

# -- which programme: the working draft or a published version ------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """Where sessions are read from: the working draft (``version`` None), which organisers
    see, or one published version, which is what the public sees."""

    sessions: FromClause
    people: FromClause
    version: int | None = None


DRAFT = Source(sessions, session_people)


async def published(db: AsyncSession, edition_id: str, number: int | None = None) -> Source:
    """Version ``number`` of the edition as published, the latest when ``number`` is None."""
    await _edition_row(db, edition_id)
    latest = (await _latest_versions(db)).get(edition_id)
    if latest is None:
        raise NotFound(
            f"no version of '{edition_id}' is published yet; organisers see the working "
            f"draft with ?draft=true and publish it with POST /editions/{edition_id}/versions"
        )
    if number is None:
        number = latest
    elif not 1 <= number <= latest:
        raise NotFound(f"'{edition_id}' has no published version {number} (latest: {latest})")
    return Source(
        select(published_sessions)
        .where(
            (published_sessions.c.edition_id == edition_id)
            & (published_sessions.c.version == number)
        )
        .subquery("sessions"),
        select(published_people)
        .where(
            (published_people.c.edition_id == edition_id) & (published_people.c.version == number)
        )
        .subquery("people"),
        number,
    )


async def published_everywhere(db: AsyncSession) -> list[Source]:
    """The latest published version of every edition that has one."""
    return [
        await published(db, edition_id)
        for edition_id in sorted((await _latest_versions(db)).keys())
    ]


# -- answers -------------------------------------------------------------------------------


class EditionSummary(BaseModel):
    edition_id: str
    name: str
    theme: str | None
    host_city: str
    host_country: str
    start_date: date
    end_date: date
    time_zone: str
    latest_version: int | None = None


class RoomView(BaseModel):
    room_id: str
    name: str
    capacity: int
    capacity_estimated: bool
    sessions: int = 0


class WorkshopView(BaseModel):
    number: int
    title: str
    organisers: list[str]
    partners: list[str] = []


class WorkshopStatus(WorkshopView):
    """A workshop of the edition; ``unscheduled`` while it has no session (its sources give
    none), ``tentative`` while every session's time is a placeholder."""

    status: Literal["scheduled", "tentative", "unscheduled"]
    source: str | None = None


class EditionView(EditionSummary):
    version: int | None = None
    """The published version shown; None: the organisers' working draft."""
    days: list[date]
    rooms: list[RoomView]
    workshops: list[WorkshopStatus]
    data_quality_warnings: int


class RoomRef(BaseModel):
    room_id: str
    name: str


class PersonView(BaseModel):
    person_id: str
    name: str
    title: str | None
    role: str


class SessionView(BaseModel):
    session_id: str
    edition_id: str
    kind: str
    title: str
    label: str
    workshop: WorkshopView | None
    room: RoomRef
    day: date
    starts_at: datetime
    ends_at: datetime
    capacity: int
    capacity_source: Literal["session", "room"]
    status: Literal["scheduled", "tentative", "cancelled"]
    time_source: str | None = None
    cancel_reason: str | None
    revision: int
    updated_at: datetime
    people: list[PersonView]


class DayView(BaseModel):
    day: date
    sessions: list[SessionView]


class ProgrammeView(BaseModel):
    edition: EditionSummary
    version: int | None = None
    """The published version shown; None: the organisers' working draft."""
    days: list[DayView]


class WorkshopProgramme(WorkshopStatus):
    sessions: list[SessionView]


class PersonProgramme(BaseModel):
    person_id: str
    name: str
    sessions: list[SessionView]


class ChangeView(BaseModel):
    sequence: int
    revision: int
    changed_at: datetime
    change: str
    details: dict[str, Any]


class WarningView(BaseModel):
    warning_id: str
    session_id: str | None
    field: str
    message: str
    values: list[str]


class SessionDetail(SessionView):
    history: list[ChangeView]
    data_quality_warnings: list[WarningView]


class DataQualityView(BaseModel):
    edition_id: str
    warnings: list[WarningView]


class VersionView(BaseModel):
    edition_id: str
    version: int
    label: str
    published_at: datetime
    sequence: int
    new: list[str]
    moved: list[str]
    cancelled: list[str]
    changed: list[str]


class SnapshotView(BaseModel):
    session_id: str
    title: str
    kind: str
    workshop_number: int | None
    room_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int | None
    people: list[PersonView]


class SessionChange(BaseModel):
    session_id: str
    before: SnapshotView
    after: SnapshotView


class DiffView(BaseModel):
    edition_id: str
    from_version: int
    to_version: int
    new: list[SnapshotView]
    moved: list[SessionChange]
    cancelled: list[SnapshotView]
    changed: list[SessionChange]


# -- editions ------------------------------------------------------------------------------


async def list_editions(db: AsyncSession) -> list[EditionSummary]:
    latest = await _latest_versions(db)
    rows = (await db.execute(select(editions).order_by(editions.c.start_date))).all()
    return [_edition_summary(row, latest.get(row.edition_id)) for row in rows]


async def edition(db: AsyncSession, edition_id: str, source: Source = DRAFT) -> EditionView:
    """The edition with its rooms, days and workshops as in ``source`` (a published version,
    or the draft); rooms, their names and capacities, and the warnings are the current ones."""
    row = await _edition_row(db, edition_id)
    latest = await _latest_versions(db)
    s = source.sessions.c
    rows = await db.execute(
        select(s.room_id, func.count())
        .where((s.edition_id == edition_id) & s.cancelled.is_(False))
        .group_by(s.room_id)
    )
    counts: dict[str, int] = dict(rows.all())
    room_rows = (
        await db.execute(
            select(rooms).where(rooms.c.edition_id == edition_id).order_by(rooms.c.name)
        )
    ).all()
    days = (
        (
            await db.execute(
                select(s.day).where(s.edition_id == edition_id).distinct().order_by(s.day)
            )
        )
        .scalars()
        .all()
    )
    warning_count = (
        await db.execute(
            select(func.count()).select_from(warnings).where(warnings.c.edition_id == edition_id)
        )
    ).scalar_one()
    summary = _edition_summary(row, latest.get(edition_id))
    return EditionView(
        **summary.model_dump(),
        version=source.version,
        days=list(days),
        rooms=[
            RoomView(
                room_id=r.room_id,
                name=r.name,
                capacity=r.capacity,
                capacity_estimated=r.capacity_estimated,
                sessions=counts.get(r.room_id, 0),
            )
            for r in room_rows
        ],
        workshops=await _workshops(db, edition_id, source),
        data_quality_warnings=warning_count,
    )


async def data_quality(db: AsyncSession, edition_id: str) -> DataQualityView:
    await _edition_row(db, edition_id)
    rows = (
        await db.execute(
            select(warnings)
            .where(warnings.c.edition_id == edition_id)
            .order_by(warnings.c.sequence, warnings.c.warning_id)
        )
    ).all()
    return DataQualityView(edition_id=edition_id, warnings=[_warning(row) for row in rows])


# -- the programme -------------------------------------------------------------------------


async def programme(
    db: AsyncSession,
    edition_id: str,
    *,
    day: date | None = None,
    room_id: str | None = None,
    workshop: int | None = None,
    person_id: str | None = None,
    include_cancelled: bool = True,
    source: Source = DRAFT,
) -> ProgrammeView:
    row = await _edition_row(db, edition_id)
    s = source.sessions.c
    condition: Any = s.edition_id == edition_id
    if day is not None:
        if not row.start_date <= day <= row.end_date:
            raise InvalidCommand(
                f"{day} is not a day of '{edition_id}' ({row.start_date} to {row.end_date})"
            )
        condition &= s.day == day
    if room_id is not None:
        await _room_of(db, edition_id, room_id)
        condition &= s.room_id == room_id
    if workshop is not None:
        condition &= s.workshop_number == workshop
    if person_id is not None:
        condition &= s.session_id.in_(
            select(source.people.c.session_id).where(source.people.c.person_id == person_id)
        )
    if not include_cancelled:
        condition &= s.cancelled.is_(False)
    found = await _sessions(db, condition, source)
    grouped: dict[date, list[SessionView]] = defaultdict(list)
    for view in found:
        grouped[view.day].append(view)
    latest = await _latest_versions(db)
    return ProgrammeView(
        edition=_edition_summary(row, latest.get(edition_id)),
        version=source.version,
        days=[DayView(day=d, sessions=grouped[d]) for d in sorted(grouped)],
    )


async def workshops(
    db: AsyncSession, edition_id: str, *, source: Source = DRAFT
) -> list[WorkshopProgramme]:
    """Every workshop of the edition, those without sessions (unscheduled) included."""
    await _edition_row(db, edition_id)
    s = source.sessions.c
    found = await _sessions(
        db, (s.edition_id == edition_id) & s.workshop_number.is_not(None), source
    )
    by_number: dict[int, list[SessionView]] = defaultdict(list)
    for view in found:
        assert view.workshop is not None
        by_number[view.workshop.number].append(view)
    return [
        WorkshopProgramme(**w.model_dump(), sessions=by_number[w.number])
        for w in await _workshops(db, edition_id, source)
    ]


async def person(
    db: AsyncSession,
    person_id: str,
    edition_id: str | None = None,
    sources: Sequence[Source] = (DRAFT,),
) -> PersonProgramme:
    """The person's sessions in ``sources`` (the draft, or one published version per edition:
    see ``published_everywhere``), in the edition ``edition_id`` when given."""
    if edition_id is not None:
        await _edition_row(db, edition_id)
    found: list[SessionView] = []
    for source in sources:
        s, p = source.sessions.c, source.people.c
        condition: Any = s.session_id.in_(select(p.session_id).where(p.person_id == person_id))
        if edition_id is not None:
            condition &= s.edition_id == edition_id
        found += await _sessions(db, condition, source)
    found.sort(key=lambda view: (view.starts_at, view.room.name, view.session_id))
    if not found:
        where = f" in '{edition_id}'" if edition_id else ""
        shown = " as published" if any(s.version is not None for s in sources) else ""
        raise NotFound(f"'{person_id}' is on no session's panel{where}{shown}")
    names = [p.name for view in found for p in view.people if p.person_id == person_id]
    return PersonProgramme(person_id=person_id, name=names[-1], sessions=found)


async def people(
    db: AsyncSession, edition_id: str, source: Source = DRAFT
) -> list[PersonProgramme]:
    await _edition_row(db, edition_id)
    found = await _sessions(db, source.sessions.c.edition_id == edition_id, source)
    by_person: dict[str, list[SessionView]] = defaultdict(list)
    names: dict[str, str] = {}
    for view in found:
        for p in view.people:
            by_person[p.person_id].append(view)
            names[p.person_id] = p.name
    return [
        PersonProgramme(person_id=pid, name=names[pid], sessions=by_person[pid])
        for pid in sorted(by_person, key=lambda pid: (names[pid], pid))
    ]


async def session_edition(db: AsyncSession, session_id: str) -> str:
    """The edition of a session (of the working draft, where every session is)."""
    edition_id = (
        await db.execute(select(sessions.c.edition_id).where(sessions.c.session_id == session_id))
    ).scalar_one_or_none()
    if edition_id is None:
        raise NotFound(f"no session '{session_id}'")
    return str(edition_id)


async def session(db: AsyncSession, session_id: str, source: Source = DRAFT) -> SessionDetail:
    """One session as in ``source``, with its history up to that version (all of it in the
    draft) and its current data-quality warnings."""
    found = await _sessions(db, source.sessions.c.session_id == session_id, source)
    if not found:
        if source.version is None:
            raise NotFound(f"no session '{session_id}'")
        raise NotFound(f"session '{session_id}' is not in published version {source.version}")
    view = found[0]
    zone = await _zone(db, view.edition_id)
    condition: Any = session_changes.c.session_id == session_id
    if source.version is not None:
        published_at = (
            await db.execute(
                select(versions.c.sequence).where(
                    (versions.c.edition_id == view.edition_id)
                    & (versions.c.version == source.version)
                )
            )
        ).scalar_one()
        condition &= session_changes.c.sequence <= published_at
    history = (
        await db.execute(
            select(session_changes).where(condition).order_by(session_changes.c.sequence)
        )
    ).all()
    flagged = (
        await db.execute(
            select(warnings)
            .where(warnings.c.session_id == session_id)
            .order_by(warnings.c.sequence, warnings.c.warning_id)
        )
    ).all()
    return SessionDetail(
        **view.model_dump(),
        history=[
            ChangeView(
                sequence=h.sequence,
                revision=h.revision,
                changed_at=h.changed_at.astimezone(zone),
                change=h.change,
                details=h.details,
            )
            for h in history
        ],
        data_quality_warnings=[_warning(row) for row in flagged],
    )


async def calendar_sessions(
    db: AsyncSession,
    *,
    edition_id: str | None = None,
    session_id: str | None = None,
    version: int | None = None,
    draft: bool = False,
) -> tuple[EditionSummary, list[SessionView], Source]:
    """Sessions for an iCalendar export, cancelled ones included (so calendars drop them):
    the latest published version, version ``version``, or with ``draft`` the working draft."""
    if session_id is not None:
        found = await _sessions(db, sessions.c.session_id == session_id, DRAFT)
        if not found:
            raise NotFound(f"no session '{session_id}'")
        edition_id = found[0].edition_id
    assert edition_id is not None
    row = await _edition_row(db, edition_id)
    source = DRAFT if draft else await published(db, edition_id, version)
    s = source.sessions.c
    condition = s.edition_id == edition_id
    if session_id is not None:
        condition = s.session_id == session_id
    found = await _sessions(db, condition, source)
    if session_id is not None and not found:
        raise NotFound(
            f"session '{session_id}' is not in published version {source.version} of '{edition_id}'"
        )
    return _edition_summary(row, None), found, source


# -- published versions --------------------------------------------------------------------


async def list_versions(db: AsyncSession, edition_id: str) -> list[VersionView]:
    await _edition_row(db, edition_id)
    rows = (
        await db.execute(
            select(versions).where(versions.c.edition_id == edition_id).order_by(versions.c.version)
        )
    ).all()
    zone = await _zone(db, edition_id)
    return [_version(row, zone) for row in rows]


async def version(db: AsyncSession, edition_id: str, number: int) -> VersionView:
    await _edition_row(db, edition_id)
    row = (
        await db.execute(
            select(versions).where(
                (versions.c.edition_id == edition_id) & (versions.c.version == number)
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"'{edition_id}' has no published version {number}")
    return _version(row, await _zone(db, edition_id))


async def version_diff(
    db: AsyncSession, edition_id: str, from_version: int, to_version: int
) -> DiffView:
    """What changed between two published versions; version 0 is the empty programme."""
    await _edition_row(db, edition_id)
    zone = await _zone(db, edition_id)
    before = await _snapshot(db, edition_id, from_version, zone)
    after = await _snapshot(db, edition_id, to_version, zone)
    changes = diff(
        {k: v[0] for k, v in before.items()},
        {k: v[0] for k, v in after.items()},
    )
    return DiffView(
        edition_id=edition_id,
        from_version=from_version,
        to_version=to_version,
        new=[after[i][1] for i in changes.new],
        moved=[
            SessionChange(session_id=i, before=before[i][1], after=after[i][1])
            for i in changes.moved
        ],
        cancelled=[before[i][1] for i in changes.cancelled],
        changed=[
            SessionChange(session_id=i, before=before[i][1], after=after[i][1])
            for i in changes.changed
        ],
    )


async def _snapshot(
    db: AsyncSession, edition_id: str, number: int, zone: ZoneInfo
) -> dict[str, tuple[SessionSnapshot, SnapshotView]]:
    if number < 0:
        raise InvalidCommand(f"version {number} does not exist; versions count from 1")
    if number == 0:
        return {}
    await version(db, edition_id, number)
    rows = (
        await db.execute(
            select(version_sessions).where(
                (version_sessions.c.edition_id == edition_id)
                & (version_sessions.c.version == number)
            )
        )
    ).all()
    found = {}
    for row in rows:
        panel = [PersonView(**p) for p in row.people]
        snapshot = SessionSnapshot(
            session_id=row.session_id,
            title=row.title,
            kind=row.kind,
            workshop_number=row.workshop_number,
            room_id=row.room_id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            capacity=row.capacity,
            people=tuple(sorted((p.person_id, p.role, p.name, p.title) for p in panel)),
        )
        view = SnapshotView(
            session_id=row.session_id,
            title=row.title,
            kind=row.kind,
            workshop_number=row.workshop_number,
            room_id=row.room_id,
            starts_at=row.starts_at.astimezone(zone),
            ends_at=row.ends_at.astimezone(zone),
            capacity=row.capacity,
            people=panel,
        )
        found[row.session_id] = (snapshot, view)
    return found


# -- helpers -------------------------------------------------------------------------------


async def _edition_row(db: AsyncSession, edition_id: str) -> Row[Any]:
    row = (await db.execute(select(editions).where(editions.c.edition_id == edition_id))).first()
    if row is None:
        raise NotFound(f"no edition '{edition_id}'")
    return row


async def _zone(db: AsyncSession, edition_id: str) -> ZoneInfo:
    return ZoneInfo((await _edition_row(db, edition_id)).time_zone)


async def _room_of(db: AsyncSession, edition_id: str, room_id: str) -> Row[Any]:
    row = (
        await db.execute(
            select(rooms).where((rooms.c.room_id == room_id) & (rooms.c.edition_id == edition_id))
        )
    ).first()
    if row is None:
        raise NotFound(f"edition '{edition_id}' has no room '{room_id}'")
    return row


async def _latest_versions(db: AsyncSession) -> dict[str, int]:
    rows = await db.execute(
        select(versions.c.edition_id, func.max(versions.c.version)).group_by(versions.c.edition_id)
    )
    return dict(rows.all())


async def _workshops(
    db: AsyncSession, edition_id: str, source: Source = DRAFT
) -> list[WorkshopStatus]:
    s = source.sessions.c
    listed = (
        await db.execute(select(editions.c.workshops).where(editions.c.edition_id == edition_id))
    ).scalar_one()
    rows = (
        await db.execute(
            select(
                s.workshop_number,
                s.workshop_title,
                s.workshop_organisers,
                s.workshop_partners,
                s.tentative,
            )
            .where(
                (s.edition_id == edition_id)
                & s.workshop_number.is_not(None)
                & s.cancelled.is_(False)
            )
            .order_by(s.workshop_number, s.starts_at)
        )
    ).all()
    timing: dict[int, set[bool]] = defaultdict(set)
    found: dict[int, WorkshopStatus] = {}
    for entry in listed or []:
        found[entry["number"]] = WorkshopStatus(
            number=entry["number"],
            title=entry["title"],
            organisers=entry.get("organisers", []),
            partners=entry.get("partners", []),
            source=entry.get("source"),
            status="unscheduled",
        )
    for number, title, organisers, partners, tentative in rows:
        timing[number].add(bool(tentative))
        found.setdefault(
            number,
            WorkshopStatus(
                number=number,
                title=title,
                organisers=organisers,
                partners=partners,
                status="unscheduled",
            ),
        )
    for number, kinds in timing.items():
        found[number].status = "tentative" if kinds == {True} else "scheduled"
    return [found[number] for number in sorted(found)]


async def _sessions(db: AsyncSession, condition: Any, source: Source = DRAFT) -> list[SessionView]:
    table, people = source.sessions, source.people
    rows = (
        await db.execute(
            select(
                table,
                rooms.c.name.label("room_name"),
                rooms.c.capacity.label("room_capacity"),
                editions.c.time_zone,
            )
            .join(rooms, rooms.c.room_id == table.c.room_id)
            .join(editions, editions.c.edition_id == table.c.edition_id)
            .where(condition)
            .order_by(table.c.starts_at, rooms.c.name, table.c.session_id)
        )
    ).all()
    if not rows:
        return []
    panels: dict[str, list[PersonView]] = defaultdict(list)
    people_rows = (
        await db.execute(
            select(people)
            .where(people.c.session_id.in_([row.session_id for row in rows]))
            .order_by(people.c.session_id, people.c.position)
        )
    ).all()
    for p in people_rows:
        panels[p.session_id].append(
            PersonView(person_id=p.person_id, name=p.name, title=p.title, role=p.role)
        )
    return [_session_view(row, panels[row.session_id]) for row in rows]


def _session_view(row: Row[Any], panel: Sequence[PersonView]) -> SessionView:
    zone = ZoneInfo(row.time_zone)
    workshop = None
    label = row.title
    if row.workshop_number is not None:
        workshop = WorkshopView(
            number=row.workshop_number,
            title=row.workshop_title,
            organisers=row.workshop_organisers,
            partners=row.workshop_partners,
        )
        label = f"Workshop {row.workshop_number}: {row.title}"
    return SessionView(
        session_id=row.session_id,
        edition_id=row.edition_id,
        kind=row.kind,
        title=row.title,
        label=label,
        workshop=workshop,
        room=RoomRef(room_id=row.room_id, name=row.room_name),
        day=row.day,
        starts_at=row.starts_at.astimezone(zone),
        ends_at=row.ends_at.astimezone(zone),
        capacity=row.capacity if row.capacity is not None else row.room_capacity,
        capacity_source="session" if row.capacity is not None else "room",
        status="cancelled" if row.cancelled else "tentative" if row.tentative else "scheduled",
        time_source=row.time_source if row.tentative else None,
        cancel_reason=row.cancel_reason,
        revision=row.revision,
        updated_at=row.updated_at,
        people=list(panel),
    )


def _edition_summary(row: Row[Any], latest: int | None) -> EditionSummary:
    return EditionSummary(
        edition_id=row.edition_id,
        name=row.name,
        theme=row.theme,
        host_city=row.host_city,
        host_country=row.host_country,
        start_date=row.start_date,
        end_date=row.end_date,
        time_zone=row.time_zone,
        latest_version=latest,
    )


def _warning(row: Row[Any]) -> WarningView:
    return WarningView(
        warning_id=row.warning_id,
        session_id=row.session_id,
        field=row.field,
        message=row.message,
        values=row.values,
    )


def _version(row: Row[Any], zone: ZoneInfo) -> VersionView:
    return VersionView(
        edition_id=row.edition_id,
        version=row.version,
        label=row.label,
        published_at=row.published_at.astimezone(zone),
        sequence=row.sequence,
        new=row.new,
        moved=row.moved,
        cancelled=row.cancelled,
        changed=row.changed,
    )
