from __future__ import annotations

import sqlite3

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy.exc import IntegrityError, OperationalError

from agora_events.projections.applier import is_infrastructure_error
from agora_events.projections.database import ReadModelDatabase
from agora_events.store import EventStore

from ..counter import CounterOpened, Incremented
from .helpers import append, append_unknown, running
from .model import Switches, counter_projection, fold, read_rows


@pytest.fixture
def switches() -> Switches:
    return Switches(broken_tags={"boom"})


async def test_a_poison_event_is_parked_with_its_identity_and_the_projection_moves_on(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS, switches: Switches
) -> None:
    projection = counter_projection(switches=switches)
    await db.prepare([projection])
    log = await append(
        store,
        CounterOpened(counter_id="a"),
        CounterOpened(counter_id="b"),
        Incremented(counter_id="a", tag="boom"),
        Incremented(counter_id="b", tag="fine"),
    )
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        (letter,) = await runner.dead_letters()
    assert (letter.stream, letter.sequence, letter.subject) == (
        "AGENDA",
        log[2][0],
        "agenda.counter.a.incremented",
    )
    assert letter.event_type == "agora.agenda.counter.incremented.v1"
    assert letter.event_id is not None
    assert (letter.reason, letter.attempts) == ("failed", 3)
    assert "ValueError: cannot count tag 'boom'" in letter.error
    assert await read_rows(db, projection) == fold(log[:2] + log[3:])


async def test_later_events_of_the_same_aggregate_are_parked_behind_it_in_order(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS, switches: Switches
) -> None:
    projection = counter_projection(switches=switches)
    await db.prepare([projection])
    log = await append(
        store,
        CounterOpened(counter_id="a"),
        Incremented(counter_id="a", tag="boom"),
        Incremented(counter_id="a", tag="after-1"),
        CounterOpened(counter_id="b"),
        Incremented(counter_id="a", tag="after-2"),
    )
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        letters = await runner.dead_letters()
    assert [(letter.sequence, letter.reason) for letter in letters] == [
        (log[1][0], "failed"),
        (log[2][0], "blocked"),
        (log[4][0], "blocked"),
    ]
    assert letters[1].error == f"waits behind sequence {log[1][0]} of the same aggregate"
    # Counter "a" stays as it was before the poison event; "b" moved on.
    assert await read_rows(db, projection) == fold([log[0], log[3]])


async def test_a_retry_after_the_fix_applies_the_parked_events_in_order(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS, switches: Switches
) -> None:
    projection = counter_projection(switches=switches)
    await db.prepare([projection])
    log = await append(
        store,
        CounterOpened(counter_id="a"),
        Incremented(counter_id="a", tag="boom"),
        Incremented(counter_id="a", tag="after"),
    )
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        switches.broken_tags.clear()  # the fix is deployed
        outcome = await runner.retry_dead_letters()
        assert outcome.clean
        assert [letter.sequence for letter in outcome.applied] == [log[1][0], log[2][0]]
        assert await runner.dead_letters() == []
        # The aggregate is no longer blocked: its next event applies live.
        later = await append(store, Incremented(counter_id="a", tag="later"))
        await runner.wait_for(later[-1][0], stream="AGENDA")
    assert await read_rows(db, projection) == fold(log + later)


async def test_a_retry_that_still_fails_keeps_the_chain_parked_and_counts_the_attempt(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS, switches: Switches
) -> None:
    projection = counter_projection(switches=switches)
    await db.prepare([projection])
    log = await append(
        store,
        CounterOpened(counter_id="a"),
        Incremented(counter_id="a", tag="boom"),
        Incremented(counter_id="a", tag="after"),
    )
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        outcome = await runner.retry_dead_letters()
        letters = await runner.dead_letters()
    ((head, error),) = outcome.failed
    assert head.sequence == log[1][0] and "cannot count tag 'boom'" in error
    assert [letter.sequence for letter in outcome.still_waiting] == [log[2][0]]
    assert [letter.attempts for letter in letters] == [4, 0]
    assert await read_rows(db, projection) == fold(log[:1])


async def test_an_event_of_an_unknown_type_is_parked_not_dropped(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"))
    unknown = await append_unknown(nats_client, "a")
    after = await append(store, CounterOpened(counter_id="b"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(after[-1][0], stream="AGENDA")
        (letter,) = await runner.dead_letters()
    assert (letter.sequence, letter.reason, letter.attempts) == (unknown, "undecodable", 0)
    assert letter.event_type == "agora.agenda.counter.exploded.v1"
    assert "unknown event type 'agora.agenda.counter.exploded.v1'" in letter.error
    assert await read_rows(db, projection) == fold(log + after)


async def test_a_handler_using_write_results_runs_correctly_without_write_behind(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection(switches=Switches(reads_write_results=True))
    await db.prepare([projection])
    log = await append(
        store, CounterOpened(counter_id="a"), *(Incremented(counter_id="a", tag=t) for t in "xyz")
    )
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(log[-1][0], stream="AGENDA")
        assert await runner.dead_letters() == []
    assert await read_rows(db, projection) == fold(log)


@pytest.mark.parametrize(
    ("error", "infrastructure"),
    [
        (OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked")), True),
        (OperationalError("SELECT", {}, sqlite3.OperationalError("no such column: x")), False),
        (IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")), False),
        (ConnectionResetError("gone"), True),
        (KeyError("x"), False),
    ],
)
def test_only_failures_of_the_database_itself_are_retried_without_parking(
    error: BaseException, infrastructure: bool
) -> None:
    assert is_infrastructure_error(error) is infrastructure
