"""Fixtures for declarations' tests: a real nats-server (from agora_events' pytest plugin),
the use cases on it with a clock the test moves, registration's events written straight to
REGISTRATION (as the registration service would), and the service over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from agora_declarations.application import Declarations
from agora_declarations.domain import RecordStanding
from agora_declarations.main import DECLARATIONS
from agora_declarations.settings import DeclarationsSettings
from agora_events.catalogue import DomainEvent
from agora_events.contracts.registration import (
    AccreditationApproved,
    AccreditationRejected,
    Category,
    ParticipantRegistered,
    ParticipantWithdrew,
)
from agora_events.service import Runtime, running
from agora_events.settings import LOCAL_ORGANISER_TOKEN
from agora_events.store import EventStore
from agora_events.tokens import LOCAL_PARTICIPANT_SECRET, participant_token
from agora_events.usecases import SYSTEM

Service = Runtime[DeclarationsSettings, Declarations]
SAMARKAND = timezone(timedelta(hours=5))
OPENING = datetime(2025, 6, 23, 9, 0, tzinfo=SAMARKAND)
ORGANISER = {"Authorization": f"Bearer {LOCAL_ORGANISER_TOKEN}"}
BUSY_RETRIES = 30
TEXT = "We, the Ministers, resolve to advance digital transformation.\n"


class Clock:
    """The time the use cases decide at; tests move it."""

    def __init__(self, now: datetime = OPENING) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(nats_client: NatsClient) -> EventStore:
    return EventStore(nats_client, source="/agora-test/declarations")


@pytest.fixture
def declarations(store: EventStore, clock: Clock) -> Declarations:
    return Declarations(store, clock=clock)


async def open_declaration(
    declarations: Declarations,
    declaration_id: str,
    *,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
    open_to: Any = "member_states",
) -> str:
    """A declaration with one English text, opened for signature; its text's hash."""
    await declarations.draft(
        declaration_id, title="A test declaration", edition_id="unpsf-2025", launched_by="UZB"
    )
    await declarations.set_text(declaration_id, "en", TEXT)
    await declarations.open_for_signature(
        declaration_id, opens_at=opens_at, closes_at=closes_at, open_to=open_to
    )
    return (await declarations.declaration(declaration_id)).texts["en"]


async def standing(
    declarations: Declarations,
    *,
    delegation: str | None,
    category: Category = "minister",
    status: Any = "approved",
    name: str = "A. Delegate",
) -> str:
    """A participant as registration's events would have told declarations of them."""
    participant_id = new_id("p")
    await declarations.record_standing(
        RecordStanding(participant_id, name, None, category, delegation, status, 1),
        caller=SYSTEM,
    )
    return participant_id


@dataclass
class Registration:
    """Writes participant events to REGISTRATION, as the registration service would."""

    store: EventStore
    sequence: int = 0

    async def append(self, event: DomainEvent) -> int:
        result = await self.store.append([event], expected=None)
        self.sequence = result.last_sequence
        return self.sequence

    async def registered(
        self, delegation: str | None, category: Category = "minister", name: str = "A. Minister"
    ) -> str:
        participant_id = uuid.uuid4().hex[:8]
        await self.append(
            ParticipantRegistered(
                participant_id=participant_id,
                name=name,
                email=f"{participant_id}@example.org",
                category=category,
                delegation=delegation,
            )
        )
        return participant_id

    async def approved(self, participant_id: str) -> int:
        return await self.append(AccreditationApproved(participant_id=participant_id))

    async def rejected(self, participant_id: str, reason: str = "not eligible") -> int:
        return await self.append(
            AccreditationRejected(participant_id=participant_id, reason=reason)
        )

    async def withdrew(self, participant_id: str) -> int:
        return await self.append(ParticipantWithdrew(participant_id=participant_id))


@pytest.fixture
def registration(nats_client: NatsClient) -> Registration:
    return Registration(EventStore(nats_client, source="/agora-test/registration"))


# -- read-model databases and the service over HTTP ------------------------------------------

POSTGRES_ENV = "AGORA_TEST_POSTGRES_URL"
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: object
) -> AsyncIterator[dict[str, str | None]]:
    """A fresh read-model database: a SQLite file, or a PostgreSQL schema of its own when
    AGORA_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield {"database_url": f"sqlite+aiosqlite:///{tmp_path}/declarations.db"}
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    schema = f"declarations_{RUN}_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield {"database_url": url, "database_schema": schema}
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture
async def service(
    nats_url: str, nats_client: NatsClient, database: dict[str, str | None], clock: Clock
) -> AsyncIterator[Service]:
    """The whole process minus uvicorn: projections, reactor and API on the test's NATS,
    deciding on the test's clock."""
    settings = DeclarationsSettings.model_validate(
        # nats_connect_timeout: binding the reactors' consumers on a loaded machine may take
        # longer than the 15 s a production start allows.
        database
        | {"read_your_writes_timeout": 5.0, "nats_connect_timeout": 20.0, "nats_url": nats_url}
    )
    async with running(DECLARATIONS, settings, nc=nats_client) as runtime:
        runtime.commands.clock = clock
        yield runtime


class Api:
    organiser = ORGANISER

    def __init__(self, client: httpx.AsyncClient, service: Service) -> None:
        self.client = client
        self.service = service

    @staticmethod
    def token_of(participant_id: str) -> dict[str, str]:
        token = participant_token(LOCAL_PARTICIPANT_SECRET, participant_id)
        return {"Authorization": f"Bearer {token}"}

    async def sign(
        self,
        declaration_id: str,
        state: str,
        participant_id: str,
        sha256: str,
        *,
        headers: dict[str, str] | None = None,
        retry_busy: bool = False,
        **extra: Any,
    ) -> httpx.Response:
        """Sign through the API; with ``retry_busy``, a 503 is sent again after the
        ``Retry-After`` the service names, as a well-behaved client does."""
        body = {"participant_id": participant_id, "language": "en", "text_sha256": sha256}
        for _ in range(BUSY_RETRIES):
            response = await self.client.post(
                f"/declarations/{declaration_id}/states/{state}/signature",
                json=body | extra,
                headers=self.organiser if headers is None else headers,
            )
            if not (retry_busy and response.status_code == 503):
                return response
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        return response

    async def status(self, declaration_id: str, after: int, **params: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/declarations/{declaration_id}/status", params={"after": after, **params}
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture
async def api(service: Service) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://declarations") as client:
        yield Api(client, service)
