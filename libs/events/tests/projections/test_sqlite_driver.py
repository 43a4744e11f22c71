"""The read models' SQLite adapter: one crossing to SQLite's thread per statement, and
everything SQLAlchemy reads off a statement exactly as with SQLAlchemy's own adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from agora_events.projections.database import ReadModelDatabase

metadata = MetaData()
people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(40), nullable=False, unique=True),
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[ReadModelDatabase]:
    database = ReadModelDatabase(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def test_a_statement_crosses_to_sqlites_thread_once(
    db: ReadModelDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.connect() as connection:
        await connection.execute(select(people.c.id))  # the connection's BEGIN is behind us
        crossings = 0
        original: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute

        async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal crossings
            crossings += 1
            return await original(self, fn, *args, **kwargs)

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        await connection.execute(select(people.c.id, people.c.name).where(people.c.id > 0))
        assert crossings == 1  # SQLAlchemy's own adapter makes four: cursor, execute, fetch, close


async def test_rows_rowcount_and_inserted_keys_read_as_with_any_driver(
    db: ReadModelDatabase,
) -> None:
    async with db.writer() as session:
        inserted = await session.execute(insert(people).values(name="Aziza"))
        assert inserted.inserted_primary_key == (1,)
        await session.execute(insert(people), [{"name": "Bakhtiyor"}, {"name": "Chiara"}])
        renamed = await session.execute(
            update(people).where(people.c.id > 1).values(name=people.c.name + "!")
        )
        assert renamed.rowcount == 2
    async with db.connect() as connection:
        rows = (await connection.execute(select(people).order_by(people.c.id))).all()
        nothing = (await connection.execute(select(people).where(people.c.id > 99))).first()
    assert [tuple(row) for row in rows] == [(1, "Aziza"), (2, "Bakhtiyor!"), (3, "Chiara!")]
    assert nothing is None


async def test_a_failing_statement_raises_sqlalchemys_error_and_leaves_nothing_written(
    db: ReadModelDatabase,
) -> None:
    async def the_same_name_twice() -> None:
        async with db.writer() as session:
            await session.execute(insert(people).values(name="Dilnoza"))
            await session.execute(insert(people).values(name="Dilnoza"))

    async def a_missing_table() -> None:
        async with db.connect() as connection:
            await connection.execute(text("SELECT * FROM nobody"))

    with pytest.raises(IntegrityError):
        await the_same_name_twice()
    with pytest.raises(OperationalError, match="no such table"):
        await a_missing_table()
    async with db.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM people"))).scalar_one()
    assert count == 0
