"""A stray message in AGENDA never breaks the agenda's commands, and edge input a read model
cannot hold is refused: the whole service on a real nats-server, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NATS
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from agora_agenda.main import AGENDA
from agora_agenda.settings import AgendaSettings
from agora_cli.main import main as agora
from agora_events.envelope import Envelope
from agora_events.service import running

TOKEN = "organiser-token-for-tests"
ORGANISER = {"Authorization": f"Bearer {TOKEN}"}
POSTGRES_ENV = "AGORA_TEST_POSTGRES_URL"
EDITION = {
    "edition_id": "e25",
    "name": "Forum 2025",
    "host_city": "Samarkand",
    "host_country": "UZB",
    "start_date": "2025-06-23",
    "end_date": "2025-06-25",
    "time_zone": "Asia/Samarkand",
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'agenda.db'}"}
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL variant: set {POSTGRES_ENV}=postgresql+asyncpg://… to run it")
    schema = f"agenda_foreign_{uuid.uuid4().hex[:10]}"
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
async def agenda(
    nats_client: NATS, nats_url: str, database: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = AgendaSettings.model_validate(
        database
        | {
            "nats_url": nats_url,
            "organiser_token": SecretStr(TOKEN),
            "read_your_writes_timeout": 5.0,
        }
    )
    async with running(AGENDA, settings, nc=nats_client) as runtime:
        transport = httpx.ASGITransport(app=runtime.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agenda") as client:
            yield client


async def publish_poison(nats_client: NATS) -> tuple[int, int]:
    """A message without CloudEvents headers and an ``EditionPlanned`` the model refuses,
    published straight into the agenda's subjects by someone with publish rights."""
    js = nats_client.jetstream()
    bare = await js.publish("agenda.edition.x.planned", b'{"edition_id": "x"}')
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source="/somewhere-else",
        type="agora.agenda.edition.planned.v1",
        time=datetime.now(UTC),
        data=b"",
    )
    refused = await js.publish(
        "agenda.edition.x.planned",
        b'{"edition_id": "x", "capacity": "lots"}',
        headers=envelope.to_headers(),
    )
    return bare.seq, refused.seq


async def test_agenda_commands_still_answer_after_a_stray_message_in_its_scope(
    agenda: httpx.AsyncClient, nats_client: NATS
) -> None:
    await publish_poison(nats_client)

    planned = await agenda.post("/editions", json=EDITION, headers=ORGANISER)
    unknown = await agenda.post(
        "/editions/nope/rooms",
        json={"room_id": "attic", "name": "Attic", "capacity": 5},
        headers=ORGANISER,
    )
    room = await agenda.post(
        "/editions/e25/rooms",
        json={"room_id": "hall", "name": "Plenary Hall", "capacity": 500},
        headers=ORGANISER,
    )

    assert planned.status_code == 201, planned.text
    assert unknown.status_code == 404, unknown.text  # a real reason: no such edition
    assert room.status_code == 201, room.text
    draft = {"after": room.json()["sequence"], "draft": "true"}  # nothing published yet
    read = await agenda.get("/editions/e25", params=draft, headers=ORGANISER)
    assert read.status_code == 200 and read.json()["name"] == "Forum 2025"


async def test_the_cli_lists_the_stray_messages_of_a_stream(
    nats_client: NATS, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bare, refused = await publish_poison(nats_client)

    status = await asyncio.to_thread(
        agora, ["streams", "--nats-url", nats_url, "foreign", "--stream", "AGENDA"]
    )

    out = capsys.readouterr().out
    assert status == 1
    assert f"AGENDA seq {bare} agenda.edition.x.planned [not-a-cloudevent]" in out
    assert f"AGENDA seq {refused} agenda.edition.x.planned [invalid-data]" in out
    assert "lots" not in out


async def test_a_name_with_a_nul_is_refused_with_422_naming_the_field(
    agenda: httpx.AsyncClient,
) -> None:
    refused = await agenda.post(
        "/editions", json=EDITION | {"name": "Forum\x002025"}, headers=ORGANISER
    )
    planned = await agenda.post("/editions", json=EDITION, headers=ORGANISER)
    room = await agenda.post(
        "/editions/e25/rooms",
        json={"room_id": "hall", "name": "Plenary\x00Hall", "capacity": 500},
        headers=ORGANISER,
    )

    assert refused.status_code == 422
    assert refused.json()["reason"].startswith("name: must not contain U+0000")
    assert planned.status_code == 201
    assert room.status_code == 422 and room.json()["reason"].startswith("name: ")
    draft = {"after": planned.json()["sequence"], "draft": "true"}  # nothing published yet
    read = await agenda.get("/editions/e25", params=draft, headers=ORGANISER)
    assert read.status_code == 200


@pytest.mark.parametrize("key", [b"key\twith-tab", "clé".encode()])
async def test_an_idempotency_key_with_a_control_character_or_non_ascii_is_refused(
    agenda: httpx.AsyncClient, key: bytes
) -> None:
    response = await agenda.post(
        "/editions", json=EDITION, headers={b"Idempotency-Key": key, **_bytes(ORGANISER)}
    )

    assert response.status_code == 422
    assert "printable ASCII" in response.json()["reason"]


def _bytes(headers: dict[str, str]) -> dict[bytes, bytes]:
    return {name.encode(): value.encode() for name, value in headers.items()}
