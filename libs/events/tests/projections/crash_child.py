"""A projection runner in a process of its own, for the kill -9 test.

python -m tests.projections.crash_child NATS_URL DB_PATH block
    runs until killed; prints "blocked <sequence>" when a handler reaches the event
    tagged "block", in the middle of a batch, and hangs there.
python -m tests.projections.crash_child NATS_URL DB_PATH finish SEQUENCE
    runs until the read model reaches SEQUENCE, prints "caught up" and exits.
"""

from __future__ import annotations

import asyncio
import sys

import nats

from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.runner import ProjectionRunner, RunnerOptions

from ..counter import registry
from .model import Switches, counter_projection

BATCH = 20


def announce(sequence: int) -> None:
    print(f"blocked {sequence}", flush=True)


async def main(nats_url: str, db_path: str, mode: str, target: int) -> None:
    nc = await nats.connect(nats_url)
    switches = Switches(block_tag="block" if mode == "block" else None, on_block=announce)
    projection = counter_projection(switches=switches)
    db = ReadModelDatabase(f"sqlite+aiosqlite:///{db_path}")
    await db.prepare([projection])
    options = RunnerOptions(batch_size=BATCH, retry_delay=0)
    runner = ProjectionRunner(
        nc, db, [projection], consumer_prefix="crash", registry=registry, options=options
    )
    await runner.start()
    if mode == "block":
        await asyncio.Event().wait()  # until SIGKILL
    await runner.wait_for(target, stream="AGENDA", timeout=60)
    print("caught up", flush=True)
    await runner.stop()
    await db.dispose()
    await nc.close()


if __name__ == "__main__":
    url, path, mode, *rest = sys.argv[1:]
    asyncio.run(main(url, path, mode, int(rest[0]) if rest else 0))
