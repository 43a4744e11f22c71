"""Small helpers shared by the projection tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from nats.aio.client import Client as NATS

from agora_events.catalogue import DomainEvent
from agora_events.envelope import Envelope
from agora_events.projections import Projection
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.runner import ProjectionRunner, RunnerOptions
from agora_events.store import EventStore

from ..counter import registry

# No backoff between handler attempts and short pauses: tests wait on conditions, not time.
FAST = RunnerOptions(retry_delay=0, error_pause=0.05, standby_pause=0.05, fetch_wait=1.0)


async def append(store: EventStore, *events: DomainEvent) -> list[tuple[int, DomainEvent]]:
    """Append each event on its own; returns (sequence, event) pairs."""
    appended = []
    for event in events:
        result = await store.append([event], expected=None)
        appended.append((result.last_sequence, event))
    return appended


async def append_unknown(nc: NATS, counter_id: str) -> int:
    """An event of a type no registry knows, as a newer producer might write it."""
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source="/test",
        type="agora.agenda.counter.exploded.v1",
        time=datetime.now(UTC),
        data=json.dumps({"counter_id": counter_id}).encode(),
        subject=counter_id,
    )
    ack = await nc.jetstream().publish(
        f"agenda.counter.{counter_id}.exploded", envelope.data, headers=envelope.to_headers()
    )
    return int(ack.seq)


def runner_for(
    nc: NATS,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    options: RunnerOptions = FAST,
    prefix: str = "test",
) -> ProjectionRunner:
    return ProjectionRunner(
        nc, db, projections, consumer_prefix=prefix, registry=registry, options=options
    )


@asynccontextmanager
async def running(
    nc: NATS,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    options: RunnerOptions = FAST,
) -> AsyncIterator[ProjectionRunner]:
    runner = runner_for(nc, db, projections, options)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()
