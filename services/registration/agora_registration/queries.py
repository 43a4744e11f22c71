"""Questions the read model answers, as typed views. Reads only; no network calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import BindParameter, Row, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agora_events.decider import NotFound
from agora_events.projections.columns import instant, json_rows

from . import states
from .projections import participants, passages, places, sessions

Status = Literal["submitted", "approved", "rejected", "withdrawn"]


class PlaceView(BaseModel):
    session_id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    status: Literal["enrolled", "waitlisted"]
    position: int | None = None


class PassageView(BaseModel):
    direction: Literal["in", "out"]
    gate: str
    at: datetime


class ParticipantView(BaseModel):
    participant_id: str
    name: str
    email: str
    organisation: str
    title: str | None
    category: str
    delegation: str | None
    delegation_name: str | None
    status: Status
    reason: str | None
    badge_number: str | None
    badge_issue: int
    inside: bool
    last_gate: str | None
    last_passage_at: datetime | None
    registered_at: datetime


class ParticipantDetail(ParticipantView):
    places: list[PlaceView]
    passages: list[PassageView]
    clashes: list[tuple[str, str]] = Field(
        default_factory=list,
        description="Pairs of sessions held whose times now overlap: enrolment refuses an "
        "overlap, but the agenda may move a session onto another one later.",
    )


class ParticipantPage(BaseModel):
    total: int
    items: list[ParticipantView]


class DelegationView(BaseModel):
    alpha3: str
    name: str
    status: Literal["member", "observer"]
    participants: list[ParticipantView]


class RosterEntry(BaseModel):
    participant_id: str
    name: str
    delegation: str | None
    category: str
    position: int


class SessionSummary(BaseModel):
    session_id: str
    edition_id: str
    kind: str
    title: str
    room_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    cancelled: str | None
    enrolled: int
    waitlisted: int


class SessionLists(SessionSummary):
    roster: list[RosterEntry]
    waitlist: list[RosterEntry]


class DuplicateGroup(BaseModel):
    """Participants who share a name and an email: maybe one person registered twice."""

    name: str
    email: str
    participants: list[ParticipantView]


class Counts(BaseModel):
    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_country: dict[str, int]


def _participant_values(row: Row[Any]) -> dict[str, Any]:
    values = dict(row._mapping)
    code = values["delegation"]
    state = states.all_states().get(code) if code else None
    values.pop("updated_at", None)
    values.pop("sequence", None)
    values["delegation_name"] = state.name if state else None
    return values


def _participant(row: Row[Any]) -> ParticipantView:
    return ParticipantView(**_participant_values(row))


# A participant's detail is read on every read-your-writes after a registration: one
# statement, built once, with the participant as a bound parameter (building a SELECT and its
# cache key costs more than running it in SQLite), their places and passages aggregated into
# their row (each statement costs SQLAlchemy and the driver more than SQLite's work on it).
_ID: BindParameter[str] = bindparam("participant_id")
_ahead = places.alias("ahead")
_PLACES = (
    select(
        json_rows(
            session_id=places.c.session_id,
            status=places.c.status,
            title=sessions.c.title,
            starts_at=sessions.c.starts_at,
            ends_at=sessions.c.ends_at,
            # Places ahead on the same waitlist (only read for a waitlisted place).
            ahead=select(func.count())
            .select_from(_ahead)
            .where(
                (_ahead.c.session_id == places.c.session_id)
                & (_ahead.c.status == "waitlisted")
                & (_ahead.c.since < places.c.since)
            )
            .scalar_subquery(),
        )
    )
    .join(sessions, sessions.c.session_id == places.c.session_id)
    .where(places.c.participant_id == participants.c.participant_id)
    .correlate(participants)
    .scalar_subquery()
)
_PASSAGES = (
    select(
        json_rows(
            sequence=passages.c.sequence,
            direction=passages.c.direction,
            gate=passages.c.gate,
            at=passages.c.at,
        )
    )
    .where(passages.c.participant_id == participants.c.participant_id)
    .correlate(participants)
    .scalar_subquery()
)
_DETAIL = select(
    participants, _PLACES.label("places_json"), _PASSAGES.label("passages_json")
).where(participants.c.participant_id == _ID)


def _place(place: dict[str, Any]) -> PlaceView:
    return PlaceView(
        session_id=place["session_id"],
        title=place["title"],
        starts_at=instant(place["starts_at"]),
        ends_at=instant(place["ends_at"]),
        status=place["status"],
        position=int(place["ahead"]) + 1 if place["status"] == "waitlisted" else None,
    )


async def participant(db: AsyncSession | AsyncConnection, participant_id: str) -> ParticipantDetail:
    """One participant with their places (in the order they start) and passages (in the
    order they happened): one SELECT."""
    row = (await db.execute(_DETAIL, {"participant_id": participant_id})).first()
    if row is None:
        raise NotFound(f"no participant {participant_id} is registered")
    values = _participant_values(row)
    views = sorted(
        (_place(place) for place in values.pop("places_json")),
        key=lambda place: (place.starts_at, place.session_id),
    )
    gates = sorted(values.pop("passages_json"), key=lambda gate: int(gate["sequence"]))
    return ParticipantDetail(
        **values,
        places=views,
        passages=[
            PassageView(direction=g["direction"], gate=g["gate"], at=instant(g["at"]))
            for g in gates
        ],
        clashes=clashes(views),
    )


def clashes(places: list[PlaceView]) -> list[tuple[str, str]]:
    """Each pair of places whose sessions overlap in time, in the order the places start."""
    ordered = sorted(places, key=lambda place: (place.starts_at, place.session_id))
    found = []
    for index, place in enumerate(ordered):
        for later in ordered[index + 1 :]:
            if later.starts_at >= place.ends_at:
                break  # sorted by start: no later place can overlap this one
            found.append((place.session_id, later.session_id))
    return found


async def list_participants(
    db: AsyncSession,
    *,
    country: str | None = None,
    category: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> ParticipantPage:
    conditions = []
    if country is not None:
        conditions.append(participants.c.delegation == states.lookup(country).alpha3)
    if category is not None:
        conditions.append(participants.c.category == category)
    if status is not None:
        conditions.append(participants.c.status == status)
    total = (
        await db.execute(select(func.count()).select_from(participants).where(*conditions))
    ).scalar_one()
    rows = await db.execute(
        select(participants)
        .where(*conditions)
        .order_by(participants.c.delegation, participants.c.name, participants.c.participant_id)
        .limit(limit)
        .offset(offset)
    )
    return ParticipantPage(total=int(total), items=[_participant(row) for row in rows])


async def possible_duplicates(db: AsyncSession) -> list[DuplicateGroup]:
    """Groups of participants under review or approved who share a name and an email,
    compared without regard to case. A shared email alone is no sign: a delegation's focal
    point often registers several delegates with one address."""
    name, email = func.lower(participants.c.name), func.lower(participants.c.email)
    open_ = participants.c.status.in_(("submitted", "approved"))
    shared = (
        select(name.label("name"), email.label("email"))
        .where(open_)
        .group_by(name, email)
        .having(func.count() > 1)
        .subquery()
    )
    rows = await db.execute(
        select(participants)
        .join(shared, (name == shared.c.name) & (email == shared.c.email))
        .where(open_)
        .order_by(name, email, participants.c.registered_at, participants.c.participant_id)
    )
    groups: dict[tuple[str, str], DuplicateGroup] = {}
    for row in rows:
        view = _participant(row)
        key = (view.name.lower(), view.email.lower())
        group = groups.setdefault(
            key, DuplicateGroup(name=view.name, email=view.email, participants=[])
        )
        group.participants.append(view)
    return list(groups.values())


async def delegation(db: AsyncSession, country: str) -> DelegationView:
    state = states.lookup(country)
    rows = await db.execute(
        select(participants)
        .where(participants.c.delegation == state.alpha3)
        .order_by(participants.c.category, participants.c.name, participants.c.participant_id)
    )
    return DelegationView(
        alpha3=state.alpha3,
        name=state.name,
        status=state.status,
        participants=[_participant(row) for row in rows],
    )


async def list_sessions(db: AsyncSession) -> list[SessionSummary]:
    counted = await db.execute(
        select(places.c.session_id, places.c.status, func.count()).group_by(
            places.c.session_id, places.c.status
        )
    )
    tally: dict[tuple[str, str], int] = {
        (session_id, status): int(n) for session_id, status, n in counted
    }
    rows = await db.execute(select(sessions).order_by(sessions.c.starts_at, sessions.c.session_id))
    return [_summary(row, tally) for row in rows]


def _summary(row: Row[Any], tally: dict[tuple[str, str], int]) -> SessionSummary:
    values = dict(row._mapping)
    values.pop("sequence", None)
    sid = values["session_id"]
    return SessionSummary(
        **values,
        enrolled=tally.get((sid, "enrolled"), 0),
        waitlisted=tally.get((sid, "waitlisted"), 0),
    )


async def session_lists(db: AsyncSession, session_id: str) -> SessionLists:
    row = (await db.execute(select(sessions).where(sessions.c.session_id == session_id))).first()
    if row is None:
        raise NotFound(f"registration knows no workshop session {session_id}")
    listed = await db.execute(
        select(
            places.c.status,
            places.c.participant_id,
            participants.c.name,
            participants.c.delegation,
            participants.c.category,
        )
        .join(participants, participants.c.participant_id == places.c.participant_id)
        .where(places.c.session_id == session_id)
        .order_by(places.c.since)
    )
    roster: list[RosterEntry] = []
    waitlist: list[RosterEntry] = []
    for entry in listed:
        into = roster if entry.status == "enrolled" else waitlist
        into.append(
            RosterEntry(
                participant_id=entry.participant_id,
                name=entry.name,
                delegation=entry.delegation,
                category=entry.category,
                position=len(into) + 1,
            )
        )
    tally = {(session_id, "enrolled"): len(roster), (session_id, "waitlisted"): len(waitlist)}
    return SessionLists(**_summary(row, tally).model_dump(), roster=roster, waitlist=waitlist)


async def counts(db: AsyncSession) -> Counts:
    async def by(column: Any) -> dict[str, int]:
        rows = await db.execute(
            select(column, func.count()).group_by(column).order_by(column.is_(None), column)
        )
        return {str(key) if key is not None else "none": int(n) for key, n in rows}

    total = (await db.execute(select(func.count()).select_from(participants))).scalar_one()
    return Counts(
        total=int(total),
        by_status=await by(participants.c.status),
        by_category=await by(participants.c.category),
        by_country=await by(participants.c.delegation),
    )
