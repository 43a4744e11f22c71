"""The read models' SQLite adapter: one crossing to SQLite's thread per statement (fewer when
a BEGIN or queued writes go with the next one), and everything SQLAlchemy reads off a
statement exactly as with SQLAlchemy's own adapter."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.sqlite_driver import deferred_writes

metadata = MetaData()
people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(40), nullable=False, unique=True),
)


class Crossings:
    """Counts the functions handed to aiosqlite's thread, once ``start`` is called."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.count = 0

    def start(self) -> None:
        original: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute

        async def counted(self_: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(self_, fn, *args, **kwargs)

        self.monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)


@pytest.fixture
def crossings(monkeypatch: pytest.MonkeyPatch) -> Crossings:
    return Crossings(monkeypatch)


async def names(db: ReadModelDatabase) -> list[str]:
    async with db.connect() as connection:
        return list(
            (await connection.execute(select(people.c.name).order_by(people.c.id))).scalars()
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


async def test_a_begin_goes_to_sqlite_with_the_statement_after_it(
    db: ReadModelDatabase, crossings: Crossings
) -> None:
    async with db.connect() as connection:
        crossings.start()
        await connection.execute(select(people.c.id))
        assert crossings.count == 1
        assert (await connection.execute(select(people.c.id))).all() == []
    assert crossings.count == 3  # the second SELECT, and the rollback that ends the reads


async def test_a_batchs_queued_writes_and_its_commit_cross_to_sqlite_as_one(
    db: ReadModelDatabase, crossings: Crossings
) -> None:
    async with db.writer() as warming:
        await warming.execute(select(people.c.id))  # the writers' connection, set up uncounted
    crossings.start()
    async with db.writer() as session:
        session.write_behind = True
        await session.execute(insert(people).values(name="Aziza"))
        await session.execute(insert(people).values(name="Bakhtiyor"))
        await session.execute(update(people).where(people.c.name == "Aziza").values(name="Aziz"))
    # BEGIN IMMEDIATE, two inserts, an update and the commit; no rollback after it.
    assert crossings.count == 1
    assert await names(db) == ["Aziz", "Bakhtiyor"]


async def test_a_queued_write_refused_at_the_commit_leaves_nothing_written_and_nothing_locked(
    db: ReadModelDatabase,
) -> None:
    async def the_same_name_twice_queued() -> None:
        async with db.writer() as session:
            session.write_behind = True
            await session.execute(insert(people).values(name="Emine"))
            await session.execute(insert(people).values(name="Emine"))

    with pytest.raises(IntegrityError, match="UNIQUE"):
        await the_same_name_twice_queued()
    assert await names(db) == []
    # Another process could take the write lock at once: no transaction was left open.
    other = sqlite3.connect(db.sqlite_path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
    async with db.writer() as session:
        session.write_behind = True
        await session.execute(insert(people).values(name="Emine"))
    assert await names(db) == ["Emine"]


async def test_a_rollback_drops_the_writes_that_waited_without_crossing(
    db: ReadModelDatabase, crossings: Crossings
) -> None:
    async with db.engine.connect() as connection:
        crossings.start()
        transaction = await connection.begin()
        with deferred_writes():
            await connection.execute(insert(people).values(name="Farrukh"))
        await transaction.rollback()
        assert crossings.count == 0
    assert await names(db) == []


async def test_a_statement_after_writes_that_waited_sees_them(db: ReadModelDatabase) -> None:
    async with db.engine.begin() as connection:
        with deferred_writes():
            await connection.execute(insert(people).values(name="Gulnora"))
        seen = (await connection.execute(select(people.c.name))).scalars().all()
    assert seen == ["Gulnora"]
    assert await names(db) == ["Gulnora"]
