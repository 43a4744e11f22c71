"""A read model of the test counters, and the same model folded in memory from the events.

``counters`` keeps one row per counter and ``counter_tags`` one row per increment, numbered
by position, so an event applied twice or skipped shows up as a wrong count, a duplicate
position or a missing one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    CursorResult,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.catalogue import DomainEvent
from agora_events.projections import EventContext, Projection
from agora_events.projections.database import ReadModelDatabase

from ..counter import CounterOpened, Incremented, registry

Rows = dict[str, list[tuple[Any, ...]]]


@registry.event("registration", "badge", "printed", id_field="badge_id")
class BadgePrinted(DomainEvent):
    """An event of a second stream, for projections reading two."""

    badge_id: str


@dataclass
class Switches:
    """Test-controlled behaviour of the handlers."""

    broken_tags: set[str] = field(default_factory=set)  # raise on these tags
    block_tag: str | None = None  # on this tag: announce, then wait for ``release``
    on_block: Callable[[int], None] = lambda sequence: None
    release: asyncio.Event = field(default_factory=asyncio.Event)
    reads_write_results: bool = False  # use a write's rowcount, as some handlers do


def counter_tables(prefix: str = "test") -> tuple[MetaData, Table, Table]:
    metadata = MetaData()
    counters = Table(
        f"{prefix}_counters",
        metadata,
        Column("counter_id", String(64), primary_key=True),
        Column("events", Integer, nullable=False),
        Column("last_tag", String(64)),
        Column("last_sequence", BigInteger, nullable=False),
    )
    tags = Table(
        f"{prefix}_counter_tags",
        metadata,
        Column("counter_id", String(64), primary_key=True),
        Column("position", Integer, primary_key=True),
        Column("tag", String(64), nullable=False),
        Column("sequence", BigInteger, nullable=False),
    )
    return metadata, counters, tags


def counter_projection(
    name: str = "counters",
    *,
    switches: Switches | None = None,
    subjects: Iterable[str] = ("agenda.counter.>",),
    prefix: str = "test",
    version: int = 1,
) -> Projection:
    metadata, counters, tags = counter_tables(prefix)
    projection = Projection(name, subjects=list(subjects), metadata=metadata, version=version)
    switches = switches or Switches()

    @projection.on(CounterOpened)
    async def _opened(db: AsyncSession, event: CounterOpened, ctx: EventContext) -> None:
        await db.execute(
            insert(counters).values(
                counter_id=event.counter_id, events=1, last_tag=None, last_sequence=ctx.sequence
            )
        )

    @projection.on(Incremented)
    async def _incremented(db: AsyncSession, event: Incremented, ctx: EventContext) -> None:
        if event.tag in switches.broken_tags:
            raise ValueError(f"cannot count tag {event.tag!r}")
        if switches.block_tag is not None and event.tag == switches.block_tag:
            switches.on_block(ctx.sequence)
            await switches.release.wait()
        key = counters.c.counter_id == event.counter_id
        seen = (await db.execute(select(counters.c.events).where(key))).scalar_one()
        await db.execute(
            insert(tags).values(
                counter_id=event.counter_id, position=seen, tag=event.tag, sequence=ctx.sequence
            )
        )
        result = await db.execute(
            update(counters)
            .where(key)
            .values(events=counters.c.events + 1, last_tag=event.tag, last_sequence=ctx.sequence)
        )
        if switches.reads_write_results:
            updated = cast(CursorResult[Any], result).rowcount
            if updated != 1:
                raise AssertionError(f"updated {updated} counters")

    @projection.on(BadgePrinted)
    async def _badge(db: AsyncSession, event: BadgePrinted, ctx: EventContext) -> None:
        await db.execute(
            insert(counters).values(
                counter_id=f"badge-{event.badge_id}", events=1, last_sequence=ctx.sequence
            )
        )

    return projection


async def read_rows(db: ReadModelDatabase, projection: Projection) -> Rows:
    """Every row of the projection's tables, sorted, for comparisons."""
    async with db.session() as session:
        return {
            table.name: sorted(tuple(row) for row in await session.execute(select(table)))
            for table in projection.tables
        }


def fold(events: Iterable[tuple[int, DomainEvent]], prefix: str = "test") -> Rows:
    """The read model computed in memory from (sequence, event) pairs."""
    counters: dict[str, list[Any]] = {}
    tags: list[tuple[Any, ...]] = []
    for sequence, event in events:
        if isinstance(event, CounterOpened):
            counters[event.counter_id] = [event.counter_id, 1, None, sequence]
        elif isinstance(event, Incremented):
            row = counters[event.counter_id]
            tags.append((event.counter_id, row[1], event.tag, sequence))
            row[1] += 1
            row[2], row[3] = event.tag, sequence
    return {
        f"{prefix}_counters": sorted(tuple(row) for row in counters.values()),
        f"{prefix}_counter_tags": sorted(tags),
    }
