"""The live feed: each stream republishes what it stored on ``feed.<context>.>``, and nothing
else. A core subscription on the context subjects sees every publish attempt, refused appends
and refused atomic batches included; the feed carries only stored events, each with its
stream sequence. Run against a real nats-server with bursts of conflicting commands."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from agora_events.commands import CommandHandler, ConcurrencyError
from agora_events.decider import Rejected
from agora_events.direct_get import stored_messages
from agora_events.store import EventStore, Metadata

from .counter import Counter, Increment, Open, OpenWithTags, counter_decider, registry

STREAM = "AGENDA"


@dataclass(frozen=True, slots=True)
class Seen:
    subject: str
    headers: dict[str, str]

    @property
    def attempt(self) -> tuple[str, str, str]:
        """What tells one publish attempt from another: a refused first attempt of a keyed
        command has the stored event's ce-id, but its own ce-time."""
        return self.headers["ce-id"], self.headers["ce-time"], self.subject.removeprefix("feed.")


async def listen(nc: NATS, subject: str) -> list[Seen]:
    seen: list[Seen] = []

    async def keep(message: Msg) -> None:
        seen.append(Seen(message.subject, dict(message.headers or {})))

    await nc.subscribe(subject, cb=keep)
    await nc.flush()
    return seen


async def stored(nc: NATS) -> dict[int, Seen]:
    messages = stored_messages(nc, STREAM)
    return {m.sequence: Seen(m.subject, dict(m.headers)) async for m in messages}


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the feed did not deliver every stored event"
        await asyncio.sleep(0.02)


async def settle(*commands: Awaitable[object]) -> None:
    """Run the commands at once; losing a race is an outcome, anything else a failure."""
    for outcome in await asyncio.gather(*commands, return_exceptions=True):
        if isinstance(outcome, BaseException) and not isinstance(
            outcome, ConcurrencyError | Rejected
        ):
            raise outcome


def handlers(nc: NATS, scope: str, count: int) -> list[CommandHandler[Counter, object]]:
    """Handlers with caches of their own, as in as many processes: their decisions race.
    ``scope`` names the command's scope, ``{}`` standing for its counter."""
    return [
        CommandHandler(
            EventStore(nc, registry=registry, source="/test"),
            counter_decider,
            lambda command: scope.format(command.counter_id),  # type: ignore[attr-defined]
            max_attempts=20,
        )
        for _ in range(count)
    ]


def assert_feed_is_the_log(feed: list[Seen], log: dict[int, Seen]) -> None:
    sequences = [int(m.headers["Nats-Sequence"]) for m in feed]
    assert sorted(sequences) == sorted(log), "each stored event exactly once, nothing else"
    for message in feed:
        original = log[int(message.headers["Nats-Sequence"])]
        assert message.headers["Nats-Stream"] == STREAM
        assert message.headers["Nats-Subject"] == original.subject
        assert message.subject == f"feed.{original.subject}"
        assert message.headers["ce-id"] == original.headers["ce-id"]
        assert message.attempt == original.attempt
        assert "Nats-Last-Sequence" in message.headers


async def test_the_feed_carries_only_stored_events_through_a_burst_of_conflicts(
    nats_client: NATS,
) -> None:
    feed = await listen(nats_client, "feed.>")
    raw = await listen(nats_client, "agenda.>")
    racers = handlers(nats_client, "agenda.counter.{}.*", 4)
    await racers[0].handle(Open("c1"))
    await settle(
        *(
            racers[n % len(racers)].handle(
                Increment("c1", f"t{n}"),
                idempotency_key=f"key-{n}",
                metadata=Metadata(request_digest=f"digest-{n}"),
            )
            for n in range(12)
        )
    )
    log = await stored(nats_client)
    await until(lambda: len(feed) >= len(log))

    assert_feed_is_the_log(feed, log)
    refused = {m.attempt for m in raw} - {m.attempt for m in log.values()}
    assert refused, "the burst produced refused appends (else it proves nothing)"
    assert not refused & {m.attempt for m in feed}
    stored_ids = {m.headers["ce-id"] for m in log.values()}
    assert any(attempt[0] in stored_ids for attempt in refused), (
        "a refused first attempt of a keyed command shares its ce-id with the stored event"
    )


async def test_refused_atomic_batches_never_reach_the_feed(nats_client: NATS) -> None:
    feed = await listen(nats_client, "feed.>")
    raw = await listen(nats_client, "agenda.>")
    racers = handlers(nats_client, "agenda.counter.{}.*", 4)
    # Every racer opens each counter with three tags, one batch of four events: for each
    # counter one batch is stored, the others are refused and then rejected (already open).
    await settle(
        *(
            racer.handle(OpenWithTags(f"b{n}", ("x", "y", "z")))
            for n in range(6)
            for racer in racers
        )
    )
    log = await stored(nats_client)
    await until(lambda: len(feed) >= len(log))

    assert_feed_is_the_log(feed, log)
    stored_batches = {m.headers["Nats-Batch-Id"] for m in log.values()}
    assert len(stored_batches) == 6 and len(log) == 6 * 4
    attempted_batches = {m.headers["Nats-Batch-Id"] for m in raw}
    assert attempted_batches - stored_batches, "some batches were refused"
    assert {m.headers["Nats-Batch-Id"] for m in feed} == stored_batches
