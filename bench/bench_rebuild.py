"""Rebuild throughput: the projection runner's replay against raw nats-py, in one run.

    .venv/bin/python bench/bench_rebuild.py [--events 100000] [--postgres URL]

Starts its own nats-server, appends ``--events`` counter events (real CloudEvents headers,
1,000 aggregates), then measures:

* raw: nats-py ``pull_subscribe`` + ``fetch`` + ``ack`` of every message, nothing else;
* SQLite / PostgreSQL: ``agora_events.projections.rebuild.replay`` from sequence 0 into a fresh
  database, of a projection writing one row change per event, in two handler styles:
  ``per_event`` builds its SQLAlchemy statement for each event (the usual style);
  ``prepared`` builds it once with ``bindparam()`` and executes it with values.

PostgreSQL is skipped with a message when it does not answer (default URL: the local test
server). Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.catalogue import DomainEvent, EventRegistry
from agora_events.nats_server import EmbeddedNats
from agora_events.projections import EventContext, Projection
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.progress import StderrProgress
from agora_events.projections.rebuild import replay
from agora_events.store import EventStore, Metadata
from agora_events.streams import ensure_streams

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
AGGREGATES = 1000

registry = EventRegistry()


@registry.event("agenda", "counter", "opened", id_field="counter_id")
class CounterOpened(DomainEvent):
    counter_id: str


@registry.event("agenda", "counter", "incremented", id_field="counter_id")
class Incremented(DomainEvent):
    counter_id: str
    tag: str


def counter_table(metadata: MetaData) -> Table:
    return Table(
        "bench_counters",
        metadata,
        Column("counter_id", String(64), primary_key=True),
        Column("events", Integer, nullable=False),
        Column("last_tag", String(64)),
    )


# Style 1, the usual one: a statement built for each event.
counters = counter_table(MetaData())
per_event = Projection("per_event", subjects=["agenda.counter.>"], metadata=counters.metadata)


@per_event.on(CounterOpened)
async def _opened(db: AsyncSession, event: CounterOpened, ctx: EventContext) -> None:
    await db.execute(insert(counters).values(counter_id=event.counter_id, events=1))


@per_event.on(Incremented)
async def _incremented(db: AsyncSession, event: Incremented, ctx: EventContext) -> None:
    await db.execute(
        update(counters)
        .where(counters.c.counter_id == event.counter_id)
        .values(events=counters.c.events + 1, last_tag=event.tag)
    )


# Style 2, for hot projections: statements built once, executed with values.
prepared_counters = counter_table(MetaData())
prepared = Projection(
    "prepared", subjects=["agenda.counter.>"], metadata=prepared_counters.metadata
)
OPEN = insert(prepared_counters).values(counter_id=bindparam("id"), events=1)
INCREMENT = (
    update(prepared_counters)
    .where(prepared_counters.c.counter_id == bindparam("id"))
    .values(events=prepared_counters.c.events + 1, last_tag=bindparam("tag"))
)


@prepared.on(CounterOpened)
async def _opened_prepared(db: AsyncSession, event: CounterOpened, ctx: EventContext) -> None:
    await db.execute(OPEN, {"id": event.counter_id})


@prepared.on(Incremented)
async def _incremented_prepared(db: AsyncSession, event: Incremented, ctx: EventContext) -> None:
    await db.execute(INCREMENT, {"id": event.counter_id, "tag": event.tag})


def event_at(index: int) -> DomainEvent:
    """The first 1,000 events open the counters, the rest increment them in turn."""
    if index < AGGREGATES:
        return CounterOpened(counter_id=f"c{index}")
    return Incremented(counter_id=f"c{index % AGGREGATES}", tag=f"t{index}")


async def publish(nc: NATS, count: int) -> None:
    store = EventStore(nc, registry=registry, source="/bench")
    for start in range(0, count, 5000):
        chunk = [event_at(index) for index in range(start, min(count, start + 5000))]
        envelopes = store.envelopes_for(
            chunk, base_count=0, idempotency_key=None, metadata=Metadata(actor="bench")
        )
        for event, envelope in zip(chunk, envelopes, strict=True):
            await nc.publish(event.subject, envelope.data, headers=envelope.to_headers())
    # Acknowledged, and the server stores one connection's messages in order: when this
    # answers, every event before it is stored too.
    ack = await nc.jetstream().publish("agenda.bench.end.marker", b"{}")
    if ack.seq != count + 1:
        raise SystemExit(f"the stream holds {ack.seq - 1} events, expected {count}")


async def raw_fetch_and_ack(nc: NATS, count: int, batch: int) -> float:
    js = nc.jetstream()
    subscription = await js.pull_subscribe(
        "agenda.counter.>",
        durable=f"raw-{uuid.uuid4().hex[:8]}",
        stream="AGENDA",
        config=ConsumerConfig(max_ack_pending=-1),
    )
    started = time.perf_counter()
    seen = 0
    while seen < count:
        messages = await subscription.fetch(batch, timeout=5)
        for message in messages:
            await message.ack()
        seen += len(messages)
    elapsed = time.perf_counter() - started
    await subscription.unsubscribe()
    return count / elapsed


async def rebuild_rate(
    nc: NATS, db: ReadModelDatabase, projection: Projection, count: int, batch: int
) -> float:
    reports = await replay(
        nc, db, [projection], registry=registry, progress=StderrProgress(), batch_size=batch
    )
    (report,) = reports
    if report.events != count:
        raise SystemExit(f"replayed {report.events} events, expected {count}")
    return report.rate


async def postgres_database(url: str) -> ReadModelDatabase | None:
    db = ReadModelDatabase(url, schema=f"bench_{uuid.uuid4().hex[:8]}")
    try:
        async with db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # the benchmark goes on without PostgreSQL
        print(f"PostgreSQL skipped: {url} does not answer ({type(exc).__name__})")
        await db.dispose()
        return None
    return db


async def drop_schema(db: ReadModelDatabase) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))
    await db.dispose()


async def main(count: int, batch: int, postgres: str) -> None:
    with tempfile.TemporaryDirectory(prefix="agora-bench-") as home:
        server = EmbeddedNats(Path(home) / "nats").start()
        try:
            nc = await nats.connect(server.url)
            await ensure_streams(nc.jetstream())
            started = time.perf_counter()
            await publish(nc, count)
            print(f"appended {count} events in {time.perf_counter() - started:.1f} s")
            results = {"raw nats-py fetch+ack": await raw_fetch_and_ack(nc, count, batch)}
            for projection in (per_event, prepared):
                sqlite = ReadModelDatabase(f"sqlite+aiosqlite:///{home}/{projection.name}.db")
                rate = await rebuild_rate(nc, sqlite, projection, count, batch)
                results[f"SQLite, {projection.name}"] = rate
                await sqlite.dispose()
            for projection in (per_event, prepared):
                pg = await postgres_database(postgres)
                if pg is None:
                    break
                try:
                    rate = await rebuild_rate(nc, pg, projection, count, batch)
                    results[f"PostgreSQL, {projection.name}"] = rate
                finally:
                    await drop_schema(pg)
            await nc.close()
        finally:
            server.stop()
    report(results, count, batch)


def report(results: dict[str, float], count: int, batch: int) -> None:
    raw = results["raw nats-py fetch+ack"]
    print(
        f"\n{count} events, batch {batch}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"{'':28}{'events/s':>12}{'vs raw':>9}")
    for name, rate in results.items():
        print(f"{name:28}{rate:>12,.0f}{rate / raw:>9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to append and replay")
    parser.add_argument("--batch", type=int, default=2000, help="fetch and transaction batch size")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AGORA_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="PostgreSQL URL (default: $AGORA_TEST_POSTGRES_URL or the local test server)",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.batch, arguments.postgres))
