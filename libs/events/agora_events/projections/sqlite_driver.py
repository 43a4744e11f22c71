"""SQLAlchemy's aiosqlite adapter, with each statement sent to SQLite's thread in one hop.

aiosqlite runs sqlite3 on a thread of its own; every call crosses to it and back (a queue put,
a future, a wake-up of the event loop through its self-pipe). SQLAlchemy's adapter makes four
such crossings per statement: create a cursor, execute, fetch the rows, close the cursor. On a
read-your-writes flow (about a dozen statements) those crossings cost the event loop more than
SQLite takes to run the statements. This adapter does the four steps in one function on
aiosqlite's thread, so a statement is one crossing; what SQLAlchemy sees (rows, description,
rowcount, lastrowid, errors) is unchanged.

Three more crossings are saved where nothing can tell them apart from SQLite's side:

* ``BEGIN`` (and ``BEGIN IMMEDIATE``) waits for the statement after it and goes with it;
* inside ``deferred_writes()``, writes wait for the commit and go with it (the write-behind
  session sends its queue there, whose results nobody can read: see writebehind);
* a rollback with no transaction open on SQLite (the pool's reset after a commit) is skipped.

An error of a statement that waited is raised by the crossing it went with, as the same
sqlite3 error; a rollback drops whatever still waits.

It leans on two private names of aiosqlite 0.22 (``Connection._execute``, which queues a
function for its thread, and ``Connection._conn``); every SQLite test of the suite runs
through it, so a release that changes them fails there, not in production.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

Outcome = tuple[Any, int, int | None, list[Any] | None]
Statement = tuple[Any, Any, bool]  # operation, parameters, many

_BEGINS = frozenset({"BEGIN", "BEGIN IMMEDIATE"})
_DEFERRING_WRITES: ContextVar[bool] = ContextVar("agora_deferring_writes", default=False)
_NOTHING: Outcome = (None, -1, None, None)


@contextmanager
def deferred_writes() -> Iterator[None]:
    """Statements sent in this block wait for the commit (or the next statement) and go to
    SQLite's thread with it. Their rowcount and lastrowid are unknown (-1, None): only for
    writes whose results nobody reads."""
    token = _DEFERRING_WRITES.set(True)
    try:
        yield
    finally:
        _DEFERRING_WRITES.reset(token)


class _Finished:
    """What a statement left for SQLAlchemy to read once its sqlite3 cursor was closed."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, description: Any, rowcount: int, lastrowid: int | None) -> None:
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.arraysize = 1

    def close(self) -> None:
        """Closed already, on SQLite's thread."""


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """On aiosqlite's thread: the statement from cursor to close, in one go."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_all(connection: sqlite3.Connection, statements: list[Statement]) -> Outcome:
    """On aiosqlite's thread: each statement in order; the outcome is the last one's."""
    outcome = _NOTHING
    for operation, parameters, many in statements:
        outcome = _run(connection, operation, parameters, many)
    return outcome


def _run_and_commit(connection: sqlite3.Connection, statements: list[Statement]) -> None:
    _run_all(connection, statements)
    connection.commit()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False  # nothing left open to close after a statement

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = _Finished(None, -1, None)  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._send(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._send(operation, seq_of_parameters, many=True)

    async def _send(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapted: _OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        statement = (operation, parameters, many)
        if _DEFERRING_WRITES.get() or (operation in _BEGINS and not parameters):
            adapted.waiting.append(statement)
            self._cursor = _Finished(None, -1, None)  # type: ignore[assignment]
            self._rows = deque()
            return
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with adapted._execute_mutex:
            statements = adapted.take_waiting()
            statements.append(statement)
            description, rowcount, lastrowid, rows = await connection._execute(  # type: ignore[no-untyped-call]
                _run_all, connection._conn, statements
            )
        self._cursor = _Finished(description, rowcount, lastrowid)  # type: ignore[assignment]
        if rows is not None:
            self._rows = deque(rows)


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("waiting",)
    _cursor_cls = OneHopCursor  # type: ignore[assignment]  # (mypy reads the base's as an alias)

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.waiting: list[Statement] = []  # sent with the next crossing

    def take_waiting(self) -> list[Statement]:
        waiting, self.waiting = self.waiting, []
        return waiting

    def commit(self) -> None:
        if not self.waiting:
            super().commit()
            return
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            await_(connection._execute(_run_and_commit, connection._conn, self.take_waiting()))  # type: ignore[no-untyped-call]
        except Exception as error:
            self._handle_exception(error)

    def rollback(self) -> None:
        # What waits never reached SQLite; what did is undone only if a transaction is open.
        self.waiting.clear()
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        if connection._connection is not None and connection._conn.in_transaction:
            super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """Give it to ``create_async_engine(..., module=OneHopDBAPI())`` for ``sqlite+aiosqlite``."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        # SQLAlchemy's connect (creator, aiosqlite's daemon thread), rewrapped: once per
        # pooled connection, not per statement.
        adapted = super().connect(*arg, **kw)
        return _OneHopConnection(self, adapted._connection)
