"""Fixtures for registration's tests: a real nats-server (from agora_events' pytest plugin),
the use cases and the reactor on it, an agenda to write to, and read-model databases."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import httpx
import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    RoomAdded,
    RoomCapacityChanged,
    SessionCancelled,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.service import Runtime, running
from agora_events.settings import LOCAL_ORGANISER_TOKEN
from agora_events.store import EventStore
from agora_registration.application import Registration
from agora_registration.main import REGISTRATION
from agora_registration.reactor import Reactor, Registrar
from agora_registration.settings import RegistrationSettings

Service = Runtime[RegistrationSettings, Registration]
SAMARKAND = timezone(timedelta(hours=5))
EDITION = "unpsf-2025"


def at(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=SAMARKAND)


class Agenda:
    """Writes agenda events straight to the AGENDA stream, as the agenda service would."""

    at = staticmethod(at)

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.sequence = 0

    async def append(self, event: DomainEvent) -> int:
        result = await self.store.append([event], expected=None)
        self.sequence = result.last_sequence
        return self.sequence

    async def room(self, room_id: str, capacity: int) -> int:
        return await self.append(
            RoomAdded(room_id=room_id, edition_id=EDITION, name=room_id.title(), capacity=capacity)
        )

    async def room_capacity(self, room_id: str, old: int, new: int) -> int:
        return await self.append(
            RoomCapacityChanged(
                room_id=room_id, edition_id=EDITION, old_capacity=old, new_capacity=new
            )
        )

    async def workshop(
        self,
        session_id: str,
        room_id: str,
        starts_at: datetime,
        ends_at: datetime,
        capacity: int | None = None,
        kind: str = "workshop_session",
    ) -> int:
        return await self.append(
            SessionScheduled(
                session_id=session_id,
                edition_id=EDITION,
                kind=kind,  # type: ignore[arg-type]
                title=f"Workshop {session_id}",
                room_id=room_id,
                starts_at=starts_at,
                ends_at=ends_at,
                capacity=capacity,
            )
        )

    async def move(
        self,
        session_id: str,
        old: tuple[str, datetime, datetime],
        new: tuple[str, datetime, datetime],
    ) -> int:
        return await self.append(
            SessionMoved(
                session_id=session_id,
                edition_id=EDITION,
                old_room_id=old[0],
                new_room_id=new[0],
                old_starts_at=old[1],
                old_ends_at=old[2],
                new_starts_at=new[1],
                new_ends_at=new[2],
            )
        )

    async def session_capacity(self, session_id: str, capacity: int) -> int:
        return await self.append(
            SessionDetailsChanged(session_id=session_id, edition_id=EDITION, capacity=capacity)
        )

    async def cancel(self, session_id: str, reason: str) -> int:
        return await self.append(
            SessionCancelled(session_id=session_id, edition_id=EDITION, reason=reason)
        )


@pytest.fixture
def store(nats_client: NatsClient) -> EventStore:
    return EventStore(nats_client, source="/agora-test")


@pytest.fixture
def registration(store: EventStore) -> Registration:
    return Registration(store)


@pytest.fixture
def agenda(nats_client: NatsClient) -> Agenda:
    return Agenda(EventStore(nats_client, source="/agora-test/agenda"))


@contextlib.asynccontextmanager
async def running_reactor(
    nats_url: str,
    store: EventStore,
    registration: Registrar,
    *,
    name: str = "registration-reactor",
    retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2),
) -> AsyncIterator[Reactor]:
    """A reactor on a FastStream broker of its own, as ``main.py`` wires it."""
    broker = NatsBroker(nats_url, log_level=logging.DEBUG)
    reactor = Reactor(broker, store, registration, name=name, retry_delays=retry_delays)
    broker.include_router(reactor.router)
    await broker.start()
    try:
        yield reactor
    finally:
        await broker.stop()


class ReactorRunner(Protocol):
    def __call__(
        self, registration: Registrar, *, name: str = ...
    ) -> contextlib.AbstractAsyncContextManager[Reactor]: ...


@pytest.fixture
def reactors(nats_url: str, nats_client: NatsClient, store: EventStore) -> ReactorRunner:
    """Starts reactors on the test's server: ``async with reactors(registration) as r``."""

    def run(
        registration: Registrar, *, name: str = "registration-reactor"
    ) -> contextlib.AbstractAsyncContextManager[Reactor]:
        return running_reactor(nats_url, store, registration, name=name)

    return run


@pytest.fixture
async def reactor(reactors: ReactorRunner, registration: Registration) -> AsyncIterator[Reactor]:
    async with reactors(registration) as running:
        yield running


class People:
    """Registers approved participants through the use cases."""

    def __init__(self, registration: Registration) -> None:
        self.registration = registration
        self.registered = 0

    async def approved(self, count: int) -> list[str]:
        ids = []
        for _ in range(count):
            self.registered += 1
            outcome = await self.registration.register(
                name=f"Participant {self.registered}",
                email=f"person.{self.registered}@example.org",
                category="delegate",
                delegation="UZB",
            )
            participant_id = outcome.ids["participant_id"]
            await self.registration.approve(participant_id)
            ids.append(participant_id)
        return ids


@pytest.fixture
def people(registration: Registration) -> People:
    return People(registration)


# -- read-model databases ------------------------------------------------------------------

POSTGRES_ENV = "AGORA_TEST_POSTGRES_URL"
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: object
) -> AsyncIterator[dict[str, str | None]]:
    """Settings for a fresh read-model database: a SQLite file, or a PostgreSQL schema of
    its own (named after this run and test) when AGORA_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield {
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/registration.db",
            "database_schema": None,
        }
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV}, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        )
    schema = f"registration_{RUN}_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield {"database_url": url, "database_schema": schema}
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await engine.dispose()


# -- the service over HTTP -----------------------------------------------------------------

ORGANISER = {"Authorization": f"Bearer {LOCAL_ORGANISER_TOKEN}"}


@pytest.fixture
async def service(
    nats_url: str, nats_client: NatsClient, database: dict[str, str | None]
) -> AsyncIterator[Service]:
    """The whole process minus uvicorn: projections, reactor and API on the test's NATS."""
    settings = RegistrationSettings.model_validate(
        # Generous: a loaded machine may take seconds to apply an event, and a test that
        # waits for its own write must not hear 503 for it; binding the reactors' consumers
        # may take longer than the 15 s a production start allows.
        database
        | {"read_your_writes_timeout": 10.0, "nats_connect_timeout": 20.0, "nats_url": nats_url}
    )
    async with running(REGISTRATION, settings, nc=nats_client) as runtime:
        yield runtime


class Api:
    """An HTTP client for the registration API with a few shorthands."""

    organiser = ORGANISER

    def __init__(self, client: httpx.AsyncClient, service: Service) -> None:
        self.client = client
        self.service = service
        self.registered = 0
        self.sequence = 0  # of the last command a shorthand sent

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def register(self, **fields: object) -> dict[str, Any]:
        self.registered += 1
        body = {
            "name": f"Participant {self.registered}",
            "email": f"participant.{self.registered}@example.org",
            "category": "delegate",
            "delegation": "UZB",
        } | fields
        response = await self.client.post("/participants", json=body)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        self.sequence = answer["sequence"]
        return answer

    async def approved(self, **fields: object) -> tuple[str, dict[str, str]]:
        """A registered and approved participant: their id and their own auth header."""
        registered = await self.register(**fields)
        participant_id = registered["ids"]["participant_id"]
        response = await self.client.post(
            f"/participants/{participant_id}/approve", headers=self.organiser
        )
        assert response.status_code == 200, response.text
        self.sequence = response.json()["sequence"]
        return participant_id, self.bearer(registered["participant_token"])


@pytest.fixture
async def api(service: Service) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registration") as client:
        yield Api(client, service)


@pytest.fixture
async def serving_replica(
    service: Service, nats_url: str, nats_client: NatsClient, database: dict[str, str | None]
) -> AsyncIterator[Api]:
    """A replica beside ``service`` (which projects) that never projects nor reacts."""
    settings = RegistrationSettings.model_validate(
        database
        | {
            "read_your_writes_timeout": 10.0,
            "nats_connect_timeout": 20.0,
            "nats_url": nats_url,
            "run_projections": False,
            "run_reactors": False,
        }
    )
    async with running(REGISTRATION, settings, nc=nats_client) as replica:
        transport = httpx.ASGITransport(app=replica.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            yield Api(client, replica)
