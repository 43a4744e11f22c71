"""Replicas record their use of a release's read models, and a drop of an old release's
schema looks again, under the lock starting replicas prepare under, before it drops."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text

from agora_events.projections.bookkeeping import replicas, utcnow
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.heartbeat import Heartbeat
from agora_events.projections.releases import ReleaseSchemas, judge

from .conftest import POSTGRES_ENV

START = datetime(2026, 12, 2, 2, 0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def release() -> AsyncIterator[tuple[str, str]]:
    """A service name of this test's own and the name of one of its release schemas (not
    created yet), on the test server; every schema of the service is dropped afterwards."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"release schemas are PostgreSQL schemas: set {POSTGRES_ENV}")
    context = f"t{uuid.uuid4().hex[:10]}"
    yield context, f"{context}_rm_{uuid.uuid4().hex[:12]}"
    db = ReadModelDatabase(url)
    try:
        async with db.engine.begin() as connection:
            names = await connection.scalars(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"),
                {"prefix": f"{context}%"},
            )
            for name in list(names):
                await connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        await db.dispose()


async def rows(db: ReadModelDatabase) -> list[tuple[str, datetime, datetime, datetime | None]]:
    async with db.session() as session:
        found = await session.execute(
            select(
                replicas.c.instance,
                replicas.c.started_at,
                replicas.c.last_seen,
                replicas.c.stopped_at,
            )
        )
        return [(i, started, seen, stopped) for i, started, seen, stopped in found]


async def test_a_replica_records_itself_at_start_refreshes_its_row_and_notes_its_stop(
    release: tuple[str, str],
) -> None:
    _, schema = release
    db = ReadModelDatabase(os.environ[POSTGRES_ENV], schema=schema)
    clock = Clock()
    heartbeat = Heartbeat(db, instance="agenda-7d9f/1", clock=clock)
    try:
        # Before prepare: the first beat makes the schema and its table.
        await heartbeat.start()
        assert await rows(db) == [("agenda-7d9f/1", START, START, None)]
        clock.now = START + timedelta(seconds=30)
        await heartbeat.beat()
        assert await rows(db) == [("agenda-7d9f/1", START, clock.now, None)]
        clock.now = START + timedelta(seconds=45)
        await heartbeat.stop()
        assert await rows(db) == [("agenda-7d9f/1", START, clock.now, clock.now)]

        # The container restarted with the same name and pid: it takes the row over.
        clock.now = START + timedelta(minutes=5)
        again = Heartbeat(db, instance="agenda-7d9f/1", clock=clock)
        await again.start()
        await again.stop()
        assert await rows(db) == [("agenda-7d9f/1", clock.now, clock.now, clock.now)]
    finally:
        await heartbeat.stop()
        await db.dispose()


async def test_sqlite_keeps_no_heartbeat(tmp_path: object) -> None:
    db = ReadModelDatabase(f"sqlite+aiosqlite:///{tmp_path}/agenda.db")
    heartbeat = Heartbeat(db)
    try:
        await heartbeat.start()
        await heartbeat.stop()
        assert not heartbeat.active
        await db.prepare([])  # the table is there, as every bookkeeping table is, but unused
        assert await rows(db) == []
    finally:
        await db.dispose()


async def test_a_drop_looks_again_and_refuses_a_schema_a_replica_started_in_since_the_survey(
    release: tuple[str, str],
) -> None:
    context, schema = release
    url = os.environ[POSTGRES_ENV]
    db = ReadModelDatabase(url, schema=schema)
    schemas = ReleaseSchemas(url, context, current=[f"{context}_rm_000000000000"])
    try:
        await db.prepare([])
        (surveyed,) = await schemas.survey()
        now = utcnow()
        assert judge(surveyed, grace=timedelta(0), now=now).action == "drop"

        heartbeat = Heartbeat(db, instance="agenda-rollback/1", clock=lambda: now)
        await heartbeat.start()  # a rollback starts an old replica meanwhile
        await heartbeat.stop()
        verdict = await schemas.drop(schema, grace=timedelta(minutes=1), now=now)

        assert verdict.action == "refuse"
        assert "replica agenda-rollback/1 was seen just now" in verdict.reason
        assert [s.name for s in await schemas.survey()] == [schema]
    finally:
        await schemas.dispose()
        await db.dispose()


async def test_a_drop_refuses_a_schema_that_is_not_a_release_of_the_service(
    release: tuple[str, str],
) -> None:
    context, _ = release
    schemas = ReleaseSchemas(os.environ[POSTGRES_ENV], context, current=[])
    try:
        with pytest.raises(ValueError, match="is not a release schema"):
            await schemas.drop("public")
        with pytest.raises(ValueError, match="is not a release schema"):
            await schemas.drop(f"other_rm_{'0' * 12}")
    finally:
        await schemas.dispose()
