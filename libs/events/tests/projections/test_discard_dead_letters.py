"""Discarding a dead letter: recorded with who, when and why; its aggregate recovers."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS

from agora_events.projections.bookkeeping import load_discards
from agora_events.projections.database import ReadModelDatabase
from agora_events.store import EventStore

from ..counter import CounterOpened, Incremented
from .helpers import append, append_unknown, running
from .model import Switches, counter_projection, fold, read_rows


async def test_discarding_a_stray_message_unblocks_its_aggregate(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"))
    stray = await append_unknown(nats_client, "a")
    behind = await append(store, Incremented(counter_id="a", tag="behind"))
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(behind[-1][0], stream="AGENDA")
        head, waiting = await runner.dead_letters()
        assert (head.sequence, waiting.reason) == (stray, "blocked")

        outcome = await runner.discard_dead_letter(head.id, reason="stray publish", by="ops-1")

        assert [letter.sequence for letter in outcome.retried.applied] == [behind[0][0]]
        assert await runner.dead_letters() == []
        # The aggregate is no longer blocked: its next event applies live.
        later = await append(store, Incremented(counter_id="a", tag="later"))
        await runner.wait_for(later[-1][0], stream="AGENDA")
    assert await read_rows(db, projection) == fold(log + behind + later)


async def test_a_discard_records_who_when_and_why(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    await append(store, CounterOpened(counter_id="a"))
    stray = await append_unknown(nats_client, "a")
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(stray, stream="AGENDA")
        (letter,) = await runner.dead_letters()
        await runner.discard_dead_letter(letter.id, reason="  stray publish ", by="ops-1")
    async with db.session() as session:
        (discard,) = await load_discards(session, projection.name)
    assert (discard.stream, discard.sequence, discard.parked_reason) == (
        "AGENDA",
        stray,
        "undecodable",
    )
    assert (discard.discarded_by, discard.why) == ("ops-1", "stray publish")
    assert discard.discarded_at >= discard.parked_at


async def test_when_the_next_parked_event_still_fails_it_heads_the_chain(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection(switches=Switches(broken_tags={"boom"}))
    await db.prepare([projection])
    log = await append(store, CounterOpened(counter_id="a"))
    stray = await append_unknown(nats_client, "a")
    behind = await append(
        store, Incremented(counter_id="a", tag="boom"), Incremented(counter_id="a", tag="ok")
    )
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(behind[-1][0], stream="AGENDA")
        head = (await runner.dead_letters())[0]
        outcome = await runner.discard_dead_letter(head.id, reason="stray", by="ops-1")
        letters = await runner.dead_letters()
    assert not outcome.retried.clean
    assert [letter.sequence for letter in letters] == [behind[0][0], behind[1][0]]
    assert stray not in [letter.sequence for letter in letters]
    assert await read_rows(db, projection) == fold(log)


async def test_a_discard_needs_a_reason_and_a_known_id(
    db: ReadModelDatabase, store: EventStore, nats_client: NATS
) -> None:
    projection = counter_projection()
    await db.prepare([projection])
    stray = await append_unknown(nats_client, "a")
    async with running(nats_client, db, [projection]) as runner:
        await runner.wait_for(stray, stream="AGENDA")
        (letter,) = await runner.dead_letters()
        with pytest.raises(ValueError, match="reason"):
            await runner.discard_dead_letter(letter.id, reason=" ", by="ops-1")
        with pytest.raises(LookupError, match="no dead letter with id 999"):
            await runner.discard_dead_letter(999, reason="stray", by="ops-1")
        assert await runner.dead_letters() == [letter]
