"""Appends per second: Agora's command handling against raw nats-py, in one run.

(a) sequential commands, each on a new aggregate, against sequential ``js.publish``;
(b) 64 commands in flight on distinct aggregates, against ``js.publish_async`` with 64 pending.

    .venv/bin/python bench/bench_appends.py [--count 5000] [--rounds 3] [--traced]

``--traced`` records Agora's spans the way a service with an exporter does after
``configure_tracing`` (an SDK tracer provider that records every span; nothing is exported
here), instead of the no-op tracer of a process that never configured tracing. A service
without an exporter records none of the traces it begins.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agora_events.catalogue import DomainEvent, EventRegistry
from agora_events.commands import CommandHandler
from agora_events.connection import connect
from agora_events.decider import Decider, InvariantViolated
from agora_events.nats_server import EmbeddedNats
from agora_events.store import EventStore, Metadata
from agora_events.streams import ensure_streams
from agora_events.tracing import use_tracer_provider

registry = EventRegistry()


@registry.event("registration", "bench", "registered", id_field="bench_id")
class Registered(DomainEvent):
    bench_id: str
    name: str
    delegation: str


@dataclass(frozen=True)
class Register:
    bench_id: str
    name: str
    delegation: str


def decide(registered: bool, command: Register) -> list[DomainEvent]:
    if registered:
        raise InvariantViolated("already registered")
    return [Registered(bench_id=command.bench_id, name=command.name, delegation=command.delegation)]


decider: Decider[bool, Register, DomainEvent] = Decider(lambda: False, decide, lambda s, e: True)
PAYLOAD = Registered(bench_id="x" * 12, name="Délégation de Côte d'Ivoire", delegation="CIV")


async def timed(work: Callable[[], Awaitable[None]], count: int) -> float:
    started = time.perf_counter()
    await work()
    return count / (time.perf_counter() - started)


async def run(url: str, count: int, rounds: int) -> None:
    nc = await connect(url, name="bench")
    js = nc.jetstream(publish_async_max_pending=64)
    await ensure_streams(js)
    store = EventStore(nc, registry=registry, source="/bench")
    handler = CommandHandler(store, decider, lambda c: f"registration.bench.{c.bench_id}.*")
    body = registry.encode(PAYLOAD)
    # The same wire work as an Agora append: envelope headers and the concurrency guard on
    # the aggregate's wildcard (the server resolves the scope's last sequence per message).
    envelope = store.envelopes_for(
        [PAYLOAD], base_count=0, idempotency_key=None, metadata=Metadata()
    )[0]
    wire_headers = envelope.to_headers() | {"Nats-Expected-Last-Subject-Sequence": "0"}
    kinds = ("agora_a", "raw_a", "bare_a", "agora_b", "raw_b", "bare_b")
    results: dict[str, list[float]] = {k: [] for k in kinds}

    async def agora_sequential(prefix: str) -> None:
        for i in range(count):
            await handler.handle(Register(f"{prefix}a{i}", "Délégation", "CIV"))

    async def raw_sequential(prefix: str) -> None:
        for i in range(count):
            scope = f"registration.bench.{prefix}ra{i}.*"
            subject = f"registration.bench.{prefix}ra{i}.registered"
            headers = wire_headers | {"Nats-Expected-Last-Subject-Sequence-Subject": scope}
            await js.publish(subject, body, headers=headers)

    async def bare_sequential(prefix: str) -> None:
        for i in range(count):
            await js.publish(f"registration.bench.{prefix}xa{i}.registered", body)

    async def agora_concurrent(prefix: str) -> None:
        queue = iter(range(count))

        async def worker() -> None:
            for i in queue:
                await handler.handle(Register(f"{prefix}b{i}", "Délégation", "CIV"))

        await asyncio.gather(*(worker() for _ in range(64)))

    async def raw_concurrent(prefix: str) -> None:
        for i in range(count):
            scope = f"registration.bench.{prefix}rb{i}.*"
            subject = f"registration.bench.{prefix}rb{i}.registered"
            headers = wire_headers | {"Nats-Expected-Last-Subject-Sequence-Subject": scope}
            await js.publish_async(subject, body, headers=headers)
        await js.publish_async_completed()

    async def bare_concurrent(prefix: str) -> None:
        for i in range(count):
            await js.publish_async(f"registration.bench.{prefix}xb{i}.registered", body)
        await js.publish_async_completed()

    for round_ in range(rounds):
        prefix = f"r{round_}"
        results["bare_a"].append(await timed(partial(bare_sequential, prefix), count))
        results["raw_a"].append(await timed(partial(raw_sequential, prefix), count))
        results["agora_a"].append(await timed(partial(agora_sequential, prefix), count))
        results["bare_b"].append(await timed(partial(bare_concurrent, prefix), count))
        results["raw_b"].append(await timed(partial(raw_concurrent, prefix), count))
        results["agora_b"].append(await timed(partial(agora_concurrent, prefix), count))
    await nc.close()

    m = {k: statistics.median(v) for k, v in results.items()}
    print(f"appends, {count} per round, median of {rounds} rounds, events/s")
    print(
        "raw = nats-py publishing the same headers (scope guard included) and body; "
        "bare = body only, no headers"
    )
    for case, label in (("a", "(a) sequential  "), ("b", "(b) 64 in flight")):
        agora, raw, bare = m[f"agora_{case}"], m[f"raw_{case}"], m[f"bare_{case}"]
        print(
            f"{label} agora {agora:>8.0f}  raw {raw:>8.0f}  bare {bare:>8.0f}  "
            f"ratio/raw {agora / raw:.2f}  ratio/bare {agora / bare:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--traced", action="store_true", help="record spans, export none")
    args = parser.parse_args()
    if args.traced:
        from opentelemetry.sdk.trace import TracerProvider

        use_tracer_provider(TracerProvider())
    with tempfile.TemporaryDirectory() as store, EmbeddedNats(Path(store)) as server:
        asyncio.run(run(server.url, args.count, args.rounds))


if __name__ == "__main__":
    main()
