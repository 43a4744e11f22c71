from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import pytest
from nats.aio.client import Client as NATS
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Column, MetaData, String, func, select, update

from agora_events.projections import Projection
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.progress import StderrProgress
from agora_events.projections.rebuild import Until, UntilError, parse_until, rebuild, replay
from agora_events.store import EventStore

from ..counter import CounterOpened, Incremented, registry
from .conftest import NewDatabase
from .helpers import append, running
from .model import counter_projection, counter_tables, fold, read_rows


async def test_a_rebuild_swaps_in_a_fresh_read_model_while_queries_keep_answering(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    _, counters, tags = counter_tables()
    log = await append(
        store,
        CounterOpened(counter_id="a"),
        *(Incremented(counter_id="a", tag=str(i)) for i in range(20)),
    )
    observed: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def query_until_done() -> None:
        while not done.is_set():
            async with db.session() as session:
                total = await session.scalar(select(func.sum(counters.c.events)))
                rows = await session.scalar(select(func.count()).select_from(tags))
            observed.append((int(total or 0), int(rows or 0)))
            await asyncio.sleep(0)  # let the rebuild run between two queries

    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        async with db.writer() as session:  # the live model drifted from the log somehow
            await session.execute(update(counters).values(events=999))
        querying = asyncio.create_task(query_until_done())
        report = await runner.rebuild("counters")
        done.set()
        await querying
        after = await append(store, Incremented(counter_id="a", tag="after"))
        await runner.wait_for(after[-1][0], stream="AGENDA")
    assert report.checkpoints == {"AGENDA": log[-1][0]}
    assert await read_rows(db, projection) == fold(log + after)
    # Every query saw either the old rows or the new ones, never a table half copied.
    assert observed and set(observed) <= {(999, 20), (21, 20)}


async def test_a_rebuild_from_another_process_is_swapped_into_the_running_service(
    db: ReadModelDatabase, new_database: NewDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="x"))
    _, counters, _ = counter_tables()
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        async with db.writer() as session:
            await session.execute(update(counters).values(last_tag="drifted"))
        # What `agora replay` does: its own connection to the same database.
        other = ReadModelDatabase(db.url, schema=db.schema)
        try:
            await rebuild(nats_client, other, projection, registry=registry)
        finally:
            await other.dispose()
        more = await append(store, Incremented(counter_id="a", tag="y"))
        await runner.wait_for(more[-1][0], stream="AGENDA")
    assert await read_rows(db, projection) == fold(log + more)


async def test_point_in_time_replay_by_sequence_shows_the_state_then_not_now(
    db: ReadModelDatabase, new_database: NewDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(
        store,
        CounterOpened(counter_id="a"),
        *(Incremented(counter_id="a", tag=str(i)) for i in range(6)),
    )
    audit = await new_database()
    (report,) = await replay(
        nats_client, audit, [projection], until=Until(sequence=log[3][0]), registry=registry
    )
    assert (report.checkpoint, report.events) == (log[3][0], 4)
    assert await read_rows(audit, projection) == fold(log[:4])


async def test_a_live_run_traces_each_event_and_a_replay_of_history_does_not(
    db: ReadModelDatabase,
    new_database: NewDatabase,
    store: EventStore,
    nats_client: NATS,
    recorded_spans: InMemorySpanExporter,
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="t"), Incremented(counter_id="t", tag="x"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")

    def projected() -> list[str]:
        spans = recorded_spans.get_finished_spans()
        return [span.name for span in spans if span.name.startswith("project ")]

    live = projected()
    assert live == [
        "project counters agora.agenda.counter.opened.v1",
        "project counters agora.agenda.counter.incremented.v1",
    ]
    (report,) = await replay(nats_client, await new_database(), [projection], registry=registry)
    assert report.events == 2
    assert projected() == live


async def test_point_in_time_replay_by_time_stops_before_events_stored_later(
    new_database: NewDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    log = await append(store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="x"))
    stored = await nats_client.jetstream().get_msg("AGENDA", log[-1][0])
    assert stored.time is not None
    later = await append(store, Incremented(counter_id="a", tag="y"))
    audit = await new_database()
    await replay(nats_client, audit, [projection], until=Until(time=stored.time), registry=registry)
    assert await read_rows(audit, projection) == fold(log)
    earlier = Until(time=stored.time - timedelta(days=1))
    await replay(nats_client, audit, [projection], until=earlier, registry=registry)
    assert await read_rows(audit, projection) == fold([])
    await replay(nats_client, audit, [projection], registry=registry)
    assert await read_rows(audit, projection) == fold(log + later)


async def test_a_changed_table_definition_rebuilds_the_projection_from_zero(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"), Incremented(counter_id="a", tag="x"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
    # The next release adds a column; it starts as a new process, with a new engine.
    changed = counter_projection()
    counters = next(table for table in changed.tables if table.name == "test_counters")
    counters.append_column(Column("note", String(20)))
    upgraded = ReadModelDatabase(db.url, schema=db.schema)
    try:
        (preparation,) = await upgraded.prepare([changed])
        assert (preparation.action, preparation.reason) == (
            "reset",
            "its tables, subjects or version changed",
        )
        assert await read_rows(upgraded, changed) == {"test_counters": [], "test_counter_tags": []}
        async with running(nats_client, upgraded, [changed]) as runner:
            await runner.wait_for(log[-1][0], stream="AGENDA")
        rows = await read_rows(upgraded, changed)
    finally:
        await upgraded.dispose()
    assert rows["test_counters"] == [("a", 2, "x", log[-1][0], None)]


async def test_a_raised_version_rebuilds_and_an_unchanged_projection_is_kept(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    log = await append(store, CounterOpened(counter_id="a"))
    await db.prepare([projection])
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
    assert [p.action for p in await db.prepare([projection])] == ["unchanged"]
    assert await read_rows(db, projection) == fold(log)
    assert [p.action for p in await db.prepare([counter_projection(version=2)])] == ["reset"]
    assert await read_rows(db, projection) == fold([])


def test_projections_sharing_their_tables_are_refused() -> None:
    shared = MetaData()
    first = Projection("first", subjects=["agenda.>"], metadata=shared)
    second = Projection("second", subjects=["agenda.>"], metadata=shared)
    from agora_events.projections.schema import check_ownership

    with pytest.raises(ValueError, match="share one MetaData"):
        check_ownership([first, second])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234", "sequence 1234"),
        ("2025-06-24T12:00:00Z", "2025-06-24T12:00:00+00:00"),
        ("2025-06-24T17:00:00+05:00", "2025-06-24T12:00:00+00:00"),
    ],
)
def test_until_reads_a_sequence_or_a_zoned_time(text: str, expected: str) -> None:
    assert str(parse_until(text)) == expected


@pytest.mark.parametrize("text", ["yesterday", "2025-06-24T12:00:00", "-5", ""])
def test_until_refuses_anything_else_with_a_reason(text: str) -> None:
    with pytest.raises(UntilError):
        parse_until(text)


def test_progress_shows_position_rate_and_time_left() -> None:
    out = io.StringIO()
    progress = StderrProgress(out, interval=0)
    progress.begin("counters AGENDA", 0, 100)
    progress.advance(50, 50)
    progress.end()
    lines = out.getvalue().splitlines()
    assert "seq 50/100" in lines[1] and "/s" in lines[1] and "ETA" in lines[1]
    assert "100.0%" in lines[-1] and "in 00:00" in lines[-1]


def test_progress_into_a_log_writes_few_lines() -> None:
    out = io.StringIO()  # not a terminal
    progress = StderrProgress(out)
    progress.begin("counters AGENDA", 0, 1000)
    for sequence in range(1, 1001):
        progress.advance(sequence, 1)
    progress.end()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines  # the start and the end; nothing redrawn in between
    assert "1000 events" in lines[-1]
