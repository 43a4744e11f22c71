"""The runner's own tables, kept beside the read models in the same database.

* ``agora_checkpoints``: per projection and stream, the last stream sequence applied. It changes
  in the same transaction as the rows the batch changed.
* ``agora_dead_letters``: events a projection could not apply, with the raw message, so they
  can be retried without the event log, plus the later events of the same aggregate parked
  behind them.
* ``agora_discarded_letters``: dead letters an operator discarded, with who, when and why.
* ``agora_projections``: a fingerprint of each projection's DDL, subjects and version.
* ``agora_database``: this database's random id, part of its durable consumer names.
* ``agora_replicas``: on PostgreSQL, one row per service process using these read models,
  refreshed every few seconds (``heartbeat``), so that a release's schema no replica has used
  for a while can be told apart from one still serving (``agora read-models prune``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    BindParameter,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

bookkeeping = MetaData()

checkpoints = Table(
    "agora_checkpoints",
    bookkeeping,
    Column("projection", String(63), primary_key=True),
    Column("stream", String(63), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

dead_letters = Table(
    "agora_dead_letters",
    bookkeeping,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("projection", String(63), nullable=False),
    Column("stream", String(63), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("subject", Text, nullable=False),
    # "<context>.<aggregate>.<id>." — later events with this prefix wait behind this one.
    Column("aggregate", Text, nullable=False),
    Column("event_type", Text),
    Column("event_id", Text),
    # failed: the handler kept raising; undecodable: not a known, valid CloudEvent;
    # blocked: an earlier event of the same aggregate is parked.
    Column("reason", String(16), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("parked_at", DateTime, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("projection", "stream", "sequence", name="uq_agora_dead_letters_event"),
    Index("ix_agora_dead_letters_aggregate", "projection", "stream", "aggregate"),
)

discarded_letters = Table(
    "agora_discarded_letters",
    bookkeeping,
    # A dead letter an operator gave up on, and who, when and why: it is never applied.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("projection", String(63), nullable=False),
    Column("stream", String(63), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("subject", Text, nullable=False),
    Column("event_type", Text),
    Column("event_id", Text),
    Column("parked_reason", String(16), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("parked_at", DateTime, nullable=False),
    Column("discarded_at", DateTime, nullable=False),
    Column("discarded_by", Text, nullable=False),
    Column("why", Text, nullable=False),
)

projection_versions = Table(
    "agora_projections",
    bookkeeping,
    Column("projection", String(63), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("tables", JSON, nullable=False),
    Column("prepared_at", DateTime, nullable=False),
)

database_info = Table(
    "agora_database",
    bookkeeping,
    Column("key", String(32), primary_key=True),
    Column("value", Text, nullable=False),
)

replicas = Table(
    "agora_replicas",
    bookkeeping,
    # "<host>/<pid>": the pod's name in Kubernetes. A restarted container takes its row over.
    Column("instance", String(200), primary_key=True),
    Column("started_at", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("stopped_at", DateTime),  # set by a clean stop; None while running (or crashed)
)

BOOKKEEPING_TABLES = frozenset(bookkeeping.tables)


def utcnow() -> datetime:
    """Naive UTC, which both backends store the same way."""
    return datetime.now(UTC).replace(tzinfo=None)


# -- checkpoints ---------------------------------------------------------------------------


async def ensure_checkpoint(session: AsyncSession, projection: str, stream: str) -> None:
    key = (checkpoints.c.projection == projection) & (checkpoints.c.stream == stream)
    if (await session.execute(select(checkpoints.c.sequence).where(key))).first() is None:
        await session.execute(
            insert(checkpoints).values(
                projection=projection, stream=stream, sequence=0, updated_at=utcnow()
            )
        )


# The statements every projection batch runs, built once (building a statement and its
# cache key costs more than SQLite takes to run it); the names of their parameters are not
# column names, which an UPDATE's SET would claim.
_PROJECTION: BindParameter[str] = bindparam("b_projection")
_STREAM: BindParameter[str] = bindparam("b_stream")
_LOCK_CHECKPOINT = (
    select(checkpoints.c.sequence)
    .where((checkpoints.c.projection == _PROJECTION) & (checkpoints.c.stream == _STREAM))
    .with_for_update()
)
_SAVE_CHECKPOINT = (
    update(checkpoints)
    .where((checkpoints.c.projection == _PROJECTION) & (checkpoints.c.stream == _STREAM))
    .values(sequence=bindparam("b_sequence"), updated_at=bindparam("b_updated_at"))
)


async def lock_checkpoint(session: AsyncSession, projection: str, stream: str) -> int:
    """The checkpoint, locked until the transaction ends (PostgreSQL; SQLite holds the
    whole database's write lock already)."""
    row = await session.execute(_LOCK_CHECKPOINT, {"b_projection": projection, "b_stream": stream})
    sequence = row.scalar_one_or_none()
    if sequence is None:
        raise _no_checkpoint(projection, stream)
    return int(sequence)


_OPEN_BATCH = (
    select(
        checkpoints.c.sequence,
        exists()
        .where((dead_letters.c.projection == _PROJECTION) & (dead_letters.c.stream == _STREAM))
        .label("parked"),
    )
    .where((checkpoints.c.projection == _PROJECTION) & (checkpoints.c.stream == _STREAM))
    .with_for_update(of=checkpoints)
)


async def open_batch(session: AsyncSession, projection: str, stream: str) -> tuple[int, bool]:
    """``lock_checkpoint``, and whether any event of the projection on ``stream`` is parked,
    in one statement: a batch reads the parked aggregates only when there are some, which
    is seldom, and saves a round trip to the database on every other batch."""
    row = (
        await session.execute(_OPEN_BATCH, {"b_projection": projection, "b_stream": stream})
    ).first()
    if row is None:
        raise _no_checkpoint(projection, stream)
    return int(row[0]), bool(row[1])


def _no_checkpoint(projection: str, stream: str) -> LookupError:
    return LookupError(
        f"no checkpoint for projection {projection!r} on {stream}: run db.prepare() first"
    )


async def save_checkpoint(
    session: AsyncSession, projection: str, stream: str, sequence: int
) -> None:
    await session.execute(
        _SAVE_CHECKPOINT,
        {
            "b_projection": projection,
            "b_stream": stream,
            "b_sequence": sequence,
            "b_updated_at": utcnow(),
        },
    )


async def read_checkpoints(session: AsyncSession) -> dict[tuple[str, str], int]:
    rows = await session.execute(
        select(checkpoints.c.projection, checkpoints.c.stream, checkpoints.c.sequence)
    )
    return {(projection, stream): int(sequence) for projection, stream, sequence in rows}


# -- dead letters --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    projection: str
    stream: str
    sequence: int
    subject: str
    aggregate: str
    event_type: str | None
    event_id: str | None
    reason: str
    error: str
    attempts: int
    parked_at: datetime
    headers: dict[str, str]
    data: bytes

    @classmethod
    def from_row(cls, row: Any) -> DeadLetter:
        values = dict(row._mapping)
        values["data"] = bytes(values["data"])
        return cls(**values)


_BLOCKED = (
    select(dead_letters.c.aggregate, func.min(dead_letters.c.sequence))
    .where((dead_letters.c.projection == _PROJECTION) & (dead_letters.c.stream == _STREAM))
    .group_by(dead_letters.c.aggregate)
)


async def blocked_aggregates(session: AsyncSession, projection: str, stream: str) -> dict[str, int]:
    """Aggregate prefix → sequence of its first parked event."""
    rows = await session.execute(_BLOCKED, {"b_projection": projection, "b_stream": stream})
    return {aggregate: int(first) for aggregate, first in rows}


async def park(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(dead_letters).values(parked_at=utcnow(), **values))


async def load_dead_letters(
    session: AsyncSession, projection: str | None = None, stream: str | None = None
) -> list[DeadLetter]:
    query = select(dead_letters).order_by(
        dead_letters.c.projection, dead_letters.c.stream, dead_letters.c.sequence
    )
    if projection is not None:
        query = query.where(dead_letters.c.projection == projection)
    if stream is not None:
        query = query.where(dead_letters.c.stream == stream)
    return [DeadLetter.from_row(row) for row in await session.execute(query)]


async def forget_dead_letter(session: AsyncSession, letter_id: int) -> None:
    await session.execute(delete(dead_letters).where(dead_letters.c.id == letter_id))


@dataclass(frozen=True, slots=True)
class Discard:
    projection: str
    stream: str
    sequence: int
    subject: str
    event_type: str | None
    event_id: str | None
    parked_reason: str
    error: str
    attempts: int
    parked_at: datetime
    discarded_at: datetime
    discarded_by: str
    why: str


async def record_discard(session: AsyncSession, letter: DeadLetter, by: str, why: str) -> None:
    """Forget ``letter`` and record who gave up on it, when and why (the raw message stays
    in the log only)."""
    await session.execute(
        insert(discarded_letters).values(
            projection=letter.projection,
            stream=letter.stream,
            sequence=letter.sequence,
            subject=letter.subject,
            event_type=letter.event_type,
            event_id=letter.event_id,
            parked_reason=letter.reason,
            error=letter.error,
            attempts=letter.attempts,
            parked_at=letter.parked_at,
            discarded_at=utcnow(),
            discarded_by=by,
            why=why,
        )
    )
    await forget_dead_letter(session, letter.id)


async def load_discards(session: AsyncSession, projection: str | None = None) -> list[Discard]:
    query = select(*[c for c in discarded_letters.c if c.name != "id"]).order_by(
        discarded_letters.c.id
    )
    if projection is not None:
        query = query.where(discarded_letters.c.projection == projection)
    return [Discard(**dict(row._mapping)) for row in await session.execute(query)]


async def note_failed_retry(session: AsyncSession, letter_id: int, error: str) -> None:
    await session.execute(
        update(dead_letters)
        .where(dead_letters.c.id == letter_id)
        .values(error=error, attempts=dead_letters.c.attempts + 1)
    )


# -- database identity ---------------------------------------------------------------------


async def database_id(session: AsyncSession) -> str:
    """A random id given to this database when it was first prepared."""
    found = await session.execute(select(database_info.c.value).where(database_info.c.key == "id"))
    value = found.scalar_one_or_none()
    if value is None:
        value = uuid.uuid4().hex[:12]
        await session.execute(insert(database_info).values(key="id", value=value))
    return str(value)
