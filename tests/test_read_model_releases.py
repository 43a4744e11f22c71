"""A rolling update across a read-model change, on one PostgreSQL database: the new release
builds its read models in a schema of its own while the old replicas keep serving theirs,
and it serves nothing (503) until it has caught up. No replica ever answers from a half-built
or changed table."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from agora_agenda.importer import bundled_editions
from agora_agenda.main import AGENDA, import_file
from agora_agenda.projections import all_projections
from agora_agenda.settings import AgendaSettings
from agora_events.nats_server import EmbeddedNats
from agora_events.service import Runtime, running

POSTGRES_ENV = "AGORA_TEST_POSTGRES_URL"


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of its own on the test server, as a service's is in production."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"read-model releases are PostgreSQL schemas: set {POSTGRES_ENV}")
    name = f"agora_releases_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def client(runtime: Runtime[Any, Any]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=runtime.app)
    return httpx.AsyncClient(transport=transport, base_url="http://agenda")


async def eventually(probe: Any, what: str, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await probe():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.1)


async def test_the_old_release_serves_while_the_new_one_builds_beside_it(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new release changes one projection (its version, as a change of its tables does);
    # its first event is held, so the window in which both run is there to look at.
    projections = all_projections()
    changed = copy.copy(next(p for p in projections if p.name == "programme"))
    changed.version += 1
    held = asyncio.Event()
    apply = changed.apply

    async def applying_when_let(*args: Any, **kwargs: Any) -> Any:
        await held.wait()
        return await apply(*args, **kwargs)

    monkeypatch.setattr(changed, "apply", applying_when_let)
    new_release = dataclasses.replace(
        AGENDA, projections=lambda: [changed if p.name == "programme" else p for p in projections]
    )

    with EmbeddedNats(tmp_path / "nats") as server:
        settings = AgendaSettings(
            env="production",
            nats_url=server.url,
            database_url=database_url,
            organiser_token="an-organiser-token-of-the-test",
            stream_replicas=1,  # one NATS node here
        )
        await import_file(settings, bundled_editions()["unpsf-2025"])
        async with running(AGENDA, settings) as old, client(old) as old_api:

            async def old_ready() -> bool:
                return (await old_api.get("/readyz")).status_code == 200

            await eventually(old_ready, "the old release caught up")
            editions = (await old_api.get("/editions")).json()
            assert [e["edition_id"] for e in editions] == ["unpsf-2025"]

            async with running(new_release, settings) as new, client(new) as new_api:
                assert new.db.schema != old.db.schema
                ready = await new_api.get("/readyz")
                assert ready.status_code == 503
                assert any("being built" in p for p in ready.json()["checks"]["problems"])
                query = await new_api.get("/editions")
                assert query.status_code == 503
                assert "building its read models" in query.json()["detail"]
                # Meanwhile the old release is untouched: same tables, same answer, ready.
                assert (await old_api.get("/editions")).json() == editions
                assert await old_ready()
                # Each release's replicas record their use of its schema (agora read-models).
                for runtime in (old, new):
                    async with runtime.db.session() as session:
                        seen = await session.execute(text("SELECT stopped_at FROM agora_replicas"))
                        assert seen.all() == [(None,)]

                held.set()

                async def new_ready() -> bool:
                    return (await new_api.get("/readyz")).status_code == 200

                await eventually(new_ready, "the new release caught up")
                assert (await new_api.get("/editions")).json() == editions
                assert (await old_api.get("/editions")).json() == editions
