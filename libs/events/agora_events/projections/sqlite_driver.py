"""SQLAlchemy's aiosqlite adapter, with each statement sent to SQLite's thread in one hop.

aiosqlite runs sqlite3 on a thread of its own; every call crosses to it and back (a queue put,
a future, a wake-up of the event loop through its self-pipe). SQLAlchemy's adapter makes four
such crossings per statement: create a cursor, execute, fetch the rows, close the cursor. On a
read-your-writes flow (about a dozen statements) those crossings cost the event loop more than
SQLite takes to run the statements. This adapter does the four steps in one function on
aiosqlite's thread, so a statement is one crossing; what SQLAlchemy sees (rows, description,
rowcount, lastrowid, errors) is unchanged.

It leans on two private names of aiosqlite 0.22 (``Connection._execute``, which queues a
function for its thread, and ``Connection._conn``); every SQLite test of the suite runs
through it, so a release that changes them fails there, not in production.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

Outcome = tuple[Any, int, int | None, list[Any] | None]


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
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            description, rowcount, lastrowid, rows = await connection._execute(  # type: ignore[no-untyped-call]
                _run, connection._conn, operation, parameters, many
            )
        self._cursor = _Finished(description, rowcount, lastrowid)  # type: ignore[assignment]
        if rows is not None:
            self._rows = deque(rows)


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor  # type: ignore[assignment]  # (mypy reads the base's as an alias)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """Give it to ``create_async_engine(..., module=OneHopDBAPI())`` for ``sqlite+aiosqlite``."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        # SQLAlchemy's connect (creator, aiosqlite's daemon thread), rewrapped: once per
        # pooled connection, not per statement.
        adapted = super().connect(*arg, **kw)
        return _OneHopConnection(self, adapted._connection)
