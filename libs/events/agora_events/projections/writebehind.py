"""Write-behind for projection handlers: many small writes, few round trips.

A handler typically issues one or two INSERT/UPDATE/DELETE statements per event. Sent one at
a time, every statement costs a round trip to the database (a thread hop for aiosqlite, a
network round trip for asyncpg), which caps a rebuild at a few thousand events per second.

The runner's session therefore queues plain Core writes instead of sending them. Before any
other statement (a SELECT, above all) and before the commit, it sends the queue in order,
turning each run of statements of the same shape (same SQL, different values) into one
``executemany``. Statement order is kept, and a read always sees every earlier write, so the
outcome is the same as sending each statement at once.

A hot projection can go further: build each statement once, with ``bindparam()`` for what
varies, and execute it with a dict of values (``await db.execute(STATEMENT, {...})``). Those
writes are queued without even analysing the statement, which makes them nearly free.

What a queued write cannot give is its result (``rowcount`` and so on): the stand-in returned
raises QueuedWriteError when used. The runner then replays the batch without write-behind and
keeps this projection in that mode (``Projection(write_behind=False)`` chooses it upfront).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from sqlalchemy import Delete, Insert, Result, Update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import BindParameter

from .sqlite_driver import deferred_writes


class QueuedWriteError(RuntimeError):
    """A handler used the result of a write that the runner had queued."""


class _QueuedResult:
    """Stands in for the Result of a queued write."""

    def __getattr__(self, name: str) -> NoReturn:
        raise QueuedWriteError(
            f"the result of a queued write has no {name!r}: the runner sends writes with the "
            "batch; read rows back with a SELECT, or declare the projection "
            "with write_behind=False"
        )


_QUEUED = _QueuedResult()


@dataclass(frozen=True, slots=True)
class _Write:
    shape: Any  # equal shapes, equal SQL: the cache key without values, or the statement's id
    statement: Insert | Update | Delete
    binds: tuple[BindParameter[Any], ...] = ()
    params: Mapping[str, Any] | None = None  # values of a statement built once


def _plain_write(statement: object) -> Insert | Update | Delete | None:
    """A plain Core INSERT/UPDATE/DELETE, whose meaning executemany keeps."""
    if not isinstance(statement, Insert | Update | Delete):
        return None
    # Internals read here, and only here: RETURNING, a multi-row VALUES, or an ORM entity
    # as target would each change what executemany means.
    if statement._returning or getattr(statement, "_multi_values", ()):
        return None
    if statement._propagate_attrs:
        return None
    return statement


def _queueable_with(statement: object, params: Mapping[str, Any]) -> _Write | None:
    """A statement built once, executed with these values."""
    write = _plain_write(statement)
    if write is None:
        return None
    # The statement stays referenced by the queue, so its id is not reused meanwhile.
    return _Write((id(write), tuple(params)), write, params=params)


def _queueable(statement: object) -> _Write | None:
    """A statement with its values inside, or None."""
    write = _plain_write(statement)
    if write is None:
        return None
    key = write._generate_cache_key()
    if key is None:
        return None
    binds = tuple(key.bindparams)
    if any(bind.expanding or bind.literal_execute or bind.required for bind in binds):
        return None
    return _Write(key.key, write, binds)


class WriteBehindSession(AsyncSession):
    """An AsyncSession that can queue plain Core writes (``write_behind = True``)."""

    write_behind = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: list[_Write] = []

    async def execute(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.write_behind and not kwargs and self._orm_is_clean():
            if params is None:
                write = _queueable(statement)
            elif isinstance(params, Mapping):
                write = _queueable_with(statement, params)
            else:
                write = None  # already an executemany
            if write is not None:
                self._queue.append(write)
                return cast(Result[Any], _QUEUED)
        await self.flush_writes()
        return await super().execute(statement, params, **kwargs)

    def _orm_is_clean(self) -> bool:
        # Pending ORM changes are flushed inside the next execute; queueing a write now would
        # send it after them instead of before.
        return not (self.new or self.deleted or self.dirty)

    async def flush_writes(self, *, commit_follows: bool = False) -> None:
        """Send every queued write, in order, grouping runs of the same shape.

        ``commit_follows``: nothing else is sent before the commit, so with SQLite the writes
        wait for it and cross to SQLite's thread with it (see sqlite_driver)."""
        queue, self._queue = self._queue, []
        if not queue:
            return
        connection = await super().connection()  # opened (and set up) before any write waits
        with deferred_writes() if commit_follows else contextlib.nullcontext():
            start = 0
            while start < len(queue):
                end = start + 1
                while end < len(queue) and queue[end].shape == queue[start].shape:
                    end += 1
                await self._send(connection, queue[start:end])
                start = end

    @staticmethod
    async def _send(connection: AsyncConnection, run: list[_Write]) -> None:
        first = run[0]
        if first.params is not None:
            rows = [dict(write.params or {}) for write in run]
            await connection.execute(first.statement, rows if len(rows) > 1 else rows[0])
            return
        if len(run) == 1:
            await connection.execute(first.statement)
            return
        # Equal shapes list their values in the same order; name them after the first's.
        names = [bind.key for bind in first.binds]
        rows = [
            {name: bind.effective_value for name, bind in zip(names, write.binds, strict=True)}
            for write in run
        ]
        await connection.execute(first.statement, rows)

    def discard_writes(self) -> None:
        self._queue.clear()

    # Everything else that talks to the database sends the queue first.

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        await self.flush_writes()
        return await super().scalar(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        await self.flush_writes()
        return await super().get(*args, **kwargs)

    async def get_one(self, *args: Any, **kwargs: Any) -> Any:
        await self.flush_writes()
        return await super().get_one(*args, **kwargs)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        await self.flush_writes()
        return await super().stream(*args, **kwargs)

    async def refresh(self, *args: Any, **kwargs: Any) -> None:
        await self.flush_writes()
        await super().refresh(*args, **kwargs)

    async def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        await self.flush_writes()
        return await super().run_sync(*args, **kwargs)

    async def merge(self, *args: Any, **kwargs: Any) -> Any:
        await self.flush_writes()
        return await super().merge(*args, **kwargs)

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        await self.flush_writes()
        await super().flush(*args, **kwargs)

    async def connection(self, *args: Any, **kwargs: Any) -> Any:
        await self.flush_writes()
        return await super().connection(*args, **kwargs)

    async def commit(self) -> None:
        await self.flush_writes()
        await super().commit()

    async def rollback(self) -> None:
        self.discard_writes()
        await super().rollback()
