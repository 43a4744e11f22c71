"""The register → read-your-write flow of ``bench_http.py``, in one process and one at a time:
registration's ASGI app is called directly (no sockets, no generator), after the service
shell has started it on an embedded nats-server with an SQLite read model, logging and
tracing configured as ``main`` configures them. It prints the event loop thread's CPU per
flow, which a shared machine disturbs far less than it disturbs rates.

    .venv/bin/python bench/http_inprocess.py [--flows 300] [--rounds 3] [--warmup 100]

``--instructions`` counts instead of timing: it runs the flows under valgrind's callgrind
twice at once (30 and 130 flows, one round each) and prints the difference in the main
thread's instructions per flow, which is the same from run to run within about 1 % whatever
else the machine is doing. It takes about two minutes.

A flow here is one ``POST /participants`` and one ``GET /participants/{id}?after=``; the
projection applies each registration as a batch of its own (under load, batches grow and
share that cost), so this is the cost of a flow on an idle service. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, TextIO, cast

from agora_events.connection import connect
from agora_events.logs import configure_logging
from agora_events.nats_server import EmbeddedNats
from agora_events.service import running
from agora_events.streams import ensure_streams
from agora_events.tracing import configure_tracing
from agora_registration.main import REGISTRATION
from agora_registration.settings import RegistrationSettings

Message = MutableMapping[str, Any]
App = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


Headers = tuple[tuple[bytes, bytes], ...]


async def call(
    app: App, method: str, target: str, body: bytes = b"", headers: Headers = ()
) -> tuple[int, bytes]:
    """One request straight into the ASGI app, as uvicorn would hand it over."""
    path, _, query = target.partition("?")
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    delivered = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never goes away mid-request here
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def flow(app: App, number: int) -> None:
    body = json.dumps(
        {
            "name": f"Participant {number}",
            "email": f"person.{number}@example.org",
            "category": "delegate",
            "delegation": "UZB",
        }
    ).encode()
    status, data = await call(app, "POST", "/participants", body)
    if status != 201:
        raise SystemExit(f"register answered {status}: {data[:300]!r}")
    answer = json.loads(data)
    target = f"/participants/{answer['ids']['participant_id']}?after={answer['sequence']}"
    token = f"Bearer {answer['participant_token']}".encode()
    status, data = await call(app, "GET", target, headers=((b"authorization", token),))
    if status != 200:
        raise SystemExit(f"the read answered {status}: {data[:300]!r}")


async def measure(flows: int, rounds: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory() as name, EmbeddedNats(Path(name) / "nats") as nats:
        nc = await connect(nats.url, name="bench-inprocess")
        await ensure_streams(nc.jetstream())
        await nc.close()
        settings = RegistrationSettings(
            nats_url=nats.url, database_url=f"sqlite+aiosqlite:///{name}/registration.db"
        )
        async with running(REGISTRATION, settings) as runtime:
            app: App = runtime.app
            for number in range(warmup):
                await flow(app, number)
            for round_ in range(rounds):
                cpu, wall = time.thread_time(), time.perf_counter()
                for number in range(flows):
                    await flow(app, warmup + round_ * flows + number)
                cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                print(
                    f"loop CPU per flow {cpu / flows * 1000:.2f} ms  "
                    f"wall per flow {wall / flows * 1000:.2f} ms",
                    flush=True,
                )


def count_instructions() -> None:
    """Two runs under callgrind at once, 30 and 130 flows after a warm-up of 20: the
    difference between their main threads' totals is what 100 flows cost, start-up aside."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        runs = {
            flows: subprocess.Popen(
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--separate-threads=yes",
                    f"--callgrind-out-file={folder}/callgrind.{flows}.%p",
                    sys.executable,
                    __file__,
                    *("--flows", str(flows), "--rounds", "1", "--warmup", "20"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for flows in (30, 130)
        }
        totals = {}
        for flows, run in runs.items():
            if run.wait() != 0:
                raise SystemExit(f"the run of {flows} flows under valgrind failed")
            [main_thread] = folder.glob(f"callgrind.{flows}.*-01")
            found = re.search(r"^summary: (\d+)", main_thread.read_text(), re.MULTILINE)
            if found is None:
                raise SystemExit(f"no summary line in {main_thread}")
            totals[flows] = int(found.group(1))
    print(f"main-thread instructions per flow: {(totals[130] - totals[30]) / 100:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--instructions", action="store_true", help="count under callgrind (ignores the rest)"
    )
    args = parser.parse_args()
    # As a service's main does; the lines go to /dev/null, formatted and written all the same.
    configure_logging()
    sink = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    cast(logging.StreamHandler[TextIO], logging.getLogger().handlers[0]).setStream(sink)
    configure_tracing(REGISTRATION.process_name)
    if args.instructions:
        count_instructions()
    else:
        asyncio.run(measure(args.flows, args.rounds, args.warmup))


if __name__ == "__main__":
    main()
