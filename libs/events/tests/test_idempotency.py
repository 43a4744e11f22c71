"""Idempotency keys bound to their request, the metadata policy of a caller and queueing per
scope, against a real nats-server with the counter decider."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY

from agora_events.commands import CommandHandler, ConcurrencyError, IdempotencyKeyReused
from agora_events.decider import NotFound
from agora_events.store import EventStore, Metadata
from agora_events.usecases import Caller, RecentKeys, UseCases, outcome_of

from .counter import Counter, Increment, Open, OpenWithTags, counter_decider, scope


def handler(store: EventStore, attempts: int = 5) -> CommandHandler[Counter, object]:
    """A handler with a cache of its own: a new one stands for another process."""
    return CommandHandler(store, counter_decider, scope, max_attempts=attempts)


def digest(value: str) -> Metadata:
    return Metadata(request_digest=value)


async def stored(nats_client: NATS) -> int:
    return int((await nats_client.jetstream().stream_info("AGENDA")).state.messages)


def conflicts() -> float:
    value = REGISTRY.get_sample_value("agora_append_conflicts_total", {"context": "agenda"})
    return value or 0.0


# -- CommandHandler: idempotency decided by history ---------------------------------------------


async def test_a_retry_with_the_same_key_and_request_answers_the_first_events_and_sequences(
    store: EventStore, nats_client: NATS
) -> None:
    handle = handler(store)
    first = await handle.handle(
        OpenWithTags("r1", ("a", "b")), idempotency_key="k-r1", metadata=digest("d1")
    )
    again = await handle.handle(
        OpenWithTags("r1", ("a", "b")), idempotency_key="k-r1", metadata=digest("d1")
    )
    assert not first.duplicate
    assert again.duplicate
    assert again.events == first.events
    assert len(again.events) == 3
    assert (again.first_sequence, again.last_sequence) == (
        first.first_sequence,
        first.last_sequence,
    )
    assert await stored(nats_client) == 3


async def test_a_retry_reaching_another_process_answers_the_first_events_from_history(
    store: EventStore, nats_client: NATS
) -> None:
    first = await handler(store).handle(
        OpenWithTags("r2", ("a", "b")), idempotency_key="k-r2", metadata=digest("d1")
    )
    again = await handler(store).handle(
        OpenWithTags("r2", ("a", "b")), idempotency_key="k-r2", metadata=digest("d1")
    )
    assert again.duplicate
    assert again.events == first.events
    assert (again.first_sequence, again.last_sequence) == (
        first.first_sequence,
        first.last_sequence,
    )
    assert again.state == first.state
    assert await stored(nats_client) == 3


async def test_a_key_sent_again_with_another_request_is_refused_and_appends_nothing(
    store: EventStore, nats_client: NATS
) -> None:
    handle = handler(store)
    await handle.handle(Open("r3"))
    await handle.handle(Increment("r3", "x"), idempotency_key="k-r3", metadata=digest("d1"))
    before = await stored(nats_client)
    with pytest.raises(IdempotencyKeyReused) as refused:
        await handle.handle(Increment("r3", "y"), idempotency_key="k-r3", metadata=digest("d2"))
    assert refused.value.key == "k-r3"
    assert "k-r3" in refused.value.reason
    assert await stored(nats_client) == before
    assert (await handler(store).load("agenda.counter.r3.*")).state.tags == ("x",)


@pytest.mark.parametrize(
    "reused",
    [Open("r4"), Increment("r4", "y")],
    ids=["a command the initial state accepts", "a command the initial state refuses"],
)
async def test_a_key_sent_again_with_another_request_is_refused_by_history_in_a_new_process(
    store: EventStore, nats_client: NATS, reused: object
) -> None:
    await handler(store).handle(Open("r4"), idempotency_key="k-r4", metadata=digest("d1"))
    before = await stored(nats_client)
    with pytest.raises(IdempotencyKeyReused):
        await handler(store).handle(reused, idempotency_key="k-r4", metadata=digest("d2"))
    assert await stored(nats_client) == before


async def test_a_key_sent_again_to_a_process_with_a_stale_cache_is_refused_by_history(
    store: EventStore, nats_client: NATS
) -> None:
    stale = handler(store)
    await stale.handle(Open("r5"))
    await handler(store).handle(Increment("r5", "x"), idempotency_key="k-r5", metadata=digest("d1"))
    before = await stored(nats_client)
    with pytest.raises(IdempotencyKeyReused):
        await stale.handle(Increment("r5", "y"), idempotency_key="k-r5", metadata=digest("d2"))
    assert await stored(nats_client) == before
    # The refused request left nothing in the stale process's state either.
    assert (await stale.load("agenda.counter.r5.*")).state.tags == ("x",)


@pytest.mark.parametrize(
    ("first_digest", "retry_digest"),
    [(None, "d2"), ("d1", None), (None, None)],
    ids=["unknown at first", "unknown on the retry", "unknown on both"],
)
async def test_a_key_whose_request_is_not_known_on_one_side_is_taken_for_a_retry(
    store: EventStore, nats_client: NATS, first_digest: str | None, retry_digest: str | None
) -> None:
    first = await handler(store).handle(
        Open("r6"), idempotency_key="k-r6", metadata=Metadata(request_digest=first_digest)
    )
    again = await handler(store).handle(
        Open("r6"), idempotency_key="k-r6", metadata=Metadata(request_digest=retry_digest)
    )
    assert again.duplicate
    assert again.events == first.events
    assert again.last_sequence == first.last_sequence
    assert await stored(nats_client) == 1


async def test_recorded_answers_what_a_key_did_and_refuses_it_with_another_request(
    store: EventStore,
) -> None:
    first = await handler(store).handle(
        OpenWithTags("r7", ("a",)), idempotency_key="k-r7", metadata=digest("d1")
    )
    fresh = handler(store)
    applied = await fresh.recorded("agenda.counter.r7.*", "k-r7", "d1")
    assert applied is not None
    assert (applied.first, applied.last) == (first.first_sequence, first.last_sequence)
    assert applied.digest == "d1"
    assert applied.events == first.events
    with pytest.raises(IdempotencyKeyReused):
        await fresh.recorded("agenda.counter.r7.*", "k-r7", "d2")
    with pytest.raises(IdempotencyKeyReused):
        await handler(store).recorded("agenda.counter.r7.*", "k-r7", "d2")


async def test_recorded_knows_nothing_of_a_key_never_used_or_no_key(store: EventStore) -> None:
    await handler(store).handle(Open("r8"), idempotency_key="k-r8", metadata=digest("d1"))
    assert await handler(store).recorded("agenda.counter.r8.*", "another-key", "d2") is None
    assert await handler(store).recorded("agenda.counter.r8.*", None, "d2") is None
    # The key was used in another scope only: this one has no word on it.
    assert await handler(store).recorded("agenda.counter.r9.*", "k-r8", "d2") is None


# -- Caller: one metadata policy --------------------------------------------------------------


def test_the_callers_correlation_id_is_carried_and_the_command_causes_its_events() -> None:
    caller = Caller(actor="organiser", key="k", digest="d", correlation_id="from-the-client")
    metadata = caller.metadata()
    assert metadata.correlation_id == "from-the-client"
    assert metadata.causation_id == caller.command_id
    assert metadata.actor == "organiser"
    assert metadata.request_digest == "d"


def test_a_reactors_command_carries_the_events_correlation_and_is_caused_by_the_event() -> None:
    caller = Caller.reacting_to(
        "agenda-reactor", event_id="event-7", correlation_id="corr-of-event-7", key="k-event-7"
    )
    metadata = caller.metadata()
    assert metadata.correlation_id == "corr-of-event-7"
    assert metadata.causation_id == "event-7"
    assert metadata.actor == "agenda-reactor"
    assert caller.key == "k-event-7"


def test_without_a_correlation_id_the_command_correlates_and_causes_its_events() -> None:
    caller = Caller(actor="organiser")
    metadata = caller.metadata()
    assert metadata.correlation_id == caller.command_id
    assert metadata.causation_id == caller.command_id
    assert Caller().command_id != caller.command_id, "each request makes its own command id"
    reacting = Caller.reacting_to("r", event_id="event-8", correlation_id=None, key="k")
    assert reacting.metadata().correlation_id == reacting.command_id
    assert reacting.metadata().causation_id == "event-8"


def test_every_step_of_one_caller_carries_the_same_causation() -> None:
    caller = Caller(actor="organiser", key="k")
    steps = [
        caller.metadata(),
        caller.metadata(),
        caller.with_key("k-step-2").metadata(),
        caller.acting_as("system").metadata(),
    ]
    assert {step.causation_id for step in steps} == {caller.command_id}
    assert {step.correlation_id for step in steps} == {caller.command_id}


async def test_the_steps_of_one_use_case_store_the_same_causation_and_correlation(
    store: EventStore,
) -> None:
    use_cases, handle = UseCases(), handler(store)
    caller = Caller(actor="organiser", key="k-steps", correlation_id="corr-steps")
    await use_cases.run(handle, "agenda.counter.s1.*", Open("s1"), caller)
    await use_cases.run(handle, "agenda.counter.s2.*", Open("s2"), caller.with_key("k-steps-2"))
    envelopes = [r.envelope for r in await store.read("agenda.counter.*.*")]
    assert len(envelopes) == 2
    assert {e.causationid for e in envelopes} == {caller.command_id}
    assert {e.correlationid for e in envelopes} == {"corr-steps"}
    assert [e.idempotencykey for e in envelopes] == ["k-steps", "k-steps-2"]


# -- RecentKeys and UseCases -----------------------------------------------------------------


async def test_a_key_reused_with_another_request_in_another_scope_is_refused_before_any_work(
    store: EventStore, nats_client: NATS
) -> None:
    use_cases, handle = UseCases(), handler(store)
    first = Caller(key="k-u1", digest="d1")
    use_cases.accept(first)
    await use_cases.run(handle, "agenda.counter.u1.*", Open("u1"), first)
    with pytest.raises(IdempotencyKeyReused):
        use_cases.accept(Caller(key="k-u1", digest="d2"))
    use_cases.accept(Caller(key="k-u1", digest="d1"))  # the same request again is a retry
    assert await stored(nats_client) == 1


async def test_a_refused_request_leaves_its_key_free_for_the_corrected_one(
    store: EventStore, nats_client: NATS
) -> None:
    use_cases, handle = UseCases(), handler(store)
    refused = Caller(key="k-r1", digest="d1")
    use_cases.accept(refused)
    with pytest.raises(NotFound):
        await use_cases.run(handle, "agenda.counter.r1.*", Increment("r1", "a"), refused)
    corrected = Caller(key="k-r1", digest="d2")
    use_cases.accept(corrected)  # not refused: nothing was done for the first request
    await use_cases.run(handle, "agenda.counter.r1.*", Open("r1"), corrected)
    assert await stored(nats_client) == 1


def test_recent_keys_refuse_a_key_with_another_digest_and_accept_it_with_the_same() -> None:
    keys = RecentKeys()
    keys.bind(Caller(key="k", digest="d1"))
    keys.bind(Caller(key="k", digest="d1"))
    with pytest.raises(IdempotencyKeyReused, match="'k'"):
        keys.bind(Caller(key="k", digest="d2"))
    # A caller without a key, or without a digest, binds nothing.
    keys.bind(Caller(key="k", digest=None))
    keys.bind(Caller(key=None, digest="d3"))
    with pytest.raises(IdempotencyKeyReused):
        keys.bind(Caller(key="k", digest="d2"))


def test_recent_keys_forget_the_least_recently_seen_beyond_their_size() -> None:
    keys = RecentKeys(size=2)
    keys.bind(Caller(key="k1", digest="d"))
    keys.bind(Caller(key="k2", digest="d"))
    keys.bind(Caller(key="k1", digest="d"))  # seen again: now the most recent
    keys.bind(Caller(key="k3", digest="d"))  # k2 is forgotten
    keys.bind(Caller(key="k2", digest="other"))  # a forgotten key binds anew; k1 goes
    with pytest.raises(IdempotencyKeyReused):
        keys.bind(Caller(key="k3", digest="other"))
    with pytest.raises(IdempotencyKeyReused):
        keys.bind(Caller(key="k2", digest="d"))
    keys.bind(Caller(key="k1", digest="other"))


async def test_commands_on_one_scope_queue_instead_of_conflicting(
    store: EventStore, nats_client: NATS
) -> None:
    use_cases = UseCases()
    # Few attempts: without the queue, twenty commands decided on one cached state would
    # conflict and most would fail with ConcurrencyError.
    handle = handler(store, attempts=2)
    await use_cases.run(handle, "agenda.counter.q1.*", Open("q1"), Caller())
    before = conflicts()
    outcomes = await asyncio.gather(
        *(
            use_cases.run(handle, "agenda.counter.q1.*", Increment("q1", f"t{i}"), Caller())
            for i in range(20)
        ),
        return_exceptions=True,
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert failures == []
    assert not any(isinstance(o, ConcurrencyError) for o in outcomes)
    assert conflicts() == before
    final = (await handler(store).load("agenda.counter.q1.*")).state
    assert sorted(final.tags) == sorted(f"t{i}" for i in range(20))
    assert await stored(nats_client) == 21


async def test_an_outcome_answers_a_retry_the_same_with_duplicate_set(store: EventStore) -> None:
    use_cases, caller = UseCases(), Caller(key="k-o1", digest="d1")
    first = await use_cases.run(
        handler(store), "agenda.counter.o1.*", OpenWithTags("o1", ("a",)), caller
    )
    again = await use_cases.run(
        handler(store), "agenda.counter.o1.*", OpenWithTags("o1", ("a",)), caller
    )
    answered, retried = (
        outcome_of({"counter": "o1"}, [first]),
        outcome_of({"counter": "o1"}, [again]),
    )
    assert answered.events == [
        "agora.agenda.counter.opened.v1",
        "agora.agenda.counter.incremented.v1",
    ]
    assert (retried.ids, retried.sequence, retried.events) == (
        answered.ids,
        answered.sequence,
        answered.events,
    )
    assert retried.sequence == first.last_sequence
    assert (answered.duplicate, retried.duplicate) == (False, True)
    assert not outcome_of({}, [again, first]).duplicate, "one fresh step makes it not a retry"
