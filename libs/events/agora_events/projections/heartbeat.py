"""Each service process on PostgreSQL says, every few seconds, that it still uses its read
models: one row per process in ``agora_replicas`` of its schema (instance, started, last
seen, stopped). ``agora read-models list`` shows it; ``agora read-models prune`` drops an old
release's schema only when no replica has been seen in it for a while.

The first beat is written before the read models are prepared, under the lock ``prepare``
takes, and creates the schema and the table if need be: a prune (which takes the same lock
and looks again before it drops) either sees the new replica or has dropped the schema
before the replica prepares it afresh. A beat is one short UPDATE of the process's own row;
a failed beat is logged and tried again at the next one. SQLite needs none: a file holds one
release's read models, and nothing prunes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .bookkeeping import replicas, utcnow

if TYPE_CHECKING:
    from .database import ReadModelDatabase

log = logging.getLogger("agora.projections")

HEARTBEAT_SECONDS = 30.0
"""How often a running replica refreshes its ``last_seen``."""
REPLICA_RETENTION = timedelta(days=7)
"""Rows of replicas not seen for this long are removed when another replica starts."""
PREPARE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('agora.prepare'))"
"""The transaction lock ``schema.prepare`` takes: starts and prunes of schemas serialise on it."""


def instance_name() -> str:
    """``<host>/<pid>``: the pod's name and the process in it."""
    return f"{socket.gethostname()}/{os.getpid()}"[:200]


class Heartbeat:
    """Keeps this process's row in ``agora_replicas`` fresh while it runs."""

    def __init__(
        self,
        db: ReadModelDatabase,
        *,
        instance: str | None = None,
        interval: float = HEARTBEAT_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self.instance = instance or instance_name()
        self.interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def active(self) -> bool:
        """SQLite keeps no heartbeat."""
        return not self._db.is_sqlite

    async def start(self) -> None:
        """Record this replica (creating the schema and table if need be), then refresh it
        every ``interval`` seconds in the background."""
        if not self.active or self._task is not None:
            return
        now = self._clock()
        async with self._db.engine.begin() as connection:
            await connection.execute(text(PREPARE_LOCK))
            if self._db.schema is not None:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self._db.schema}"'))
            await connection.run_sync(lambda c: replicas.create(c, checkfirst=True))
            await connection.execute(
                delete(replicas).where(replicas.c.last_seen < now - REPLICA_RETENTION)
            )
            values = {"started_at": now, "last_seen": now, "stopped_at": None}
            if not await self._update(connection, **values):
                await connection.execute(insert(replicas).values(instance=self.instance, **values))
        self._task = asyncio.create_task(self._beat_forever(), name="read-model heartbeat")

    async def beat(self) -> None:
        """Refresh ``last_seen`` once (recording the replica again if its row is gone)."""
        now = self._clock()
        async with self._db.engine.begin() as connection:
            if not await self._update(connection, last_seen=now, stopped_at=None):
                await connection.execute(
                    insert(replicas).values(instance=self.instance, started_at=now, last_seen=now)
                )

    async def stop(self) -> None:
        """Stop refreshing and record a clean stop (best effort: a database that is gone
        leaves the row as it was, which reads the same after the grace)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        now = self._clock()
        try:
            async with self._db.engine.begin() as connection:
                await self._update(connection, last_seen=now, stopped_at=now)
        except Exception as exc:
            log.warning("could not record this replica's stop: %s", exc)

    async def _update(self, connection: AsyncConnection, **values: object) -> bool:
        result = await connection.execute(
            update(replicas).where(replicas.c.instance == self.instance).values(**values)
        )
        return bool(result.rowcount)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)  # the heartbeat's period, not a synchronisation
            try:
                await self.beat()
            except Exception as exc:  # the database away for a moment: the next beat tells
                if not self._failing:
                    log.warning("read-model heartbeat failed: %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("read-model heartbeat recorded again")
                self._failing = False
