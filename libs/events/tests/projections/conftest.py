"""Fixtures: the same tests run on SQLite and on PostgreSQL.

The PostgreSQL variant needs ``AGORA_TEST_POSTGRES_URL`` (e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``); every database a test asks for is a
schema of its own there, dropped afterwards, so tests never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from agora_events.projections.database import ReadModelDatabase

POSTGRES_ENV = "AGORA_TEST_POSTGRES_URL"
NewDatabase = Callable[[], Awaitable[ReadModelDatabase]]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"PostgreSQL variant: set {POSTGRES_ENV}=postgresql+asyncpg://… to run it")
    return str(request.param)


@pytest.fixture
async def new_database(backend: str, tmp_path: object) -> AsyncIterator[NewDatabase]:
    """Makes fresh, empty read-model databases of the test's backend."""
    made: list[ReadModelDatabase] = []

    async def make() -> ReadModelDatabase:
        name = f"t_{uuid.uuid4().hex[:16]}"
        if backend == "sqlite":
            db = ReadModelDatabase(f"sqlite+aiosqlite:///{tmp_path}/{name}.db")
        else:
            db = ReadModelDatabase(os.environ[POSTGRES_ENV], schema=name)
        made.append(db)
        return db

    yield make
    for db in made:
        if db.schema is not None:
            async with db.engine.begin() as connection:
                # Rebuilds leave nothing behind, but a failed test may.
                for schema in (db.schema, f"{db.schema}_rebuild_counters"):
                    await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await db.dispose()


@pytest.fixture
async def db(new_database: NewDatabase) -> ReadModelDatabase:
    return await new_database()
