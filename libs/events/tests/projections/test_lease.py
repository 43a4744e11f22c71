from __future__ import annotations

from nats.aio.client import Client as NATS

from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.lease import Lease
from agora_events.store import EventStore

from ..counter import CounterOpened, Incremented
from .helpers import append, runner_for
from .model import counter_projection, fold, read_rows


async def test_a_lease_is_held_by_one_reader_until_released(db: ReadModelDatabase) -> None:
    first, second = Lease(db, "counters", "AGENDA"), Lease(db, "counters", "AGENDA")
    assert await first.acquire()
    assert not await second.acquire()
    await first.release()
    assert await second.acquire()
    await second.release()


async def test_a_second_replica_stands_by_and_takes_over_when_the_first_stops(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    first = runner_for(nats_client, db, [projection])
    second = runner_for(nats_client, db, [projection])
    await first.start()
    await second.start()
    log = await append(store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="x"))
    await first.wait_for(log[-1][0], stream="AGENDA")
    await second.wait_for(log[-1][0], stream="AGENDA")  # follows the stored checkpoint
    await first.stop()
    more = await append(store, Incremented(counter_id="a", tag="y"))
    await second.wait_for(more[-1][0], stream="AGENDA")
    (lag,) = await second.lag()
    await second.stop()
    assert lag.state == "running"
    assert await read_rows(db, projection) == fold(log + more)
