from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from agora_events.commands import CommandHandler, ConcurrencyError
from agora_events.decider import NotFound
from agora_events.store import (
    AppendOutcomeUnknown,
    AppendRejected,
    ConcurrencyConflict,
    EventStore,
    Expected,
    Metadata,
    NoStream,
    StoreError,
    matches,
)
from agora_events.testing.pytest_plugin import reset_streams

from .counter import (
    Counter,
    CounterOpened,
    Increment,
    Incremented,
    Open,
    OpenWithTags,
    counter_decider,
    registry,
    scope,
)


def handler(store: EventStore, attempts: int = 5) -> CommandHandler[Counter, object]:
    return CommandHandler(store, counter_decider, scope, max_attempts=attempts)


async def test_appends_and_reads_an_aggregate_in_order(store: EventStore) -> None:
    first = await store.append(
        [CounterOpened(counter_id="c1")], expected=Expected("agenda.counter.c1.*")
    )
    second = await store.append(
        [Incremented(counter_id="c1", tag="a")],
        expected=Expected("agenda.counter.c1.*", first.last_sequence, 1),
        metadata=Metadata(actor="organiser-1", correlation_id="corr-1"),
    )
    records = await store.read("agenda.counter.c1.*")
    assert [r.sequence for r in records] == [first.last_sequence, second.last_sequence]
    assert records[1].event == Incremented(counter_id="c1", tag="a")
    assert records[1].subject == "agenda.counter.c1.incremented"
    assert records[1].envelope.actor == "organiser-1"
    assert records[1].envelope.aggregateversion == 2
    assert records[1].envelope.type == "agora.agenda.counter.incremented.v1"


async def test_refuses_an_append_against_a_stale_sequence(store: EventStore) -> None:
    await store.append([CounterOpened(counter_id="c1")], expected=Expected("agenda.counter.c1.*"))
    with pytest.raises(ConcurrencyConflict):
        await store.append(
            [Incremented(counter_id="c1", tag="late")], expected=Expected("agenda.counter.c1.*")
        )
    assert len(await store.read("agenda.counter.c1.*")) == 1


async def test_refuses_events_outside_the_guarded_scope(store: EventStore) -> None:
    with pytest.raises(AppendRejected, match="outside the scope"):
        await store.append(
            [CounterOpened(counter_id="other")], expected=Expected("agenda.counter.c1.*")
        )


async def test_events_without_an_idempotency_key_get_distinct_random_uuids(
    store: EventStore,
) -> None:
    results = [
        await store.append([CounterOpened(counter_id=f"u{i}")], expected=None) for i in range(20)
    ]
    ids = [uuid.UUID(result.envelopes[0].id) for result in results]
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("subject", "pattern", "expected"),
    [
        ("agenda.counter.c1.opened", "agenda.counter.c1.*", True),
        ("agenda.counter.c1", "agenda.counter.c1.*", False),
        ("agenda.counter.c1.opened.late", "agenda.counter.c1.*", False),
        ("agenda.counter.c10.opened", "agenda.counter.c1.*", False),
        ("agenda.counter.c1.opened", "agenda.*.c1.*", True),
        ("agenda.room.c1.opened", "agenda.counter.>", False),
        ("agenda.counter.c1.opened", "agenda.>", True),
        ("agenda", "agenda.>", False),
    ],
)
def test_scope_patterns_match_like_nats_wildcards(
    subject: str, pattern: str, expected: bool
) -> None:
    assert matches(subject, pattern) is expected


async def test_reads_only_up_to_a_sequence(store: EventStore) -> None:
    results = [
        await store.append([Incremented(counter_id="c9", tag=str(i))], expected=None)
        for i in range(5)
    ]
    records = await store.read("agenda.counter.c9.*", up_to=results[2].last_sequence)
    assert [r.event.tag for r in records] == ["0", "1", "2"]  # type: ignore[attr-defined]


async def test_reads_past_one_direct_get_batch(store: EventStore) -> None:
    handle = handler(store)
    await handle.handle(OpenWithTags("big", tuple(str(i) for i in range(30))))
    records = await store.read("agenda.counter.big.*", batch=7)
    assert len(records) == 31
    assert [r.sequence for r in records] == sorted(r.sequence for r in records)


async def test_fifty_concurrent_commands_on_one_aggregate_lose_no_update(
    store: EventStore,
) -> None:
    await handler(store).handle(Open("hot"))
    # Each "client" has its own handler (its own cache), like separate service replicas.
    outcomes = await asyncio.gather(
        *(handler(store, attempts=3).handle(Increment("hot", f"t{i}")) for i in range(50)),
        return_exceptions=True,
    )
    succeeded = {f"t{i}" for i, o in enumerate(outcomes) if not isinstance(o, BaseException)}
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(f, ConcurrencyError) for f in failures), failures
    final = (await handler(store).load("agenda.counter.hot.*")).state
    assert set(final.tags) == succeeded
    assert len(final.tags) == len(succeeded)  # nothing applied twice
    assert succeeded, "at least one command must win"


async def test_the_same_command_twice_with_one_key_produces_one_event(store: EventStore) -> None:
    await handler(store).handle(Open("c2"))
    first = await handler(store).handle(Increment("c2", "x"), idempotency_key="key-1")
    again = await handler(store).handle(Increment("c2", "x"), idempotency_key="key-1")
    assert again.duplicate
    assert (again.first_sequence, again.last_sequence) == (
        first.first_sequence,
        first.last_sequence,
    )
    records = await store.read("agenda.counter.c2.*")
    assert [type(r.event).__name__ for r in records] == ["CounterOpened", "Incremented"]


async def test_a_retried_command_in_the_same_process_is_recognised(store: EventStore) -> None:
    handle = handler(store)
    await handle.handle(Open("c3"), idempotency_key="open-c3")
    again = await handle.handle(Open("c3"), idempotency_key="open-c3")
    assert again.duplicate
    assert len(await store.read("agenda.counter.c3.*")) == 1


async def test_a_multi_event_command_lands_atomically(store: EventStore) -> None:
    result = await handler(store).handle(OpenWithTags("c4", ("a", "b", "c")))
    assert result.last_sequence - result.first_sequence == 3
    assert result.state.tags == ("a", "b", "c")


async def test_a_multi_event_command_that_fails_midway_leaves_nothing(
    store: EventStore, nats_client: NATS
) -> None:
    events = [CounterOpened(counter_id="c5")] + [Incremented(counter_id="c5", tag=t) for t in "abc"]
    envelopes = store.envelopes_for(events, base_count=0, idempotency_key=None, metadata=Metadata())
    before = (await nats_client.jetstream().stream_info("AGENDA")).state.last_seq
    # Send the first two messages of the batch, then "crash" before the commit.
    for number, (event, envelope) in enumerate(zip(events[:2], envelopes[:2], strict=True), 1):
        headers = envelope.to_headers() | {
            "Nats-Batch-Id": "crashed",
            "Nats-Batch-Sequence": str(number),
        }
        await nats_client.request(event.subject, envelope.data, headers=headers, timeout=2)
    await nats_client.flush()
    assert (await nats_client.jetstream().stream_info("AGENDA")).state.last_seq == before
    assert await store.read("agenda.counter.c5.*") == []
    # The aggregate is untouched and the next command is decided on an empty history.
    result = await handler(store).handle(OpenWithTags("c5", ("z",)))
    assert result.first_sequence == before + 1


async def test_a_multi_event_command_refused_at_commit_leaves_nothing(store: EventStore) -> None:
    await handler(store).handle(Open("c6"))
    events = [Incremented(counter_id="c6", tag=t) for t in "ab"]
    with pytest.raises(ConcurrencyConflict):
        await store.append(events, expected=Expected("agenda.counter.c6.*", 0, 0))
    assert len(await store.read("agenda.counter.c6.*")) == 1


async def test_rejection_is_decided_on_the_current_state_not_a_stale_cache(
    store: EventStore,
) -> None:
    stale = handler(store)
    with pytest.raises(NotFound):
        await stale.handle(Increment("c7", "early"))
    await handler(store).handle(Open("c7"))  # another replica opens it
    result = await stale.handle(Increment("c7", "now"))
    assert result.state.tags == ("now",)


async def test_counts_commands_by_outcome(store: EventStore) -> None:
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        value = REGISTRY.get_sample_value(
            "agora_commands_total", {"context": "agenda", "outcome": outcome}
        )
        return value or 0.0

    before = {o: count(o) for o in ("accepted", "rejected", "duplicate")}
    handle = handler(store)
    await handle.handle(Open("m1"), idempotency_key="m1")
    await handle.handle(Open("m1"), idempotency_key="m1")
    with pytest.raises(NotFound):
        await handle.handle(Increment("m2", "x"))
    assert count("accepted") == before["accepted"] + 1
    assert count("duplicate") == before["duplicate"] + 1
    assert count("rejected") == before["rejected"] + 1


async def test_many_concurrent_multi_event_commands_all_land(store: EventStore) -> None:
    # More atomic batches at once than JetStream keeps in flight per stream (50).
    handle = handler(store)
    results = await asyncio.gather(
        *(handle.handle(OpenWithTags(f"burst{i}", ("a", "b"))) for i in range(120))
    )
    assert all(r.last_sequence - r.first_sequence == 2 for r in results)
    assert len(await store.read("agenda.counter.*.*")) == 360


async def test_an_append_nobody_acknowledges_reports_its_outcome_unknown(
    nats_client: NATS,
) -> None:
    # A plain subscriber that never answers stands in for a stream that stored the message
    # but whose acknowledgement was lost.
    await nats_client.jetstream().delete_stream("AGENDA")
    silent = await nats_client.subscribe("agenda.>")
    store = EventStore(nats_client, registry=registry, source="/test", timeout=0.3)
    with pytest.raises(AppendOutcomeUnknown, match="no acknowledgement"):
        await store.append(
            [CounterOpened(counter_id="c1")], expected=Expected("agenda.counter.c1.*")
        )
    assert (await silent.next_msg(timeout=1)).subject == "agenda.counter.c1.opened"

    # The store keeps working once acknowledgements come again.
    await silent.unsubscribe()
    await reset_streams(nats_client)
    appended = await store.append(
        [CounterOpened(counter_id="c2")], expected=Expected("agenda.counter.c2.*")
    )
    assert appended.last_sequence == 1


async def test_an_append_to_a_missing_stream_is_refused_with_the_reason(
    nats_client: NATS, store: EventStore
) -> None:
    await nats_client.jetstream().delete_stream("AGENDA")
    with pytest.raises(NoStream, match=r"no stream stores agenda\.counter\.c1\.opened"):
        await store.append(
            [CounterOpened(counter_id="c1")], expected=Expected("agenda.counter.c1.*")
        )
    with pytest.raises(NoStream):
        await store.append(
            [CounterOpened(counter_id="c2"), Incremented(counter_id="c2", tag="a")],
            expected=Expected("agenda.counter.c2.*"),
        )


async def test_reads_at_once_each_get_their_own_scope_on_the_one_reply_subscription(
    store: EventStore, nats_client: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(30):
        for tag in range(number % 3 + 1):
            await store.append([Incremented(counter_id=f"r{number}", tag=str(tag))], expected=None)
    subscribed: list[str] = []
    subscribe = nats_client.subscribe

    async def counted(subject: str, *args: Any, **kwargs: Any) -> Any:
        subscribed.append(subject)
        return await subscribe(subject, *args, **kwargs)

    monkeypatch.setattr(nats_client, "subscribe", counted)

    histories = await asyncio.gather(
        *(store.read(f"agenda.counter.r{number}.*") for number in range(30)),
        *(store.read(f"agenda.counter.r{number}.*", batch=1) for number in range(30)),
    )

    for number, history in enumerate(histories):
        counter = number % 30
        assert {r.subject for r in history} == {f"agenda.counter.r{counter}.incremented"}
        assert [r.event.tag for r in history] == [  # type: ignore[attr-defined]
            str(tag) for tag in range(counter % 3 + 1)
        ]
    # Answered on the store's reply subscription (made once, by the first append): a read
    # subscribes to nothing of its own.
    assert subscribed == []


async def test_a_read_nobody_answers_is_a_store_error_after_the_timeout(
    nats_client: NATS,
) -> None:
    await nats_client.jetstream().delete_stream("AGENDA")
    silent = await nats_client.subscribe("$JS.API.DIRECT.GET.AGENDA")  # takes it, answers not
    store = EventStore(nats_client, registry=registry, source="/test", timeout=0.2)
    try:
        with pytest.raises(StoreError, match="did not answer a read in time"):
            await store.read("agenda.counter.c1.*")
    finally:
        await silent.unsubscribe()


async def test_an_aggregate_a_handler_wrote_is_read_whole_from_one_request(
    store: EventStore,
) -> None:
    await handler(store).handle(Open("whole"))
    await handler(store).handle(Increment("whole", "a"))  # another replica's append

    whole = await store.read_aggregate("agenda.counter.whole.*")

    every = await store.read("agenda.counter.whole.*")
    assert whole is not None
    assert [(r.sequence, r.event) for r in whole] == [(r.sequence, r.event) for r in every]
    assert whole.last_sequence == every.last_sequence


async def test_a_history_the_last_messages_cannot_prove_whole_is_not_read_from_them(
    store: EventStore, nats_client: NATS
) -> None:
    # A subject used twice: its last message is found, the one before is not.
    await handler(store).handle(OpenWithTags("twice", ("a", "b")))
    # Stored without an expectation: numbered as if it were the aggregate's first event.
    await handler(store).handle(Open("gap"))
    await store.append([Incremented(counter_id="gap", tag="c")], expected=None)
    await handler(store).handle(Open("stray"))
    await nats_client.jetstream().publish("agenda.counter.stray.incremented", b"not an event")

    assert await store.read_aggregate("agenda.counter.twice.*") is None
    assert await store.read_aggregate("agenda.counter.gap.*") is None
    assert await store.read_aggregate("agenda.counter.stray.*") is None
    assert await store.read_aggregate("agenda.counter.*.*") is None  # several aggregates
    assert await store.read_aggregate("agenda.counter.none.*") is None  # nothing stored
    # The handler reads them as before.
    state = (await handler(store).load("agenda.counter.twice.*")).state
    assert state.tags == ("a", "b")


async def test_a_handler_with_nothing_cached_reads_a_scope_it_wrote_in_one_request(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await handler(store).handle(Open("cold"))
    fresh = handler(store)  # a restarted process, or another replica: nothing cached
    full_reads: list[str] = []
    read = store.read

    async def counted(scope: str, **kwargs: Any) -> Any:
        full_reads.append(scope)
        return await read(scope, **kwargs)

    monkeypatch.setattr(store, "read", counted)

    result = await fresh.handle(Increment("cold", "a"))

    assert result.state.tags == ("a",)
    assert full_reads == []
    assert [r.envelope.aggregateversion for r in await read("agenda.counter.cold.*")] == [1, 2]
