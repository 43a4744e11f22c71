"""Questions the console's read model answers, as plain typed views. Reads only."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.contracts.states import all_states

from .domain import Holder, normalise_badge
from .projections import (
    claims,
    declarations,
    editions,
    enrolment_sessions,
    participants,
    published_sessions,
    rooms,
    signatures,
    texts,
    versions,
)

# -- the programme ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Edition:
    edition_id: str
    name: str
    host_city: str
    start_date: date
    end_date: date
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    label: str
    published_at: datetime
    changes: dict[str, list[str]] = field(default_factory=dict)
    """Session ids new, moved, cancelled or otherwise changed since the version before."""


@dataclass(frozen=True, slots=True)
class Room:
    room_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    title: str | None
    role: str


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    kind: str
    title: str
    workshop_number: int | None
    workshop_title: str | None
    room_id: str
    room_name: str
    starts_at: datetime
    ends_at: datetime
    day: date
    tentative: bool
    cancelled: bool
    cancel_reason: str | None
    people: tuple[Person, ...]


@dataclass(frozen=True, slots=True)
class Filters:
    room: str | None = None
    kind: str | None = None
    workshop: int | None = None

    def keeps(self, session: Session) -> bool:
        return (
            (self.room is None or session.room_id == self.room)
            and (self.kind is None or session.kind == self.kind)
            and (self.workshop is None or session.workshop_number == self.workshop)
        )


@dataclass(frozen=True, slots=True)
class Programme:
    edition: Edition
    version: Version | None
    versions: tuple[Version, ...]
    """Every published version, the latest first."""
    changelog: tuple[tuple[str, tuple[Session, ...]], ...]
    """What the version shown changed, by kind of change (new, moved, cancelled, changed)."""
    days: tuple[date, ...]
    day: date | None
    rooms: tuple[Room, ...]
    """The day's rooms that hold a kept session, in the order they were added."""
    sessions: tuple[Session, ...]
    """The day's kept sessions, by start."""
    all_rooms: tuple[Room, ...]
    kinds: tuple[str, ...]
    workshops: tuple[tuple[int, str], ...]
    filters: Filters = field(default_factory=Filters)
    now: tuple[Session, ...] = ()
    """What is on at the moment asked (the page's now), in the version shown."""
    next: tuple[Session, ...] = ()
    """What starts next after it, the same day (every session starting at that time)."""


def _edition(row: Any) -> Edition:
    return Edition(
        row.edition_id,
        row.name,
        row.host_city,
        row.start_date,
        row.end_date,
        ZoneInfo(row.time_zone),
    )


async def edition_ids(db: AsyncSession) -> list[tuple[str, str]]:
    """Every edition (id, name), the latest first."""
    found = await db.execute(
        select(editions.c.edition_id, editions.c.name).order_by(editions.c.start_date.desc())
    )
    return [(row.edition_id, row.name) for row in found]


async def all_versions(db: AsyncSession, edition_id: str) -> list[Version]:
    found = await db.execute(
        select(versions)
        .where(versions.c.edition_id == edition_id)
        .order_by(versions.c.version.desc())
    )
    return [Version(row.version, row.label, row.published_at, row.changes) for row in found]


async def latest_version(db: AsyncSession, edition_id: str) -> Version | None:
    found = await all_versions(db, edition_id)
    return found[0] if found else None


async def _rooms(db: AsyncSession, edition_id: str) -> list[Room]:
    found = await db.execute(
        select(rooms.c.room_id, rooms.c.name)
        .where(rooms.c.edition_id == edition_id)
        .order_by(rooms.c.position)
    )
    return [Room(row.room_id, row.name) for row in found]


def _session(row: Any, room_names: dict[str, str]) -> Session:
    return Session(
        session_id=row.session_id,
        kind=row.kind,
        title=row.title,
        workshop_number=row.workshop_number,
        workshop_title=row.workshop_title,
        room_id=row.room_id,
        room_name=room_names.get(row.room_id, row.room_id),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        day=row.day,
        tentative=row.tentative,
        cancelled=row.cancelled,
        cancel_reason=row.cancel_reason,
        people=tuple(Person(p["name"], p.get("title"), p["role"]) for p in row.people),
    )


async def programme(
    db: AsyncSession,
    edition_id: str | None,
    day: date | None,
    filters: Filters,
    version_wanted: int | None = None,
    at: datetime | None = None,
) -> Programme | None:
    """A published version (the latest unless another is asked for) of an edition's
    programme (the latest edition when none is named) on a day (its first day with sessions
    when none is named); None when there is no edition."""
    query = select(editions).order_by(editions.c.start_date.desc()).limit(1)
    if edition_id is not None:
        query = select(editions).where(editions.c.edition_id == edition_id)
    row = (await db.execute(query)).first()
    if row is None:
        return None
    edition = _edition(row)
    published_versions = await all_versions(db, edition.edition_id)
    version = next(
        (v for v in published_versions if v.version == version_wanted),
        published_versions[0] if published_versions else None,
    )
    all_rooms = await _rooms(db, edition.edition_id)
    names = {room.room_id: room.name for room in all_rooms}
    published: list[Session] = []
    if version is not None:
        found = await db.execute(
            select(published_sessions)
            .where(
                published_sessions.c.edition_id == edition.edition_id,
                published_sessions.c.version == version.version,
            )
            .order_by(published_sessions.c.starts_at, published_sessions.c.session_id)
        )
        published = [_session(r, names) for r in found]
    days = tuple(sorted({s.day for s in published}))
    chosen = day if day in days else (days[0] if days else None)
    kept = [s for s in published if s.day == chosen and filters.keeps(s)]
    by_id = {s.session_id: s for s in published}
    changelog = tuple(
        (change, tuple(by_id[i] for i in ids if i in by_id))
        for change, ids in (version.changes if version else {}).items()
        if any(i in by_id for i in ids)
    )
    used = {s.room_id for s in kept}
    live = [s for s in published if not s.cancelled]
    on = tuple(s for s in live if at is not None and s.starts_at <= at < s.ends_at)
    coming = sorted(
        (
            s
            for s in live
            if at is not None and s.starts_at > at and s.day == at.astimezone(edition.zone).date()
        ),
        key=lambda s: s.starts_at,
    )
    following = tuple(s for s in coming if s.starts_at == coming[0].starts_at) if coming else ()
    return Programme(
        edition=edition,
        version=version,
        versions=tuple(published_versions),
        changelog=changelog,
        days=days,
        day=chosen,
        rooms=tuple(room for room in all_rooms if room.room_id in used),
        sessions=tuple(kept),
        all_rooms=tuple(r for r in all_rooms if any(s.room_id == r.room_id for s in published)),
        kinds=tuple(sorted({s.kind for s in published})),
        workshops=tuple(
            sorted(
                {
                    (s.workshop_number, s.workshop_title or "")
                    for s in published
                    if s.workshop_number
                }
            )  # type: ignore[misc]
        ),
        filters=filters,
        now=on,
        next=following,
    )


async def session(db: AsyncSession, session_id: str) -> tuple[Edition, Version, Session] | None:
    """A session as the latest published version of its edition has it."""
    found = await db.execute(
        select(published_sessions.c.edition_id)
        .where(published_sessions.c.session_id == session_id)
        .limit(1)
    )
    edition_id = found.scalar_one_or_none()
    if edition_id is None:
        return None
    version = await latest_version(db, edition_id)
    if version is None:
        return None
    row = (
        await db.execute(
            select(published_sessions).where(
                published_sessions.c.session_id == session_id,
                published_sessions.c.version == version.version,
            )
        )
    ).first()
    if row is None:
        return None
    edition_row = (
        await db.execute(select(editions).where(editions.c.edition_id == edition_id))
    ).one()
    names = {room.room_id: room.name for room in await _rooms(db, edition_id)}
    return _edition(edition_row), version, _session(row, names)


# -- declarations ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Priority:
    number: int
    title: str


@dataclass(frozen=True, slots=True)
class Declaration:
    declaration_id: str
    title: str
    launched_by: str
    status: str
    opens_at: datetime | None
    closes_at: datetime | None
    priorities: tuple[Priority, ...]
    texts: tuple[tuple[str, str], ...]
    """(language, sha256)"""


@dataclass(frozen=True, slots=True)
class StatusRow:
    state: str
    state_name: str
    signed_at: datetime
    signatory_name: str
    signatory_title: str | None
    capacity: str
    withdrawn_at: datetime | None
    demo: bool


@dataclass(frozen=True, slots=True)
class Status:
    as_of: datetime
    signed: int
    withdrawn: int
    rows: tuple[StatusRow, ...]


async def declaration_ids(db: AsyncSession) -> list[str]:
    found = await db.execute(
        select(declarations.c.declaration_id)
        .where(declarations.c.status == "open")
        .order_by(declarations.c.declaration_id)
    )
    return list(found.scalars())


async def declaration(db: AsyncSession, declaration_id: str) -> Declaration | None:
    """An open declaration (drafts are not public)."""
    row = (
        await db.execute(
            select(declarations).where(
                declarations.c.declaration_id == declaration_id, declarations.c.status == "open"
            )
        )
    ).first()
    if row is None:
        return None
    found = await db.execute(
        select(texts.c.language, texts.c.sha256)
        .where(texts.c.declaration_id == declaration_id)
        .order_by(texts.c.language)
    )
    return Declaration(
        declaration_id=row.declaration_id,
        title=row.title,
        launched_by=row.launched_by,
        status=row.status,
        opens_at=row.opens_at,
        closes_at=row.closes_at,
        priorities=tuple(Priority(p["number"], p["title"]) for p in row.priorities),
        texts=tuple((t.language, t.sha256) for t in found),
    )


async def status(db: AsyncSession, declaration_id: str, as_of: datetime) -> Status:
    """Per State, its latest signature made by ``as_of``, withdrawn by then or not: what
    declarations' ``GET /declarations/{id}/status?as_of=`` answers, from the events' times."""
    found = await db.execute(
        select(signatures)
        .where(signatures.c.declaration_id == declaration_id, signatures.c.signed_at <= as_of)
        .order_by(signatures.c.state, signatures.c.signed_at)
    )
    latest = {row.state: row for row in found}
    states = all_states()
    rows = sorted(
        (
            StatusRow(
                state=row.state,
                state_name=states[row.state].name if row.state in states else row.state,
                signed_at=row.signed_at,
                signatory_name=row.signatory_name,
                signatory_title=row.signatory_title,
                capacity=row.capacity,
                withdrawn_at=(
                    row.withdrawn_at
                    if row.withdrawn_at is not None and row.withdrawn_at <= as_of
                    else None
                ),
                demo=row.demo,
            )
            for row in latest.values()
        ),
        key=lambda r: (r.state_name, r.state),
    )
    withdrawn = sum(1 for r in rows if r.withdrawn_at is not None)
    return Status(as_of, len(rows) - withdrawn, withdrawn, tuple(rows))


def state_name(code: str) -> str:
    found = all_states().get(code)
    return found.name if found else code


# -- the gate ---------------------------------------------------------------------------------


async def holder(db: AsyncSession, typed: str) -> Holder | None:
    row = (
        await db.execute(
            select(participants).where(participants.c.badge == normalise_badge(typed)).limit(1)
        )
    ).first()
    if row is None:
        return None
    return Holder(row.participant_id, row.name, row.status, row.inside_since)


async def inside_count(db: AsyncSession) -> int:
    found = await db.execute(
        select(func.count())
        .select_from(participants)
        .where(participants.c.inside_since.is_not(None))
    )
    return int(found.scalar_one())


async def declaration_zone(db: AsyncSession, declaration_id: str) -> ZoneInfo:
    """The time zone of the declaration's edition (a day in the date picker is a day there),
    UTC when the console knows no such edition."""
    found = await db.execute(
        select(editions.c.time_zone)
        .select_from(
            declarations.join(editions, declarations.c.edition_id == editions.c.edition_id)
        )
        .where(declarations.c.declaration_id == declaration_id)
    )
    zone = found.scalar_one_or_none()
    return ZoneInfo(zone or "UTC")


CSV_COLUMNS = (
    "state",
    "state_name",
    "signed_at",
    "signatory_name",
    "signatory_title",
    "capacity",
    "withdrawn_at",
    "demo",
)


def status_csv(view: Status) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in view.rows:
        cells: list[object] = [
            row.state,
            row.state_name,
            row.signed_at.isoformat(),
            row.signatory_name,
            row.signatory_title or "",
            row.capacity,
            row.withdrawn_at.isoformat() if row.withdrawn_at else "",
            "true" if row.demo else "false",
        ]
        writer.writerow([_cell(str(c)) for c in cells])
    return out.getvalue()


def _cell(text: str) -> str:
    # A cell a spreadsheet would run as a formula is kept as text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# -- accreditation ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applicant:
    participant_id: str
    name: str
    category: str
    delegation: str | None
    delegation_name: str | None
    status: str
    reason: str | None
    registered_at: datetime
    badge_number: str | None


@dataclass(frozen=True, slots=True)
class Accreditation:
    status: str
    category: str | None
    queue: tuple[Applicant, ...]
    counts: dict[str, int]
    """Participants per status, whatever the filters."""
    categories: tuple[str, ...]
    delegations: tuple[tuple[str, str, int, int], ...]
    """(code, name, approved, all) per delegation, by name."""
    duplicates: tuple[tuple[Applicant, ...], ...]
    """Participants registered more than once: the same name in the same delegation."""


def _applicant(row: Any) -> Applicant:
    return Applicant(
        participant_id=row.participant_id,
        name=row.name,
        category=row.category,
        delegation=row.delegation,
        delegation_name=state_name(row.delegation) if row.delegation else None,
        status=row.status,
        reason=row.reason,
        registered_at=row.registered_at,
        badge_number=row.badge_number,
    )


async def accreditation(db: AsyncSession, status: str, category: str | None) -> Accreditation:
    everyone = [
        _applicant(row)
        for row in await db.execute(
            select(participants).order_by(
                participants.c.registered_at, participants.c.participant_id
            )
        )
    ]
    counts: dict[str, int] = {}
    for person in everyone:
        counts[person.status] = counts.get(person.status, 0) + 1
    queue = tuple(
        p for p in everyone if p.status == status and (category is None or p.category == category)
    )
    delegations: dict[str, list[Applicant]] = {}
    same: dict[tuple[str, str | None], list[Applicant]] = {}
    for person in everyone:
        if person.delegation:
            delegations.setdefault(person.delegation, []).append(person)
        if person.status != "withdrawn":
            same.setdefault(
                (" ".join(person.name.casefold().split()), person.delegation), []
            ).append(person)
    return Accreditation(
        status=status,
        category=category,
        queue=queue,
        counts=counts,
        categories=tuple(sorted({p.category for p in everyone})),
        delegations=tuple(
            sorted(
                (
                    (
                        code,
                        state_name(code),
                        sum(p.status == "approved" for p in people),
                        len(people),
                    )
                    for code, people in delegations.items()
                ),
                key=lambda d: d[1],
            )
        ),
        duplicates=tuple(tuple(group) for group in same.values() if len(group) > 1),
    )


async def applicant(db: AsyncSession, participant_id: str) -> Applicant | None:
    row = (
        await db.execute(
            select(participants).where(participants.c.participant_id == participant_id)
        )
    ).first()
    return _applicant(row) if row else None


# -- workshops --------------------------------------------------------------------------------

UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Places:
    session_id: str
    title: str
    starts_at: datetime
    capacity: int
    enrolled: int
    waitlisted: int
    promotions: int
    last_promotion_at: datetime | None
    closed_reason: str | None

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.enrolled / self.capacity)) if self.capacity else 0


async def workshop_places(db: AsyncSession) -> list[Places]:
    """Every workshop session registration offers, with its places, by start."""
    counted = await db.execute(
        select(claims.c.session_id, claims.c.state, func.count()).group_by(
            claims.c.session_id, claims.c.state
        )
    )
    counts = {(row[0], row[1]): int(row[2]) for row in counted}
    zones = {
        row.edition_id: ZoneInfo(row.time_zone)
        for row in await db.execute(select(editions.c.edition_id, editions.c.time_zone))
    }
    found = await db.execute(
        select(enrolment_sessions)
        .where(enrolment_sessions.c.kind == "workshop_session")
        .order_by(enrolment_sessions.c.starts_at, enrolment_sessions.c.session_id)
    )
    return [
        Places(
            session_id=row.session_id,
            title=row.title,
            starts_at=row.starts_at.astimezone(zones.get(row.edition_id, UTC_ZONE)),
            capacity=row.capacity,
            enrolled=counts.get((row.session_id, "enrolled"), 0),
            waitlisted=counts.get((row.session_id, "waitlisted"), 0),
            promotions=row.promotions,
            last_promotion_at=row.last_promotion_at,
            closed_reason=row.closed_reason,
        )
        for row in found
    ]
