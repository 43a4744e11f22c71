"""Kill -9 in the middle of a batch, restart: nothing skipped, nothing applied twice."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.rebuild import replay
from agora_events.store import EventStore

from ..counter import CounterOpened, Incremented, registry
from .crash_child import BATCH
from .helpers import append
from .model import counter_projection, fold, read_rows

LIBS_EVENTS = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


async def start_child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.projections.crash_child",
        *args,
        cwd=LIBS_EVENTS,
        stdout=asyncio.subprocess.PIPE,
    )


async def read_line(child: asyncio.subprocess.Process) -> str:
    assert child.stdout is not None
    # A bound on a broken child, not a synchronisation: the line comes when it is there.
    line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
    return line.decode().strip()


async def test_a_runner_killed_mid_batch_resumes_without_skipping_or_repeating(
    tmp_path: Path, store: EventStore, nats_client: NATS, nats_url: str
) -> None:
    counters = [CounterOpened(counter_id=f"c{i}") for i in range(3)]
    increments = [Incremented(counter_id=f"c{i % 3}", tag=f"t{i}") for i in range(50)]
    increments[44 - len(counters)] = Incremented(counter_id="c1", tag="block")  # sequence 45
    log = await append(store, *counters, *increments)
    assert log[44][1] == Incremented(counter_id="c1", tag="block")
    db_path = tmp_path / "crash.db"

    child = await start_child(nats_url, str(db_path), "block")
    try:
        # Two batches of 20 are committed; the third is four events in when it blocks.
        assert await read_line(child) == f"blocked {log[44][0]}"
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    projection = counter_projection()
    db = ReadModelDatabase(f"sqlite+aiosqlite:///{db_path}")
    try:
        assert await read_rows(db, projection) == fold(log[: 2 * BATCH])
    finally:
        await db.dispose()

    child = await start_child(nats_url, str(db_path), "finish", str(log[-1][0]))
    try:
        assert await read_line(child) == "caught up"
    finally:
        await child.wait()
    assert child.returncode == 0

    db = ReadModelDatabase(f"sqlite+aiosqlite:///{db_path}")
    clean = ReadModelDatabase(f"sqlite+aiosqlite:///{tmp_path / 'clean.db'}")
    try:
        await replay(nats_client, clean, [projection], registry=registry)
        recovered = await read_rows(db, projection)
        assert recovered == await read_rows(clean, projection)
        assert recovered == fold(log)
    finally:
        await db.dispose()
        await clean.dispose()
