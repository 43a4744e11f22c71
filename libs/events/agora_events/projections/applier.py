"""Apply a batch of one stream's events to one projection, exactly once.

One write transaction per batch: lock the checkpoint, skip what is at or below it, apply the
rest in order, move the checkpoint to the last sequence seen, commit. A crash before the commit
leaves nothing; a crash after it leaves nothing to redo, because redelivered events are at or
below the new checkpoint.

When a handler raises, the whole transaction rolls back and the batch is tried again. After
``max_attempts`` failures of the same event it is parked as a dead letter instead, with its
error, and every later event of the same aggregate (``<context>.<aggregate>.<id>.``) is parked
behind it in order, so that aggregate's rows stay at a consistent point of its history rather
than diverging. Other aggregates move on. Failures of the database itself (connection lost,
database locked) are not the event's fault: they propagate, for the caller to retry later.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from ..catalogue import EventRegistry
from .bookkeeping import blocked_aggregates, open_batch, park, save_checkpoint
from .delivery import Decoded, Delivery, decode_for
from .writebehind import QueuedWriteError

if TYPE_CHECKING:
    from .database import ReadModelDatabase
    from .definition import Projection

log = logging.getLogger("agora.projections")

# SQLite reports lock contention and I/O trouble as OperationalError, like a bad column name.
_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o", "unable to open", "readonly")


class CheckpointMovedError(Exception):
    """The stored checkpoint went back behind what this reader delivered (someone reset it);
    the reader must start again from the stored checkpoint."""

    def __init__(self, projection: str, stream: str, stored: int, expected: int) -> None:
        super().__init__(
            f"checkpoint of {projection} on {stream} is {stored}, behind {expected}: "
            "restarting from the stored checkpoint"
        )
        self.stored = stored


class BatchAbandonedError(Exception):
    """The batch was given up (the runner is stopping); it rolled back and comes again."""


class HandlerError(Exception):
    def __init__(self, decoded: Decoded, error: BaseException) -> None:
        delivery = decoded.delivery
        super().__init__(f"handler failed on {delivery.stream} #{delivery.sequence}: {error!r}")
        self.sequence = delivery.sequence
        self.error = error


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    checkpoint: int
    applied: int = 0
    ignored: int = 0
    parked: int = 0
    duplicates: int = 0


def is_infrastructure_error(error: BaseException) -> bool:
    """True when the database or the network failed, not the handler's logic."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, InterfaceError | DisconnectionError | OSError | asyncio.TimeoutError):
        return True
    if isinstance(error, OperationalError):
        message = str(error.orig).lower()
        is_sqlite = type(error.orig).__module__.startswith(("sqlite3", "aiosqlite"))
        return not is_sqlite or any(word in message for word in _SQLITE_TRANSIENT)
    return False


def describe(error: BaseException) -> str:
    """The error's last traceback lines: enough to fix it, short enough to list."""
    lines = traceback.format_exception(error)
    return "".join(lines[-3:]).strip()[-2000:]


class Applier:
    """Applies batches from one stream to one projection in one database."""

    def __init__(
        self,
        db: ReadModelDatabase,
        projection: Projection,
        stream: str,
        *,
        registry: EventRegistry,
        max_attempts: int = 3,
        retry_delay: float = 0.1,
        traced: bool = True,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.db = db
        self.projection = projection
        self.stream = stream
        self.registry = registry
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.traced = traced
        self.write_behind = projection.write_behind
        self._failures: dict[int, int] = {}
        self._poisoned: dict[int, str] = {}

    def decode(self, deliveries: Sequence[Delivery]) -> list[Decoded]:
        return [decode_for(self.projection, d, self.registry) for d in deliveries]

    async def apply(
        self,
        deliveries: Sequence[Delivery],
        *,
        expected: int | None = None,
        abandon: asyncio.Event | None = None,
    ) -> BatchOutcome:
        """Apply ``deliveries`` (in stream order) and commit them with the checkpoint.

        ``expected`` is the checkpoint the caller's reader started after; a stored checkpoint
        behind it raises CheckpointMovedError. Once ``abandon`` is set, the batch rolls back
        before its next event (BatchAbandonedError): stopping never cancels a task in the
        middle of a database call, which can leave a connection holding SQLite's lock."""
        return await self.apply_decoded(self.decode(deliveries), expected, abandon)

    async def apply_decoded(
        self,
        decoded: list[Decoded],
        expected: int | None = None,
        abandon: asyncio.Event | None = None,
    ) -> BatchOutcome:
        """``apply`` for deliveries already decoded with ``decode``."""
        fast = self.write_behind
        while True:
            try:
                outcome = await self._transaction(decoded, expected, fast, abandon)
            except HandlerError as failure:
                if fast:
                    fast = self._slow_down(failure.error)
                else:
                    await self._count_failure(failure)
                continue
            except (CheckpointMovedError, BatchAbandonedError):
                raise
            except Exception as exc:
                if not fast or is_infrastructure_error(exc):
                    raise
                fast = self._slow_down(exc)  # a queued write failed: find out which, exactly
                continue
            self._failures.clear()
            self._poisoned.clear()
            return outcome

    def _slow_down(self, error: BaseException) -> bool:
        """Leave write-behind for this batch (for good if the handler needs write results).
        Failures are only counted without it, where they point at the right event."""
        if isinstance(error, QueuedWriteError):
            log.warning(
                "projection %s uses the result of a write; it now runs without write-behind "
                "(declare it with write_behind=False to say so upfront)",
                self.projection.name,
            )
            self.write_behind = False
        return False

    async def _count_failure(self, failure: HandlerError) -> None:
        attempts = self._failures.get(failure.sequence, 0) + 1
        self._failures[failure.sequence] = attempts
        log.warning(
            "projection %s failed on %s #%d (attempt %d of %d): %r",
            self.projection.name,
            self.stream,
            failure.sequence,
            attempts,
            self.max_attempts,
            failure.error,
        )
        if attempts >= self.max_attempts:
            self._poisoned[failure.sequence] = describe(failure.error)
        elif self.retry_delay:
            await asyncio.sleep(self.retry_delay * 2 ** (attempts - 1))  # backoff, not sync

    async def _transaction(
        self,
        batch: list[Decoded],
        expected: int | None,
        write_behind: bool,
        abandon: asyncio.Event | None,
    ) -> BatchOutcome:
        name = self.projection.name
        async with self.db.writer() as session:
            session.write_behind = write_behind
            checkpoint, parked = await open_batch(session, name, self.stream)
            if expected is not None and checkpoint < expected:
                raise CheckpointMovedError(name, self.stream, checkpoint, expected)
            blocked = await blocked_aggregates(session, name, self.stream) if parked else {}
            counts = {"applied": 0, "ignored": 0, "parked": 0, "duplicates": 0}
            last = checkpoint
            for item in batch:
                if abandon is not None and abandon.is_set():
                    raise BatchAbandonedError
                sequence = item.delivery.sequence
                if sequence <= checkpoint:
                    counts["duplicates"] += 1
                    continue
                last = sequence
                counts[await self._apply_one(session, item, blocked)] += 1
            if last > checkpoint:
                await save_checkpoint(session, name, self.stream, last)
        return BatchOutcome(checkpoint=last, **counts)

    async def _apply_one(
        self, session: AsyncSession, item: Decoded, blocked: dict[str, int]
    ) -> str:
        delivery = item.delivery
        aggregate = delivery.aggregate
        if aggregate in blocked:
            error = f"waits behind sequence {blocked[aggregate]} of the same aggregate"
            await self._park(session, item, "blocked", error, attempts=0)
            return "parked"
        problem = item.problem or self._poisoned.get(delivery.sequence)
        if problem is not None:
            reason = "undecodable" if item.problem else "failed"
            attempts = 0 if item.problem else self.max_attempts
            await self._park(session, item, reason, problem, attempts=attempts)
            blocked[aggregate] = delivery.sequence
            return "parked"
        if item.event is None or item.context is None:
            return "ignored"
        try:
            await self.projection.apply(session, item.event, item.context, traced=self.traced)
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            raise HandlerError(item, exc) from exc
        return "applied"

    async def _park(
        self, session: AsyncSession, item: Decoded, reason: str, error: str, *, attempts: int
    ) -> None:
        delivery = item.delivery
        log.error(
            "projection %s parked %s #%d (%s): %s",
            self.projection.name,
            delivery.stream,
            delivery.sequence,
            reason,
            error.splitlines()[-1] if error else "",
        )
        await park(
            session,
            projection=self.projection.name,
            stream=delivery.stream,
            sequence=delivery.sequence,
            subject=delivery.subject,
            aggregate=delivery.aggregate,
            event_type=delivery.event_type,
            event_id=delivery.event_id,
            reason=reason,
            error=error,
            attempts=attempts,
            headers=dict(delivery.headers),
            data=delivery.data,
        )
