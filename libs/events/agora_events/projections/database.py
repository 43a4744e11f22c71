"""One read-model database, chosen by URL: SQLite (aiosqlite, WAL) or PostgreSQL (asyncpg).

Queries use ``db.session()``, or ``db.connect()`` without the ORM session. The projection
runner writes through ``db.writer()``: one transaction that holds the database's write lock
from its first statement, so checkpoints, dead letters and read-model rows change together
and writers never interleave.

* SQLite: the driver's own transaction handling is switched off and the runner issues
  ``BEGIN IMMEDIATE`` itself (SQLAlchemy's documented recipe); in-process writers also queue
  on an asyncio lock so they do not spin on ``SQLITE_BUSY``. WAL lets queries read while a
  batch is being written.
* PostgreSQL: the runner locks its checkpoint row (``SELECT … FOR UPDATE``). ``schema=``
  places every table of this database in one schema (through ``search_path``), which is how
  tests and rebuilds get a private namespace inside one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .sqlite_driver import OneHopDBAPI
from .writebehind import WriteBehindSession

if TYPE_CHECKING:
    from .definition import Projection
    from .schema import Preparation

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_IMMEDIATE = "agora_immediate"


class DatabaseConfigError(ValueError):
    """A database URL or option this module cannot work with."""


class ReadModelDatabase:
    """An AsyncEngine plus the conventions every read model relies on."""

    def __init__(self, url: str | URL, *, schema: str | None = None, durable: bool = True) -> None:
        self.url = make_url(url)
        self.schema = schema
        self.durable = durable
        self.backend = _backend(self.url)
        if schema is not None and not SCHEMA_NAME.match(schema):
            raise DatabaseConfigError(f"schema {schema!r} must be a lower-case SQL identifier")
        if schema is not None and self.backend != "postgresql":
            raise DatabaseConfigError("schema= is for PostgreSQL; give SQLite another file")
        self.engine = self._create_engine()
        # The writers' own few connections: under a crowd of queries, a projection waiting in
        # the queries' pool falls behind, and every read-your-writes query then waits longer.
        self._write_engine = self._create_engine(pool_size=2, max_overflow=4)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writers = async_sessionmaker(
            self._write_engine.execution_options(**{_IMMEDIATE: True}),
            class_=WriteBehindSession,
            expire_on_commit=False,
        )
        self._write_lock = asyncio.Lock()

    # -- engine ----------------------------------------------------------------------------

    def _create_engine(self, **pool: int) -> AsyncEngine:
        if self.backend == "sqlite":
            path = self.sqlite_path
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(
                self.url, connect_args={"timeout": 60}, module=OneHopDBAPI(), **pool
            )
            _configure_sqlite(engine, durable=self.durable)
            return engine
        connect_args: dict[str, Any] = {}
        if self.schema is not None:
            # Unqualified names (including in a handler's text() SQL) resolve in the schema.
            connect_args["server_settings"] = {"search_path": self.schema}
        return create_async_engine(self.url, connect_args=connect_args, pool_pre_ping=True, **pool)

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def sqlite_path(self) -> Path:
        if not self.is_sqlite or not self.url.database:
            raise DatabaseConfigError(f"{self.display} is not a SQLite file")
        return Path(self.url.database)

    @property
    def display(self) -> str:
        """The URL without its password, plus the schema, for messages and logs."""
        shown = self.url.render_as_string(hide_password=True)
        return f"{shown} (schema {self.schema})" if self.schema else shown

    def __repr__(self) -> str:
        return f"ReadModelDatabase({self.display!r})"

    # -- sessions --------------------------------------------------------------------------

    def session(self) -> AsyncSession:
        """A session for queries: ``async with db.session() as s: ...``."""
        return self._sessions()

    def connect(self) -> AsyncConnection:
        """A Core connection for queries, lighter than a session: ``async with
        db.connect() as c: ...``; its statements share one read transaction."""
        return self.engine.connect()

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[WriteBehindSession]:
        """A session inside a write transaction, committed when the block exits cleanly.

        Its writes go out at once unless ``session.write_behind`` is set (see writebehind)."""
        lock = self._write_lock if self.is_sqlite else contextlib.nullcontext()
        async with lock:
            session = self._writers()
            try:
                async with session.begin():
                    yield session
                    await session.flush_writes(commit_follows=True)
            except BaseException:
                # Even when the task is cancelled (again) meanwhile: a connection left inside
                # its transaction would hold SQLite's write lock for good.
                await asyncio.shield(_discard(session))
                raise
            await session.close()

    # -- lifecycle -------------------------------------------------------------------------

    async def prepare(
        self, projections: Sequence[Projection], *, reset: bool = False
    ) -> list[Preparation]:
        """Create or upgrade the projections' tables and the bookkeeping tables.

        A projection whose table DDL, subjects or ``version`` changed since the last run has
        its tables recreated empty and its checkpoints set to zero, so the runner rebuilds it
        from the log; ``reset=True`` does that to every projection given. The list says what
        happened to each, and why."""
        from .schema import prepare

        return await prepare(self, projections, reset=reset)

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self._write_engine.dispose()


async def _discard(session: WriteBehindSession) -> None:
    session.discard_writes()
    try:
        await session.rollback()
        await session.close()
    except Exception:
        await session.invalidate()  # closes the connection, which ends its transaction


def _backend(url: URL) -> str:
    name = url.get_backend_name()
    driver = url.get_driver_name()
    if name == "sqlite":
        if driver != "aiosqlite":
            raise DatabaseConfigError("use sqlite+aiosqlite:///path/to/file.db for SQLite")
        if not url.database or url.database == ":memory:":
            raise DatabaseConfigError(
                "an in-memory SQLite database cannot be shared by the runner and queries: "
                "give a file, e.g. sqlite+aiosqlite:///.agora/agenda.db"
            )
        return "sqlite"
    if name == "postgresql":
        if driver != "asyncpg":
            raise DatabaseConfigError("use postgresql+asyncpg://… for PostgreSQL")
        return "postgresql"
    raise DatabaseConfigError(f"unsupported database {name!r}: use SQLite or PostgreSQL")


def _configure_sqlite(engine: AsyncEngine, *, durable: bool) -> None:
    # With WAL, synchronous=NORMAL loses at most the last commits on power loss, never
    # consistency; a scratch database for a rebuild does not need even that.
    synchronous = "NORMAL" if durable else "OFF"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={synchronous}",
            "PRAGMA foreign_keys=ON",
            "PRAGMA temp_store=MEMORY",
            "PRAGMA cache_size=-32000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
