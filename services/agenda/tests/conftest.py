"""Fixtures for the agenda's tests: a small edition to build on, and a read model to apply
events to without a runner (the handlers' own behaviour; the runner has its own tests)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from itertools import count
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from agora_agenda.domain import (
    AddRoom,
    Agenda,
    Command,
    Person,
    PlanEdition,
    ScheduleSession,
    agenda_decider,
)
from agora_agenda.projections import all_projections
from agora_events.catalogue import DomainEvent, catalogue
from agora_events.contracts.agenda import WorkshopRef
from agora_events.envelope import Envelope
from agora_events.projections import EventContext
from agora_events.store import matches
from agora_events.testing import history_of

ZONE = ZoneInfo("Asia/Samarkand")


def at(day: int, clock: str) -> datetime:
    """A local time at the small edition, on ``day`` June 2025."""
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime(2025, 6, day, hours, minutes, tzinfo=ZONE)


WS5 = WorkshopRef(number=5, title="Foresight and Creativity in Public Service")
WS7 = WorkshopRef(number=7, title="Data Governance for Digital Transformation")
ROBYN = Person("robyn-bennett", "Robyn Bennett", "moderator", "Advisor")
SHERZOD = Person("sherzod-shermatov", "Sherzod Shermatov", "speaker", "Minister")


class Build:
    """Commands for a small edition: two workshop rooms and a plenary hall in Samarkand."""

    edition_id = "e25"
    at = staticmethod(at)
    ws5 = WS5
    ws7 = WS7
    robyn = ROBYN
    sherzod = SHERZOD

    def plan(self, **changes: object) -> PlanEdition:
        values: dict[str, object] = {
            "edition_id": self.edition_id,
            "name": "Forum 2025",
            "host_city": "Samarkand",
            "host_country": "UZB",
            "start_date": date(2025, 6, 23),
            "end_date": date(2025, 6, 25),
            "time_zone": "Asia/Samarkand",
        }
        return PlanEdition(**(values | changes))  # type: ignore[arg-type]

    def rooms(self) -> list[AddRoom]:
        return [
            AddRoom("ws-room-5", self.edition_id, "Workshop Room 5", 80),
            AddRoom("ws-room-7", self.edition_id, "Workshop Room 7", 80),
            AddRoom("hall", self.edition_id, "Plenary Hall", 1000),
        ]

    def workshop(
        self,
        session_id: str = "ws5-s1",
        *,
        room_id: str = "ws-room-5",
        day: int = 23,
        start: str = "14:30",
        end: str = "16:00",
        title: str = "Futures literacy",
        workshop: WorkshopRef = WS5,
        people: Sequence[Person] = (),
        capacity: int | None = None,
    ) -> ScheduleSession:
        return ScheduleSession(
            session_id=session_id,
            edition_id=self.edition_id,
            kind="workshop_session",
            title=title,
            room_id=room_id,
            starts_at=at(day, start),
            ends_at=at(day, end),
            workshop=workshop,
            capacity=capacity,
            people=tuple(people),
        )

    def history(self, *commands: Command) -> list[DomainEvent]:
        """The events of the edition and its rooms, then of ``commands``, decided in turn."""
        return history_of(agenda_decider, self.plan(), *self.rooms(), *commands)

    @staticmethod
    def events_of(*commands: Command, state: Agenda | None = None) -> list[DomainEvent]:
        """The events of ``commands`` alone, decided in turn on ``state``."""
        return history_of(agenda_decider, *commands, state=state)


@pytest.fixture
def build() -> Build:
    return Build()


class ReadModel:
    """The agenda's projections over an in-memory SQLite database, fed by hand."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.session = sessions
        self._sequence = count(1)

    async def apply(self, events: Iterable[DomainEvent], *, command: str | None = None) -> None:
        """Apply ``events`` as one command's worth (one causation id) in one transaction."""
        cause = command or uuid.uuid4().hex
        async with self.session() as db, db.begin():
            for event in events:
                sequence = next(self._sequence)
                envelope = Envelope(
                    id=uuid.uuid4().hex,
                    source="/test/agenda",
                    type=event.meta.type,
                    time=datetime(2025, 6, 1, tzinfo=UTC).replace(second=sequence % 60),
                    data=catalogue.encode(event),
                    subject=event.aggregate_id,
                    causationid=cause,
                )
                context = EventContext("AGENDA", sequence, event.subject, envelope)
                for projection in all_projections():
                    if any(matches(event.subject, s) for s in projection.subjects):
                        await projection.apply(db, event, context)

    async def apply_each(self, *batches: Sequence[DomainEvent]) -> None:
        for batch in batches:
            await self.apply(batch)


@pytest.fixture
async def read_model() -> AsyncIterator[ReadModel]:
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as connection:
        for projection in all_projections():
            await connection.run_sync(projection.metadata.create_all)
    try:
        yield ReadModel(async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()


# -- an organiser schedules the 2025 workshops -------------------------------------------------

SLOTS_2025: tuple[tuple[int, str, str], ...] = (
    (23, "14:30", "16:00"),
    (23, "16:30", "18:00"),
    (24, "11:30", "13:00"),
    (25, "09:30", "11:00"),
)


def scheduled_2025_workshops(
    state: Agenda, numbers: Iterable[int] = range(1, 9), slots: Iterable[int] = range(1, 5)
) -> list[ScheduleSession]:
    """The sessions an organiser schedules for the 2025 workshops, which the report leaves
    unscheduled: session ``k`` of workshop ``n`` is ``2025-ws<n>-s<k>`` in Workshop Room n.
    A test's layout, not a fact of the forum."""
    edition = state.editions["unpsf-2025"]
    listed = {w.number: w for w in edition.workshops}
    wanted = list(slots)
    commands = []
    for number in numbers:
        workshop = listed[number]
        ref = WorkshopRef(
            number=number,
            title=workshop.title,
            organisers=workshop.organisers,
            partners=workshop.partners,
        )
        for slot in wanted:
            day, start, end = SLOTS_2025[slot - 1]
            commands.append(
                ScheduleSession(
                    session_id=f"2025-ws{number}-s{slot}",
                    edition_id="unpsf-2025",
                    kind="workshop_session",
                    title=f"{workshop.title} (session {slot})",
                    room_id=f"unpsf-2025-workshop-room-{number}",
                    starts_at=at(day, start),
                    ends_at=at(day, end),
                    workshop=ref,
                )
            )
    return commands


def schedule_body(command: ScheduleSession) -> dict[str, object]:
    """``command`` as the body of ``POST /editions/{id}/sessions``."""
    assert command.workshop is not None
    return {
        "session_id": command.session_id,
        "kind": command.kind,
        "title": command.title,
        "room_id": command.room_id,
        "starts_at": command.starts_at.isoformat(),
        "ends_at": command.ends_at.isoformat(),
        "workshop": {
            "number": command.workshop.number,
            "title": command.workshop.title,
            "organisers": list(command.workshop.organisers),
        },
    }


@pytest.fixture
def workshop_bodies() -> list[dict[str, object]]:
    """Bodies of ``POST /editions/unpsf-2025/sessions``: an organiser schedules sessions 1
    and 3 of workshops 1 and 5, which the report leaves unscheduled."""
    from agora_agenda.importer import bundled_editions, load_edition

    state = agenda_decider.fold(
        agenda_decider.decide(Agenda(), load_edition(bundled_editions()["unpsf-2025"]))
    )
    return [schedule_body(c) for c in scheduled_2025_workshops(state, (1, 5), (1, 3))]


@pytest.fixture
def organiser_schedules() -> Callable[..., list[ScheduleSession]]:
    """``scheduled_2025_workshops``, for tests that schedule the 2025 workshops."""
    return scheduled_2025_workshops
