"""Declarations: signatures per second, and how long a withdrawal takes to reach them, in one
run, side by side with raw nats-py doing the same work.

(1) Signatures through ``Declarations.sign``, each on a different State (the 193 UN Member
    States; more than 193 per round signs several declarations, State by State), the
    signatories' standings recorded first (not timed): sequential, and with 64 in flight.
    Raw: ``js.publish`` of a ``DeclarationSigned`` body with the same envelope headers to
    ``declarations.state.<STATE>.signed``, guarded by ``Nats-Expected-Last-Subject-Sequence``
    on the State's scope (``declarations.state.<STATE>.*``, the guard that makes one
    signature per State, as Agora's append is); sequential, and ``publish_async`` with 64
    pending. Rates are signatures per second, the median of ``--rounds``.
(2) Propagation lag of a withdrawal: ``ParticipantWithdrew`` appended to REGISTRATION while
    the declarations reactor runs, timed from the append's acknowledgement to the moment a
    core NATS subscription on ``declarations.participant.<id>.standing_recorded`` sees the
    standing recorded; p50/p99 over ``--withdrawals`` sequential withdrawals (each
    participant registered and approved first, not timed). Raw: a pull consumer on the same
    filter, one message at a time, that publishes a derived message (same envelope headers
    and scope guard) to that subject and then acknowledges: the same hop without Agora.

    .venv/bin/python bench/bench_signatures.py [--count 2000] [--rounds 3] [--withdrawals 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import nats.errors
from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, PubAck

from agora_declarations.application import Declarations
from agora_declarations.domain import RecordStanding, state_scope, text_hash
from agora_declarations.reactor import Reactor
from agora_events.catalogue import DomainEvent, catalogue
from agora_events.connection import connect
from agora_events.contracts import load_all
from agora_events.contracts.declarations import DeclarationSigned, ParticipantStandingRecorded
from agora_events.contracts.registration import (
    AccreditationApproved,
    ParticipantRegistered,
    ParticipantWithdrew,
)
from agora_events.contracts.states import member_states
from agora_events.nats_server import EmbeddedNats
from agora_events.reactor import FETCH_TIMEOUT
from agora_events.store import EventStore, Metadata
from agora_events.streams import ensure_streams
from agora_events.usecases import SYSTEM

IN_FLIGHT = 64
TEXT = "We, the Ministers, resolve to advance digital transformation.\n"
SHA256 = text_hash(TEXT)
LAG_TIMEOUT = 30.0
RUN = uuid.uuid4().hex[:6]
STATES = [state.alpha3 for state in member_states()]


def _guard(scope: str, last: int) -> dict[str, str]:
    return {
        "Nats-Expected-Last-Subject-Sequence": str(last),
        "Nats-Expected-Last-Subject-Sequence-Subject": scope,
    }


def _headers_of(store: EventStore, event: DomainEvent) -> dict[str, str]:
    """The envelope headers an Agora append of ``event`` carries (ids and times fixed once)."""
    [envelope] = store.envelopes_for([event], base_count=0, idempotency_key=None, metadata=META)
    return envelope.to_headers()


META = Metadata(actor="system", correlation_id=uuid.uuid4().hex, causation_id=uuid.uuid4().hex)


async def timed(work: Callable[[], Awaitable[None]], count: int) -> float:
    started = time.perf_counter()
    await work()
    return count / (time.perf_counter() - started)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# -- (1) signatures ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signing:
    declaration_id: str
    state: str


@dataclass(frozen=True, slots=True)
class RawSigning:
    state: str
    subject: str
    scope: str
    body: bytes
    headers: dict[str, str]


def signings(prefix: str, count: int) -> list[Signing]:
    """``count`` signatures, State by State: declaration 0 for every State, then 1, …"""
    declarations = math.ceil(count / len(STATES))
    every = (Signing(f"{prefix}-d{k}", s) for k in range(declarations) for s in STATES)
    return list(every)[:count]


class SignatureBench:
    def __init__(self, declarations: Declarations, store: EventStore, js: JetStreamContext):
        self.declarations = declarations
        self.store = store
        self.js = js
        self.signatories = {state: f"sig-{RUN}-{state}" for state in STATES}

    async def record_standings(self) -> None:
        for state, participant_id in self.signatories.items():
            command = RecordStanding(
                participant_id, f"Minister of {state}", None, "minister", state, "approved", 1
            )
            await self.declarations.record_standing(command, SYSTEM)

    async def open_declarations(self, items: list[Signing]) -> None:
        for declaration_id in dict.fromkeys(item.declaration_id for item in items):
            await self.declarations.draft(
                declaration_id, title="A bench declaration", edition_id="bench", launched_by="UZB"
            )
            await self.declarations.set_text(declaration_id, "en", TEXT)
            await self.declarations.open_for_signature(declaration_id)

    def raw_signings(self, items: list[Signing]) -> list[RawSigning]:
        """What raw publishes for ``items``: the same body and envelope headers as Agora's
        append (built before timing: raw is the floor)."""
        raw = []
        for item in items:
            event = DeclarationSigned(
                state=item.state,
                declaration_id=item.declaration_id,
                participant_id=self.signatories[item.state],
                signatory_name=f"Minister of {item.state}",
                capacity="minister",
                language="en",
                text_sha256=SHA256,
                signed_at=datetime.now(UTC),
            )
            raw.append(
                RawSigning(
                    item.state,
                    event.subject,
                    state_scope(item.state),
                    catalogue.encode(event),
                    _headers_of(self.store, event),
                )
            )
        return raw

    async def last_sequences(self) -> dict[str, int]:
        """Each State scope's last sequence, the other side's signatures caught up into the
        use cases' cache (not timed: raw and Agora write the same scopes in turn)."""
        last = {}
        for state in STATES:
            last[state] = (await self.declarations.states.load(state_scope(state))).last_sequence
        return last

    async def sign(self, item: Signing) -> None:
        outcome = await self.declarations.sign(
            item.declaration_id,
            item.state,
            participant_id=self.signatories[item.state],
            language="en",
            text_sha256=SHA256,
        )
        if outcome.signed_at is None:
            raise RuntimeError(f"{item} was not signed: {outcome}")

    async def agora_sequential(self, items: list[Signing]) -> None:
        for item in items:
            await self.sign(item)

    async def agora_concurrent(self, items: list[Signing]) -> None:
        queue = iter(items)

        async def worker() -> None:
            for item in queue:
                await self.sign(item)

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

    async def raw_sequential(self, items: list[RawSigning], last: dict[str, int]) -> None:
        for item in items:
            headers = item.headers | _guard(item.scope, last[item.state])
            ack: PubAck = await self.js.publish(item.subject, item.body, headers=headers)
            last[item.state] = ack.seq

    async def raw_concurrent(self, items: list[RawSigning], last: dict[str, int]) -> None:
        """``publish_async`` with 64 pending; a State's next signature names the sequence of
        its previous one, so it waits for that acknowledgement (193 publishes earlier, so in
        practice never)."""
        previous: dict[str, asyncio.Future[PubAck]] = {}
        for item in items:
            before = previous.get(item.state)
            if before is not None:
                last[item.state] = (await before).seq
            headers = item.headers | _guard(item.scope, last[item.state])
            previous[item.state] = await self.js.publish_async(
                item.subject, item.body, headers=headers
            )
        for state, ack in zip(previous, await asyncio.gather(*previous.values()), strict=True):
            last[state] = ack.seq


async def bench_signatures(
    declarations: Declarations, store: EventStore, js: JetStreamContext, count: int, rounds: int
) -> None:
    bench = SignatureBench(declarations, store, js)
    await bench.record_standings()
    kinds = ("agora_a", "raw_a", "agora_b", "raw_b")
    results: dict[str, list[float]] = {k: [] for k in kinds}
    for round_ in range(rounds):
        prefix = f"{RUN}r{round_}"
        agora = {case: signings(f"{prefix}{case}", count) for case in "ab"}
        raw = {case: bench.raw_signings(signings(f"{prefix}{case}-raw", count)) for case in "ab"}
        for items in agora.values():
            await bench.open_declarations(items)

        last = await bench.last_sequences()
        results["raw_a"].append(await timed(partial(bench.raw_sequential, raw["a"], last), count))
        await bench.last_sequences()
        results["agora_a"].append(await timed(partial(bench.agora_sequential, agora["a"]), count))
        last = await bench.last_sequences()
        results["raw_b"].append(await timed(partial(bench.raw_concurrent, raw["b"], last), count))
        await bench.last_sequences()
        results["agora_b"].append(await timed(partial(bench.agora_concurrent, agora["b"]), count))

    m = {k: statistics.median(v) for k, v in results.items()}
    per = math.ceil(count / len(STATES))
    print(
        f"(1) signatures, {count} per round ({len(STATES)} States x {per} declaration(s)), "
        f"median of {rounds} rounds, signatures/s"
    )
    print(
        "    raw = nats-py publishing the same body and envelope headers, guarded by "
        "Nats-Expected-Last-Subject-Sequence on declarations.state.<STATE>.*"
    )
    for case, label in (("a", "sequential  "), ("b", f"{IN_FLIGHT} in flight")):
        rates, floors = results[f"agora_{case}"], results[f"raw_{case}"]
        # Each round's ratio is taken within the round (raw and Agora one after the other),
        # which a machine shared with other work disturbs less than the rates.
        ratios = [a / r for a, r in zip(rates, floors, strict=True)]
        print(
            f"    {label}  agora {m[f'agora_{case}']:>7.0f}  raw {m[f'raw_{case}']:>7.0f}  "
            f"ratio agora/raw {statistics.median(ratios):.2f}   (per round: "
            + ", ".join(f"{a:.0f}/{r:.0f}" for a, r in zip(rates, floors, strict=True))
            + ")"
        )


# -- (2) withdrawal lag -----------------------------------------------------------------------


class Registration:
    """Writes participant events to REGISTRATION, as the registration service would."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.sequence = 0

    async def append(self, event: DomainEvent) -> int:
        self.sequence = (await self.store.append([event], expected=None)).last_sequence
        return self.sequence

    async def approved_participants(self, prefix: str, count: int) -> list[str]:
        ids = [f"{prefix}{i}" for i in range(count)]
        for i, participant_id in enumerate(ids):
            await self.append(
                ParticipantRegistered(
                    participant_id=participant_id,
                    name=f"Minister {i}",
                    email=f"{participant_id}@example.org",
                    category="minister",
                    delegation=STATES[i % len(STATES)],
                )
            )
            await self.append(AccreditationApproved(participant_id=participant_id))
        return ids


async def lags_of(nc: NATS, registration: Registration, participants: list[str]) -> list[float]:
    """Seconds from each withdrawal's acknowledgement to its standing recorded, one at a
    time."""
    loop = asyncio.get_running_loop()
    lags = []
    for participant_id in participants:
        seen: asyncio.Future[float] = loop.create_future()

        async def on_message(msg: Msg, seen: asyncio.Future[float] = seen) -> None:
            if not seen.done():
                seen.set_result(time.perf_counter())

        subject = f"declarations.participant.{participant_id}.standing_recorded"
        subscription = await nc.subscribe(subject, cb=on_message)
        await nc.flush()
        await registration.append(ParticipantWithdrew(participant_id=participant_id))
        acknowledged = time.perf_counter()
        try:
            lags.append(await asyncio.wait_for(seen, LAG_TIMEOUT) - acknowledged)
        finally:
            await subscription.unsubscribe()
    return lags


async def agora_lag(
    url: str, client: NATS, store: EventStore, declarations: Declarations, withdrawals: int
) -> list[float]:
    """The declarations reactor on a FastStream broker of its own, as ``main.py`` wires it."""
    registration = Registration(EventStore(client, source="/bench/registration"))
    broker = NatsBroker(url, log_level=logging.DEBUG)
    reactor = Reactor(broker, store, declarations, name=f"bench-{RUN}")
    broker.include_router(reactor.router)
    await broker.start()
    try:
        participants = await registration.approved_participants(f"wa{RUN}", withdrawals)
        await reactor.wait_for(registration.sequence, timeout=600)
        return await lags_of(client, registration, participants)
    finally:
        await broker.stop()


async def raw_hop(
    js: JetStreamContext, store: EventStore, ready: asyncio.Event, stop: asyncio.Event
) -> None:
    """Fetch one message at a time, publish a derived message (the envelope headers and the
    scope guard an Agora append carries), wait for its acknowledgement, then ack. Stops at
    ``stop`` (nats-py's ``fetch`` can swallow a cancellation: the loop must see the flag)."""
    config = ConsumerConfig(
        durable_name=f"bench-raw-{RUN}",
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=60.0,
        max_ack_pending=1,
        filter_subject="registration.participant.>",
    )
    subscription = await js.pull_subscribe(
        "registration.participant.>",
        durable=config.durable_name,
        stream="REGISTRATION",
        config=config,
    )
    template = ParticipantStandingRecorded(
        participant_id="x",
        name="x",
        category="minister",
        status="withdrawn",
        registration_sequence=1,
    )
    headers = _headers_of(store, template)
    ready.set()
    try:
        while not stop.is_set():
            try:
                messages: list[Msg] = await subscription.fetch(1, timeout=FETCH_TIMEOUT)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                event: dict[str, Any] = json.loads(message.data)
                participant_id = str(event["participant_id"])
                derived = {
                    "participant_id": participant_id,
                    "status": "withdrawn",
                    "registration_sequence": message.metadata.sequence.stream,
                }
                scope = f"declarations.participant.{participant_id}.*"
                await js.publish(
                    f"declarations.participant.{participant_id}.standing_recorded",
                    json.dumps(derived).encode(),
                    headers=headers | {"ce-subject": participant_id} | _guard(scope, 0),
                )
                await message.ack()
    finally:
        await subscription.unsubscribe()


async def raw_lag(url: str, client: NATS, store: EventStore, withdrawals: int) -> list[float]:
    registration = Registration(EventStore(client, source="/bench/registration"))
    participants = await registration.approved_participants(f"wr{RUN}", withdrawals)
    hop = await connect(url, name="bench-raw-hop")
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(raw_hop(hop.jetstream(), store, ready, stop))
    try:
        await asyncio.wait_for(ready.wait(), LAG_TIMEOUT)
        return await lags_of(client, registration, participants)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await hop.close()


async def bench_lag(
    url: str, client: NATS, store: EventStore, declarations: Declarations, withdrawals: int
) -> None:
    agora = await agora_lag(url, client, store, declarations, withdrawals)
    raw = await raw_lag(url, client, store, withdrawals)
    print(
        f"(2) withdrawal in REGISTRATION -> standing recorded in DECLARATIONS, "
        f"{withdrawals} sequential withdrawals, ms from the append's acknowledgement"
    )
    print("    raw = a nats-py pull consumer (one at a time) publishing a derived message")
    for q in (50, 99):
        a, r = percentile(agora, q) * 1000, percentile(raw, q) * 1000
        print(f"    p{q}  agora {a:>7.2f}  raw {r:>7.2f}  ratio agora/raw {a / r:.2f}")
    print(f"    max  agora {max(agora) * 1000:>7.2f}  raw {max(raw) * 1000:>7.2f}")


async def run(url: str, count: int, rounds: int, withdrawals: int) -> None:
    load_all()
    service = await connect(url, name="bench-declarations")
    client = await connect(url, name="bench-client")
    try:
        await ensure_streams(client.jetstream())
        store = EventStore(service, source="/bench")
        declarations = Declarations(store)
        js = client.jetstream(publish_async_max_pending=IN_FLIGHT)
        if count > 0 and rounds > 0:
            await bench_signatures(declarations, store, js, count, rounds)
        if withdrawals > 1:
            await bench_lag(url, client, store, declarations, withdrawals)
    finally:
        await client.close()
        await service.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000, help="signatures per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--withdrawals", type=int, default=300, help="0 skips part (2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store, EmbeddedNats(Path(store)) as server:
        asyncio.run(run(server.url, args.count, args.rounds, args.withdrawals))


if __name__ == "__main__":
    main()
