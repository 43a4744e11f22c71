"""Fixtures for the console's tests: a real nats-server (agora_events' pytest plugin), the
other contexts' events written straight to their streams (as those services would), the
console running on them, and a registration stand-in for the gate's commands."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest
from nats.aio.client import Client as NatsClient

from agora_console.clients import Services
from agora_console.main import CONSOLE
from agora_console.settings import ConsoleSettings
from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    EditionPlanned,
    PersonAssigned,
    RoomAdded,
    SchedulePublished,
    SessionMoved,
    SessionScheduled,
    WorkshopRef,
)
from agora_events.contracts.registration import (
    AccreditationApproved,
    AccreditationRejected,
    CheckedIn,
    CheckedOut,
)
from agora_events.service import Runtime, running
from agora_events.settings import LOCAL_ORGANISER_TOKEN
from agora_events.store import EventStore

Console = Runtime[ConsoleSettings, Services]
SAMARKAND = timezone(timedelta(hours=5))
EDITION = "unpsf-2025"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=SAMARKAND)


@dataclass
class Log:
    """Appends other contexts' events, as their services would, one at a time."""

    store: EventStore
    last: dict[str, int] = field(default_factory=dict)

    async def append(self, *events: DomainEvent) -> int:
        sequence = 0
        for event in events:
            result = await self.store.append([event], expected=None)
            sequence = result.last_sequence
        return sequence


@pytest.fixture
def log(nats_client: NatsClient) -> Log:
    return Log(EventStore(nats_client, source="/agora-test"))


async def plan_edition(log: Log) -> int:
    """A small Samarkand programme over two days, published as version 1."""
    return await log.append(
        EditionPlanned(
            edition_id=EDITION,
            name="UN Public Service Forum 2025",
            host_city="Samarkand",
            host_country="UZB",
            start_date=date(2025, 6, 23),
            end_date=date(2025, 6, 25),
            time_zone="Asia/Samarkand",
        ),
        RoomAdded(room_id="hall", edition_id=EDITION, name="Congress Hall", capacity=900),
        RoomAdded(room_id="ws5", edition_id=EDITION, name="Workshop Room 5", capacity=80),
        SessionScheduled(
            session_id="opening",
            edition_id=EDITION,
            kind="opening_ceremony",
            title="Opening Ceremony",
            room_id="hall",
            starts_at=at(24, 9),
            ends_at=at(24, 10, 30),
        ),
        SessionScheduled(
            session_id="ws5-s1",
            edition_id=EDITION,
            kind="workshop_session",
            title="Foresight and Creativity in Public Service",
            workshop=WorkshopRef(number=5, title="Foresight and Creativity"),
            room_id="ws5",
            starts_at=at(24, 14, 30),
            ends_at=at(24, 16),
        ),
        SessionScheduled(
            session_id="closing",
            edition_id=EDITION,
            kind="closing",
            title="Closing Session",
            room_id="hall",
            starts_at=at(25, 16),
            ends_at=at(25, 17),
        ),
        PersonAssigned(
            session_id="opening",
            edition_id=EDITION,
            person_id="p-li",
            name="Li Junhua",
            title="Under-Secretary-General, UN DESA",
            role="keynote_speaker",
        ),
        SchedulePublished(
            edition_id=EDITION,
            version=1,
            label="As announced",
            published_at=datetime(2025, 6, 1, tzinfo=UTC),
        ),
    )


async def move(
    log: Log,
    session_id: str,
    old: tuple[str, datetime, datetime],
    new: tuple[str, datetime, datetime],
) -> int:
    return await log.append(
        SessionMoved(
            session_id=session_id,
            edition_id=EDITION,
            old_room_id=old[0],
            old_starts_at=old[1],
            old_ends_at=old[2],
            new_room_id=new[0],
            new_starts_at=new[1],
            new_ends_at=new[2],
        )
    )


@dataclass
class FakeRegistration:
    """Registration's check-in, check-out, approve and reject routes, appending the events
    registration would (its rules are registration's own tests'; the console decides first
    at the gate, see domain.py)."""

    log: Log
    refuse_with: str | None = None
    calls: list[str] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {LOCAL_ORGANISER_TOKEN}"
        if request.method == "GET":  # the services' /readyz: none runs here
            return httpx.Response(404, text="not here")
        assert request.headers["Idempotency-Key"].startswith("console-")
        _, _, participant_id, action = request.url.path.split("/")
        self.calls.append(f"{participant_id} {action}")
        if self.refuse_with is not None:
            return httpx.Response(409, json={"detail": self.refuse_with})
        body = json.loads(request.content or b"null")
        event: DomainEvent
        if action == "approve":
            event = AccreditationApproved(participant_id=participant_id)
        elif action == "reject":
            event = AccreditationRejected(participant_id=participant_id, reason=body["reason"])
        else:
            kind = CheckedIn if action == "check-in" else CheckedOut
            event = kind(participant_id=participant_id, gate=body["gate"], at=datetime.now(UTC))
        sequence = await self.log.append(event)
        return httpx.Response(
            200,
            json={"ids": {"participant_id": participant_id}, "sequence": sequence, "events": []},
        )


@pytest.fixture
def registration(log: Log) -> FakeRegistration:
    return FakeRegistration(log)


@pytest.fixture
async def console(
    nats_url: str, nats_client: NatsClient, tmp_path: object, registration: FakeRegistration
) -> AsyncIterator[Console]:
    settings = ConsoleSettings.model_validate(
        {
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/console.db",
            "nats_url": nats_url,
            "read_your_writes_timeout": 10.0,
            # A loaded machine may bind the reactors' consumers slower than a production
            # start allows (15 s).
            "nats_connect_timeout": 20.0,
        }
    )
    async with running(CONSOLE, settings, nc=nats_client) as runtime:
        runtime.commands.transport = httpx.MockTransport(registration.handle)
        yield runtime


@pytest.fixture
async def web(console: Console) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        yield client


async def applied(console: Console, stream: str, sequence: int) -> None:
    """Until the console's read model has the events up to ``sequence``."""
    await console.projections.wait_for(sequence, stream=stream, timeout=20)


async def signed_in(web: httpx.AsyncClient) -> None:
    response = await web.post("/sign-in", data={"token": LOCAL_ORGANISER_TOKEN, "next": "/gate"})
    assert response.status_code == 303, response.text


async def next_change(feed: AsyncIterator[str]) -> str:
    """The next frame of a live feed that tells of a change: a keep-alive comment (": …")
    comes whenever nothing did for a while, as on a loaded machine."""
    while (frame := await anext(feed)).startswith(":"):
        continue
    return frame
