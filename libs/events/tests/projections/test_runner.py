from __future__ import annotations

from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY
from sqlalchemy import select

from agora_events.projections.applier import Applier
from agora_events.projections.bookkeeping import checkpoints
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.source import PullReader
from agora_events.store import EventStore

from ..counter import CounterOpened, Incremented, registry
from .helpers import FAST, append, running
from .model import BadgePrinted, counter_projection, fold, read_rows


async def stored_checkpoint(db: ReadModelDatabase, projection: str = "counters") -> int:
    async with db.session() as session:
        query = select(checkpoints.c.sequence).where(checkpoints.c.projection == projection)
        return int((await session.execute(query)).scalar_one())


async def test_applies_events_in_stream_order_and_checkpoints_them(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(
        store,
        CounterOpened(counter_id="a"),
        Incremented(counter_id="a", tag="x"),
        CounterOpened(counter_id="b"),
        Incremented(counter_id="a", tag="y"),
        Incremented(counter_id="b", tag="z"),
    )
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
    assert await read_rows(db, projection) == fold(log)
    assert await stored_checkpoint(db) == log[-1][0]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_reports_applied_events_and_lag_as_prometheus_metrics(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    labels = {"projection": "counters", "stream": "AGENDA"}
    before = sample("agora_projection_events_total", **labels)
    log = await append(
        store, CounterOpened(counter_id="m"), *(Incremented(counter_id="m", tag=t) for t in "abc")
    )
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
    assert sample("agora_projection_events_total", **labels) - before == 4
    assert sample("agora_projection_lag", **labels) == 0
    assert sample("agora_projection_batch_seconds_count", projection="counters") >= 1


async def test_a_restarted_runner_carries_on_from_its_checkpoint(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    first = await append(store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="1"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(first[-1][0], stream="AGENDA")
    second = await append(store, Incremented(counter_id="a", tag="2"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(second[-1][0], stream="AGENDA")
    assert await read_rows(db, projection) == fold(first + second)


async def test_events_at_or_below_the_checkpoint_are_no_ops(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(
        store, CounterOpened(counter_id="a"), *(Incremented(counter_id="a", tag=t) for t in "xyz")
    )
    applier = Applier(db, projection, "AGENDA", registry=registry)
    reader = await PullReader.open(nats_client, "AGENDA", ["agenda.counter.>"], after=0)
    deliveries = await reader.fetch(100, wait=None)
    await reader.close()
    first = await applier.apply(deliveries[:3])
    # Redelivered, overlapping, and replayed from the start: nothing applies twice.
    again = await applier.apply(deliveries[1:])
    replayed = await applier.apply(deliveries)
    assert (first.applied, again.applied, again.duplicates) == (3, 1, 2)
    assert (replayed.applied, replayed.duplicates) == (0, 4)
    assert await read_rows(db, projection) == fold(log)


async def test_a_projection_reading_two_streams_keeps_a_checkpoint_per_stream(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection(subjects=["agenda.counter.>", "registration.badge.>"])
    await db.prepare([projection])
    agenda = await append(
        store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="x")
    )
    registration = await append(store, BadgePrinted(badge_id="b1"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(agenda[-1][0], stream="AGENDA")
        await runner.wait_for(registration[-1][0], stream="REGISTRATION")
        lag = {entry.stream: entry for entry in await runner.lag()}
    assert (lag["AGENDA"].checkpoint, lag["AGENDA"].lag) == (2, 0)
    assert (lag["REGISTRATION"].checkpoint, lag["REGISTRATION"].lag) == (1, 0)
    rows = await read_rows(db, projection)
    assert [row[0] for row in rows["test_counters"]] == ["a", "badge-b1"]


async def test_events_of_types_without_a_handler_still_advance_the_checkpoint(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    only_opens = counter_projection("opens", prefix="opens")
    only_opens._handlers.pop(Incremented)  # a projection that ignores increments
    await db.prepare([projection, only_opens])
    log = await append(store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="x"))
    async with running(nats_client, db, [only_opens], FAST) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
    assert await stored_checkpoint(db, "opens") == log[-1][0]
    assert (await read_rows(db, only_opens))["opens_counter_tags"] == []
