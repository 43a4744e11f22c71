"""Only one reader at a time per database, projection and stream.

Replicas of a service sharing one PostgreSQL database would otherwise share one durable
consumer and each receive part of the stream. The lease is a PostgreSQL session advisory lock
(held by a dedicated connection) or, for SQLite, an ``flock`` on a file beside the database.
Both vanish with the process that held them, so a crashed reader never blocks its successor.
A replica that does not get the lease stands by and tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from .database import ReadModelDatabase


class Lease:
    def __init__(self, db: ReadModelDatabase, projection: str, stream: str) -> None:
        self._db = db
        self._key = f"agora:{db.schema or ''}:{projection}:{stream}"
        self._projection = projection
        self._stream = stream
        self._fd: int | None = None
        self._connection: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self._connection is not None

    async def acquire(self) -> bool:
        """Take the lease if it is free; never waits."""
        if self.held:
            return True
        if self._db.is_sqlite:
            return self._acquire_file()
        return await self._acquire_advisory()

    def _acquire_file(self) -> bool:
        path = f"{self._db.sqlite_path}-lease-{self._projection}-{self._stream}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def _acquire_advisory(self) -> bool:
        connection = await self._db.engine.connect()
        try:
            taken = await connection.scalar(
                text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": self._key}
            )
            await connection.commit()
        except BaseException:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        return True

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock
        connection, self._connection = self._connection, None
        if connection is not None:
            # The pool keeps connections open, so unlock explicitly; a connection that cannot
            # unlock is discarded, which releases the lock on the server's side.
            try:
                await connection.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": self._key}
                )
                await connection.commit()
            except Exception:
                with contextlib.suppress(Exception):
                    await connection.invalidate()
            await connection.close()
