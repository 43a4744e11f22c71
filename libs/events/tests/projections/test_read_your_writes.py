from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from nats.aio.client import Client as NATS
from sqlalchemy import select

from agora_events.http import install_error_handlers
from agora_events.projections import runner as runner_module
from agora_events.projections.bookkeeping import read_checkpoints
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.runner import (
    ProjectionRunner,
    ReadModelBehind,
    RunnerOptions,
    _Loop,
)
from agora_events.projections.source import next_matching
from agora_events.store import EventStore

from ..counter import CounterOpened, Incremented, registry
from .helpers import FAST, append, runner_for, running
from .model import Switches, counter_projection, counter_tables


async def test_a_query_waiting_for_its_write_sees_it(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    _, counters, _ = counter_tables()
    async with running(nats_client, db, [projection]) as runner:
        ((sequence, _),) = await append(store, CounterOpened(counter_id="mine"))
        await runner.wait_for(sequence, stream="AGENDA", timeout=2.0)
        async with db.session() as session:
            found = await session.scalar(select(counters.c.counter_id))
    assert found == "mine"


async def test_a_read_model_that_does_not_catch_up_in_time_raises_a_clear_error(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    switches = Switches(block_tag="stuck")
    projection = counter_projection(switches=switches)
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        ((stuck, _),) = await append(store, Incremented(counter_id="a", tag="stuck"))
        with pytest.raises(ReadModelBehind) as behind:
            await runner.wait_for(stuck, stream="AGENDA", timeout=0.2)
        switches.release.set()
    error = behind.value
    assert (error.projection, error.stream, error.wanted, error.reached) == (
        "counters",
        "AGENDA",
        stuck,
        log[-1][0],
    )
    assert str(error).startswith(
        f"read model 'counters' has applied AGENDA up to sequence {log[-1][0]}, not yet {stuck}"
    )


async def test_waiting_skips_sequences_of_events_the_projection_does_not_read(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        other = await nats_client.jetstream().publish("agenda.room.r1.added", b"{}")
        await runner.wait_for(other.seq, stream="AGENDA", timeout=2.0)


async def test_a_replica_whose_runner_is_not_running_follows_the_stored_checkpoint(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    # Never started, like a replica on standby; its own stream (agenda) is the default.
    replica = runner_for(nats_client, db, [projection], prefix="agenda")
    async with running(nats_client, db, [projection]):
        ((sequence, _),) = await append(store, CounterOpened(counter_id="a"))
        await replica.wait_for(sequence, timeout=2.0)


async def test_waiting_on_a_stream_no_projection_reads_is_refused(
    db: ReadModelDatabase, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    runner = runner_for(nats_client, db, [projection])
    with pytest.raises(LookupError, match="reads DECLARATIONS"):
        await runner.wait_for(1, stream="DECLARATIONS")


async def test_lag_reports_checkpoint_last_sequence_and_distance(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="x"))
    runner = runner_for(nats_client, db, [projection])
    (before,) = await runner.lag()
    assert (before.checkpoint, before.last_sequence, before.lag) == (0, 2, 2)
    async with running(nats_client, db, [projection]) as live:
        await live.wait_for(log[-1][0], stream="AGENDA")
        (after,) = await live.lag()
    assert (after.projection, after.stream, after.checkpoint, after.lag) == (
        "counters",
        "AGENDA",
        2,
        0,
    )
    assert after.state == "running"


def test_read_model_behind_is_answered_with_503_and_retry_after() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/sessions")
    async def sessions() -> None:
        raise ReadModelBehind("programme", "AGENDA", wanted=42, reached=41, waited=2.0)

    response = TestClient(app).get("/sessions")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "ReadModelBehind"
    assert "not yet 42" in response.json()["reason"]


async def test_stopping_a_runner_whose_handler_hangs_rolls_the_batch_back(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    switches = Switches(block_tag="hang")
    projection = counter_projection(switches=switches)
    await db.prepare([projection])
    blocked = asyncio.Event()
    switches.on_block = lambda sequence: blocked.set()
    log = await append(
        store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="hang")
    )
    runner = runner_for(nats_client, db, [projection], replace(FAST, stop_grace=0.1))
    await runner.start()
    await blocked.wait()
    await runner.stop()
    (lag,) = await runner.lag()
    assert lag.checkpoint == 0 and lag.last_sequence == log[-1][0]


async def test_queries_waiting_at_once_share_one_look_at_the_stream(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"))
    looks: list[int] = []

    async def counted(*args: Any) -> int | None:
        looks.append(args[-1])
        return await next_matching(*args)

    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        other = await nats_client.jetstream().publish("agenda.room.r1.added", b"{}")
        monkeypatch.setattr("agora_events.projections.runner.next_matching", counted)
        await asyncio.gather(
            *(runner.wait_for(other.seq, stream="AGENDA", timeout=2.0) for _ in range(20))
        )
    assert 1 <= len(looks) <= 2  # one in flight, and at most one sent after it


async def test_a_query_waiting_for_an_event_its_projection_holds_asks_the_stream_nothing(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    switches = Switches(block_tag="held")
    held_in_handler = asyncio.Event()
    switches.on_block = lambda sequence: held_in_handler.set()
    projection = counter_projection(switches=switches)
    await db.prepare([projection])
    _, counters, _ = counter_tables()
    looks: list[int] = []
    waiting_for_the_loop = asyncio.Event()

    async def counted(*args: Any) -> int | None:
        looks.append(args[-1])
        return await next_matching(*args)

    original = _Loop._wait_advanced

    async def announced(self: _Loop, sequence: int, remaining: float) -> None:
        waiting_for_the_loop.set()
        await original(self, sequence, remaining)

    async with running(nats_client, db, [projection]) as runner:
        ((opened, _),) = await append(store, CounterOpened(counter_id="a"))
        await runner.wait_for(opened, stream="AGENDA")
        monkeypatch.setattr("agora_events.projections.runner.next_matching", counted)
        monkeypatch.setattr(_Loop, "_wait_advanced", announced)
        ((held, _),) = await append(store, Incremented(counter_id="a", tag="held"))
        await held_in_handler.wait()  # delivered to the projection, not yet applied
        query = asyncio.ensure_future(runner.wait_for(held, stream="AGENDA", timeout=10.0))
        await waiting_for_the_loop.wait()
        switches.release.set()
        await query
        async with db.session() as session:
            last_tag = await session.scalar(select(counters.c.last_tag))
    assert looks == []  # the loop had the event in hand: nothing to ask the stream
    assert last_tag == "held"


# -- a replica that does not project ------------------------------------------------------

# Reading the store so rarely that only an announcement can end a wait within a test's timeout.
NO_POLLING = replace(FAST, poll_interval=3600.0)


def follower(
    nc: NATS, db: ReadModelDatabase, options: RunnerOptions = NO_POLLING
) -> ProjectionRunner:
    return ProjectionRunner(
        nc,
        db,
        [counter_projection()],
        consumer_prefix="test",
        registry=registry,
        options=options,
        project=False,
    )


@pytest.fixture
def store_reads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each read of the stored checkpoints a runner makes from now on (clear it to start
    counting later)."""
    reads: list[object] = []

    async def counted(session: object) -> dict[tuple[str, str], int]:
        reads.append(session)
        return await read_checkpoints(session)  # type: ignore[arg-type]

    monkeypatch.setattr(runner_module, "read_checkpoints", counted)
    return reads


async def test_a_replica_that_does_not_project_sees_a_write_by_the_announced_checkpoint(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS, store_reads: list[object]
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    async with follower(nats_client, db) as replica, running(nats_client, db, [projection]) as it:
        ((first, _),) = await append(store, CounterOpened(counter_id="first"))
        await it.wait_for(first, stream="AGENDA", timeout=5.0)  # its loop is past its start
        store_reads.clear()
        ((sequence, _),) = await append(store, CounterOpened(counter_id="mine"))
        await replica.wait_for(sequence, stream="AGENDA", timeout=5.0)
        assert store_reads == []  # the announcement ended the wait, not a read of the store
        assert [lag.state for lag in await replica.lag()] == ["standby"]
    _, counters, _ = counter_tables()
    async with db.session() as session:
        found = set(await session.scalars(select(counters.c.counter_id)))
    assert found == {"first", "mine"}


async def test_a_replica_that_does_not_project_never_takes_the_free_lease(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    async with follower(nats_client, db, FAST) as replica:
        ((sequence, _),) = await append(store, CounterOpened(counter_id="a"))
        with pytest.raises(ReadModelBehind):
            await replica.wait_for(sequence, stream="AGENDA", timeout=0.3)
        # The lease is still free: a replica that projects takes it and catches up.
        async with running(nats_client, db, [projection]) as projecting:
            await projecting.wait_for(sequence, stream="AGENDA", timeout=5.0)
            await replica.wait_for(sequence, stream="AGENDA", timeout=5.0)


async def test_a_lost_announcement_is_made_up_for_by_reading_the_stored_checkpoint(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    async with follower(nats_client, db, FAST) as replica:
        assert replica._subscription is not None
        await replica._subscription.unsubscribe()  # every announcement from now on is lost
        async with running(nats_client, db, [projection]):
            ((sequence, _),) = await append(store, CounterOpened(counter_id="a"))
            await replica.wait_for(sequence, stream="AGENDA", timeout=5.0)


async def test_an_announcement_that_is_not_a_sequence_is_ignored(
    db: ReadModelDatabase,
    store: EventStore,
    nats_client: NATS,
    store_reads: list[object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    caplog.set_level(logging.WARNING, logger="agora.projections")
    async with follower(nats_client, db) as replica, running(nats_client, db, [projection]) as it:
        ((first, _),) = await append(store, CounterOpened(counter_id="first"))
        await it.wait_for(first, stream="AGENDA", timeout=5.0)
        ((subject, loop),) = replica._announced.items()
        # On the connection the projecting runner announces on: heard before its next one.
        await nats_client.publish(subject, b"soon")
        await nats_client.publish(subject.rsplit(".", 1)[0] + ".NOWHERE", b"99")
        store_reads.clear()
        ((sequence, _),) = await append(store, CounterOpened(counter_id="a"))
        await replica.wait_for(sequence, stream="AGENDA", timeout=5.0)
        assert store_reads == []  # the listener outlived the garbage and heard the next one
        assert loop.position == sequence  # the subject naming no loop moved nothing
    assert "ignored checkpoint announcement b'soon'" in caplog.text
