"""Property: whatever the batching, restarts, crashes and redeliveries, the live read model
equals both the fold of the log and a clean rebuild."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS

from agora_events.catalogue import DomainEvent
from agora_events.projections.applier import Applier
from agora_events.projections.bookkeeping import read_checkpoints
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.rebuild import replay
from agora_events.projections.source import PullReader
from agora_events.store import EventStore
from agora_events.testing.pytest_plugin import reset_streams

from ..counter import CounterOpened, Incremented, registry
from .conftest import NewDatabase
from .helpers import FAST, append, runner_for
from .model import counter_projection, fold, read_rows

# One step of a scenario: append some events, then disturb the runner.
appends = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from("xyz")), min_size=1, max_size=6
)
disturbances = st.sampled_from(["none", "restart", "crash", "redeliver"])
scenarios = st.lists(st.tuples(appends, disturbances), min_size=1, max_size=5)


def as_events(pairs: list[tuple[str, str]], opened: set[str]) -> list[DomainEvent]:
    """The first event of a counter opens it; the later ones increment it."""
    events: list[DomainEvent] = []
    for counter, tag in pairs:
        if counter in opened:
            events.append(Incremented(counter_id=counter, tag=tag))
        else:
            opened.add(counter)
            events.append(CounterOpened(counter_id=counter))
    return events


async def redeliver(nc: NATS, db: ReadModelDatabase, start_fraction: float) -> None:
    """Deliver an already-applied stretch of the log again, as JetStream would after a lost
    acknowledgement: from at or below the checkpoint, onwards."""
    async with db.session() as session:
        checkpoint = (await read_checkpoints(session)).get(("counters", "AGENDA"), 0)
    start = int(start_fraction * checkpoint)
    reader = await PullReader.open(nc, "AGENDA", ["agenda.counter.>"], after=start)
    try:
        deliveries = await reader.fetch(1000, wait=None)
    finally:
        await reader.close()
    applier = Applier(db, counter_projection(), "AGENDA", registry=registry)
    await applier.apply(deliveries)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    scenario=scenarios,
    batch_size=st.sampled_from([1, 2, 7, 500]),
    fraction=st.floats(min_value=0, max_value=1),
)
async def test_live_application_with_restarts_and_redeliveries_equals_a_clean_rebuild(
    scenario: list[tuple[list[tuple[str, str]], str]],
    batch_size: int,
    fraction: float,
    new_database: NewDatabase,
    nats_client: NATS,
) -> None:
    await reset_streams(nats_client)
    store = EventStore(nats_client, registry=registry, source="/test")
    db = await new_database()
    projection = counter_projection()
    await db.prepare([projection])
    options = replace(FAST, batch_size=batch_size)
    opened: set[str] = set()
    log = []
    runner = runner_for(nats_client, db, [projection], options)
    await runner.start()
    try:
        for pairs, disturbance in scenario:
            log += await append(store, *as_events(pairs, opened))
            if disturbance == "restart":  # a stop between batches
                await runner.wait_for(log[-1][0], stream="AGENDA")
            if disturbance in ("restart", "crash"):  # "crash": whatever batch is under way
                await runner.stop()  # rolls back, as a crash would
                runner = runner_for(nats_client, db, [projection], options)
                await runner.start()
            elif disturbance == "redeliver":
                await redeliver(nats_client, db, fraction)
        await runner.wait_for(log[-1][0], stream="AGENDA", timeout=10)
    finally:
        await runner.stop()

    clean = await new_database()
    await replay(nats_client, clean, [projection], registry=registry)
    live = await read_rows(db, projection)
    assert live == fold(log)
    assert live == await read_rows(clean, projection)
    await db.dispose()
    await clean.dispose()
