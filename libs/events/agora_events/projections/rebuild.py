"""Replaying the log into read models: rebuild-and-swap, and point-in-time replay.

* ``replay`` rebuilds projections from sequence 0 into a separate database, optionally only
  up to a sequence or a moment (``Until``), for audits: "what did the agenda look like at T".
  The moment is the time the log stored each event; the replay stops before the first event
  stored after it.
* ``rebuild`` replays one projection into a scratch copy (a sibling SQLite file, or a scratch
  schema in the same PostgreSQL database) while the live read model keeps serving, then swaps
  it in (see ``swap``). It works from the service's process (``ProjectionRunner.rebuild``) and
  from another process (``agora replay``) alike: the swap coordinates through the
  checkpoint lock, not through the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from nats.aio.client import Client as NatsClient
from sqlalchemy import text

from ..catalogue import EventRegistry, catalogue
from .applier import Applier
from .bookkeeping import read_checkpoints
from .database import ReadModelDatabase
from .delivery import Decoded, Delivery
from .progress import Progress, SilentProgress
from .source import PullReader, last_sequence, next_matching
from .swap import swap_in

if TYPE_CHECKING:
    from .definition import Projection

REPLAY_BATCH = 2000


class UntilError(ValueError):
    """An --until that is neither a sequence nor a timestamp with a time zone."""


@dataclass(frozen=True, slots=True)
class Until:
    """Where a point-in-time replay stops: after a sequence, or at a moment (inclusive)."""

    sequence: int | None = None
    time: datetime | None = None

    def __post_init__(self) -> None:
        if (self.sequence is None) == (self.time is None):
            raise UntilError("give either a sequence or a time")
        if self.time is not None and self.time.tzinfo is None:
            raise UntilError("the time needs a UTC offset, e.g. 2025-06-24T12:00:00+05:00")

    def admits(self, delivery: Delivery) -> bool:
        if self.sequence is not None:
            return delivery.sequence <= self.sequence
        assert self.time is not None
        return delivery.stored_at <= self.time

    def __str__(self) -> str:
        return f"sequence {self.sequence}" if self.time is None else self.time.isoformat()


def parse_until(value: str) -> Until:
    """``1234`` → a sequence; ``2025-06-24T12:00:00Z`` or ``…+05:00`` → a moment."""
    stripped = value.strip()
    if stripped.isdigit():
        return Until(sequence=int(stripped))
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UntilError(
            f"cannot read {value!r} as a stream sequence (e.g. 1234) or an ISO 8601 time with "
            "a time zone (e.g. 2025-06-24T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise UntilError(f"{value!r} has no time zone: add Z or an offset such as +05:00")
    return Until(time=moment.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class ReplayReport:
    projection: str
    stream: str
    checkpoint: int
    events: int
    parked: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class Replayer:
    """Catches one projection up on one stream, from its checkpoint in ``db``."""

    nc: NatsClient
    db: ReadModelDatabase
    projection: Projection
    registry: EventRegistry = catalogue
    batch_size: int = REPLAY_BATCH
    progress: Progress = field(default_factory=SilentProgress)
    max_attempts: int = 3

    async def catch_up(self, stream: str, upto: int, until: Until | None = None) -> ReplayReport:
        subjects = self.projection.streams[stream]
        applier = Applier(
            self.db,
            self.projection,
            stream,
            registry=self.registry,
            max_attempts=self.max_attempts,
            retry_delay=0,
            # A replay re-reads history: spans hung under long-finished requests would only
            # add noise to their traces (and a tenth to the replay's time).
            traced=False,
        )
        checkpoint = await self._checkpoint(stream)
        started = time.perf_counter()
        events = parked = 0
        self.progress.begin(f"{self.projection.name} {stream}", checkpoint, upto)
        reader = await PullReader.open(self.nc, stream, subjects, after=checkpoint)
        # The next batch is fetched while this one is written: the database works in its own
        # thread (aiosqlite) or server (asyncpg) meanwhile.
        fetching = asyncio.ensure_future(self._next(reader, applier, upto, until))
        try:
            while checkpoint < upto:
                fetched, wanted = await fetching
                if not fetched and await self._drained(stream, checkpoint, upto):
                    break
                fetching = asyncio.ensure_future(self._next(reader, applier, upto, until))
                if wanted:
                    outcome = await applier.apply_decoded(wanted)
                    checkpoint = outcome.checkpoint
                    events += len(wanted)
                    parked += outcome.parked
                    self.progress.advance(checkpoint, len(wanted))
                if len(wanted) < fetched:
                    break  # the rest lies beyond the point in time
        finally:
            fetching.cancel()
            await asyncio.wait({fetching})  # never raises; a fetch error surfaced above
            await reader.close()
            self.progress.end()
        seconds = time.perf_counter() - started
        return ReplayReport(self.projection.name, stream, checkpoint, events, parked, seconds)

    async def _next(
        self, reader: PullReader, applier: Applier, upto: int, until: Until | None
    ) -> tuple[int, list[Decoded]]:
        """How many deliveries came, and the decoded ones up to the point in time."""
        deliveries = await reader.fetch(self.batch_size, wait=None)
        wanted = [d for d in deliveries if d.sequence <= upto]
        if until is not None:
            wanted = [d for d in wanted if until.admits(d)]
        return len(deliveries), applier.decode(wanted)

    async def _checkpoint(self, stream: str) -> int:
        async with self.db.session() as session:
            return (await read_checkpoints(session)).get((self.projection.name, stream), 0)

    async def _drained(self, stream: str, checkpoint: int, upto: int) -> bool:
        """An empty fetch means done only if no matching event is left up to ``upto``."""
        subjects = self.projection.streams[stream]
        following = await next_matching(self.nc, stream, subjects, checkpoint)
        return following is None or following > upto


async def replay(
    nc: NatsClient,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    *,
    until: Until | None = None,
    registry: EventRegistry = catalogue,
    progress: Progress | None = None,
    batch_size: int = REPLAY_BATCH,
) -> list[ReplayReport]:
    """Rebuild ``projections`` from zero into ``db``, up to ``until`` (default: now)."""
    await db.prepare(projections, reset=True)
    reports = []
    for projection in projections:
        replayer = Replayer(nc, db, projection, registry, batch_size, progress or SilentProgress())
        for stream in projection.streams:
            upto = await last_sequence(nc, stream)
            if until is not None and until.sequence is not None:
                upto = min(upto, until.sequence)
            reports.append(await replayer.catch_up(stream, upto, until))
    return reports


@dataclass(frozen=True, slots=True)
class RebuildReport:
    projection: str
    replayed: list[ReplayReport]
    checkpoints: dict[str, int]
    seconds: float


async def rebuild(
    nc: NatsClient,
    live: ReadModelDatabase,
    projection: Projection,
    *,
    registry: EventRegistry = catalogue,
    progress: Progress | None = None,
    batch_size: int = REPLAY_BATCH,
) -> RebuildReport:
    """Rebuild ``projection`` from zero beside the live one, then swap it in."""
    started = time.perf_counter()
    scratch = scratch_database(live, projection.name)
    try:
        reports = await replay(
            nc, scratch, [projection], registry=registry, progress=progress, batch_size=batch_size
        )
        replayer = Replayer(nc, scratch, projection, registry, batch_size)

        async def catch_up(stream: str, sequence: int) -> None:
            await replayer.catch_up(stream, sequence)

        checkpoints = await swap_in(live, scratch, projection, catch_up)
    finally:
        await drop_scratch(scratch)
    return RebuildReport(projection.name, reports, checkpoints, time.perf_counter() - started)


def scratch_database(live: ReadModelDatabase, projection: str) -> ReadModelDatabase:
    """Where a rebuild of ``projection`` is built: next to the live data, never in it."""
    if live.is_sqlite:
        path = live.sqlite_path
        url = live.url.set(database=str(path.with_name(f"{path.name}.rebuild-{projection}")))
        return ReadModelDatabase(url, durable=False)
    base = re.sub(r"[^a-z0-9_]", "_", f"{live.schema or 'agora'}_rebuild_{projection}")
    return ReadModelDatabase(live.url, schema=base[:63])


async def drop_scratch(scratch: ReadModelDatabase) -> None:
    if scratch.is_sqlite:
        await scratch.dispose()
        path = scratch.sqlite_path
        for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        return
    async with scratch.engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA IF EXISTS "{scratch.schema}" CASCADE'))
    await scratch.dispose()
