"""The floors a multi-event command stands on: raw nats-py, no Agora code, in one run.

For each case, ``--count`` commits on distinct subjects of a file-storage stream, each guarded
by ``Nats-Expected-Last-Subject-Sequence`` on the aggregate's wildcard, as an Agora append is:

* ``one``: one message per commit (what a single-event command costs);
* ``two``: two plain messages per commit, the second waiting for the first's acknowledgement
  (not all-or-nothing: a crash between them leaves half);
* ``batch``: an atomic batch of two (``Nats-Batch-Id`` …, ``Nats-Batch-Commit``): all or none.

each sequential and with 16 and 64 commits in flight. Rates are commits per second.

    .venv/bin/python bench/bench_floors.py [--count 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from agora_events.connection import connect
from agora_events.nats_server import EmbeddedNats
from agora_events.streams import ensure_streams

BODY = b'{"participant_id":"7K2M9QXDC4","name":"D\xc3\xa9l\xc3\xa9gation","delegation":"CIV"}'
Commit = Callable[[str], Awaitable[None]]


def _guard(aggregate: str) -> dict[str, str]:
    return {
        "Nats-Expected-Last-Subject-Sequence": "0",
        "Nats-Expected-Last-Subject-Sequence-Subject": f"{aggregate}.*",
    }


def one(js: JetStreamContext) -> Commit:
    async def commit(aggregate: str) -> None:
        await js.publish(f"{aggregate}.registered", BODY, headers=_guard(aggregate))

    return commit


def two(js: JetStreamContext) -> Commit:
    async def commit(aggregate: str) -> None:
        first = await js.publish(f"{aggregate}.approved", BODY, headers=_guard(aggregate))
        guard = _guard(aggregate) | {"Nats-Expected-Last-Subject-Sequence": str(first.seq)}
        await js.publish(f"{aggregate}.badge_issued", BODY, headers=guard)

    return commit


def batch(nc: NATS) -> Commit:
    async def commit(aggregate: str) -> None:
        batch_id = uuid.uuid4().hex
        first = _guard(aggregate) | {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": "1"}
        # The first message of a batch is answered only when it is refused; wait for the
        # commit's acknowledgement instead.
        await nc.publish(f"{aggregate}.approved", BODY, headers=first)
        last = {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": "2", "Nats-Batch-Commit": "1"}
        reply = await nc.request(f"{aggregate}.badge_issued", BODY, headers=last, timeout=5)
        if b'"error"' in reply.data:
            raise RuntimeError(reply.data.decode())

    return commit


async def rate(commit: Commit, prefix: str, count: int, in_flight: int) -> float:
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await commit(f"registration.floor.{prefix}{i}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started)


async def run(url: str, count: int, rounds: int) -> None:
    nc = await connect(url, name="bench-floors")
    js = nc.jetstream()
    await ensure_streams(js)
    cases = {"one": one(js), "two": two(js), "batch": batch(nc)}
    concurrency = (1, 16, 64)
    results: dict[tuple[str, int], list[float]] = {
        (name, n): [] for name in cases for n in concurrency
    }
    for round_ in range(rounds):
        for (name, n), rates in results.items():
            rates.append(await rate(cases[name], f"{name}{n}r{round_}x", count, n))
    await nc.close()
    print(f"raw nats-py commits/s, {count} per case, median of {rounds} rounds (min-max)")
    print(f"{'':8}" + "".join(f"{f'{n} in flight':>24}" for n in concurrency))
    for name in cases:
        cells = []
        for n in concurrency:
            rates = results[(name, n)]
            cells.append(f"{statistics.median(rates):>8.0f} ({min(rates):.0f}-{max(rates):.0f})")
        print(f"{name:8}" + "".join(f"{cell:>24}" for cell in cells))
    for n in concurrency:
        base = statistics.median(results[("one", n)])
        print(
            f"{n:>2} in flight: two/one {statistics.median(results[('two', n)]) / base:.2f}  "
            f"batch/one {statistics.median(results[('batch', n)]) / base:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store, EmbeddedNats(Path(store)) as server:
        asyncio.run(run(server.url, args.count, args.rounds))


if __name__ == "__main__":
    main()
