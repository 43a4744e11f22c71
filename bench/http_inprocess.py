"""The register → read-your-write flow of ``bench_http.py``, in one process and one at a time:
registration's ASGI app is called directly (no sockets, no generator), after the service
shell has started it on an embedded nats-server with an SQLite read model, logging and
tracing configured as ``main`` configures them. It prints the event loop thread's CPU per
flow, which a shared machine disturbs far less than it disturbs rates.

    .venv/bin/python bench/http_inprocess.py [--flows 300] [--rounds 3] [--warmup 100]
        [--routes fastapi|plain|both] [--instructions]

``--instructions`` counts instead of timing: it runs the flows under valgrind's callgrind
twice at once (30 and 130 flows, one round each) and prints the difference in the main
thread's instructions per flow, which is the same from run to run within about 1 % whatever
else the machine is doing. It takes about two minutes.

``--routes plain`` answers the same two routes with plain ASGI handlers inside the same
middleware (tracing, admission), doing the same work
(the same pydantic models, use case, token check, wait and query, and no more): the
difference is what FastAPI's request handling costs those two routes. ``--routes both``
alternates the two round by round; with ``--instructions``, give ``fastapi`` or ``plain``. The
handlers are a measuring device, not a path of the service: they skip its error mapping and
its headers.

A flow here is one ``POST /participants`` and one ``GET /participants/{id}?after=``; the
projection applies each registration as a batch of its own (under load, batches grow and
share that cost), so this is the cost of a flow on an idle service. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
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
from typing import TYPE_CHECKING, Any, TextIO, cast

from agora_events.connection import connect
from agora_events.http import AdmissionControl, accepted
from agora_events.logs import configure_logging
from agora_events.nats_server import EmbeddedNats
from agora_events.service import running
from agora_events.streams import ensure_streams
from agora_events.tokens import participant_token
from agora_events.tracing import TraceMiddleware, configure_tracing
from agora_events.usecases import Caller
from agora_registration import queries
from agora_registration.api import RegisterRequest, RegistrationAccepted
from agora_registration.application import Registration
from agora_registration.main import REGISTRATION
from agora_registration.settings import RegistrationSettings

if TYPE_CHECKING:
    from agora_events.service import Runtime

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


def plain_routes(runtime: Runtime[RegistrationSettings, Registration]) -> App:
    """The flow's two routes as plain ASGI handlers in the service's own middleware."""
    secret = runtime.settings.participant_token_secret.get_secret_value()
    limit = runtime.settings.max_requests_in_flight

    async def answer(send: Callable[[Message], Awaitable[None]], status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def register(receive: Callable[[], Awaitable[Message]]) -> bytes:
        body = RegisterRequest.model_validate_json((await receive())["body"])
        outcome = await runtime.commands.register(
            name=body.name,
            email=body.email,
            category=body.category,
            delegation=body.delegation,
            organisation=body.organisation,
            title=body.title,
            language=body.language,
            caller=Caller().acting_as("registrant"),
        )
        token = participant_token(secret, outcome.ids["participant_id"])
        made = RegistrationAccepted(**accepted(outcome).model_dump(), participant_token=token)
        return made.model_dump_json().encode()

    async def participant(scope: Message) -> bytes:
        participant_id = scope["path"].rsplit("/", 1)[1]
        after = int(scope["query_string"].partition(b"after=")[2])
        given = dict(scope["headers"]).get(b"authorization", b"").removeprefix(b"Bearer ")
        if not hmac.compare_digest(given, participant_token(secret, participant_id).encode()):
            raise SystemExit("the plain read refused the participant's own token")
        await runtime.refuse_while_building()
        await runtime.wait_for(after)
        async with runtime.db.connect() as db:
            detail = await queries.participant(db, participant_id)
        return detail.model_dump_json().encode()

    async def routes(
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["method"] == "POST":
            await answer(send, 201, await register(receive))
        else:
            await answer(send, 200, await participant(scope))

    return cast(App, TraceMiddleware(AdmissionControl(cast(Any, routes), limit=limit)))


async def measure(flows: int, rounds: int, warmup: int, routes: str = "fastapi") -> None:
    with tempfile.TemporaryDirectory() as name, EmbeddedNats(Path(name) / "nats") as nats:
        nc = await connect(nats.url, name="bench-inprocess")
        await ensure_streams(nc.jetstream())
        await nc.close()
        settings = RegistrationSettings(
            nats_url=nats.url, database_url=f"sqlite+aiosqlite:///{name}/registration.db"
        )
        async with running(REGISTRATION, settings) as runtime:
            apps: dict[str, App] = {}
            if routes in ("fastapi", "both"):
                apps["FastAPI"] = runtime.app
            if routes in ("plain", "both"):
                apps["plain routes"] = plain_routes(runtime)
            for number in range(warmup):
                await flow(runtime.app, number)
            done = warmup  # flows so far: each registers a new participant
            for _ in range(rounds):
                for label, app in apps.items():
                    cpu, wall = time.thread_time(), time.perf_counter()
                    for number in range(done, done + flows):
                        await flow(app, number)
                    done += flows
                    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                    print(
                        f"{label}:  loop CPU per flow "
                        f"{cpu / flows * 1000:.2f} ms  wall per flow {wall / flows * 1000:.2f} ms",
                        flush=True,
                    )


def count_instructions(routes: str) -> None:
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
                    *("--routes", routes),
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
    parser.add_argument(
        "--routes",
        choices=("fastapi", "plain", "both"),
        default="fastapi",
        help="the service's app, the two routes as plain ASGI handlers, or each in turn",
    )
    args = parser.parse_args()
    # As a service's main does; the lines go to /dev/null, formatted and written all the same.
    configure_logging()
    sink = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    cast(logging.StreamHandler[TextIO], logging.getLogger().handlers[0]).setStream(sink)
    configure_tracing(REGISTRATION.process_name)
    if args.instructions:
        if args.routes == "both":
            raise SystemExit("--instructions counts one app: --routes fastapi or plain")
        count_instructions(args.routes)
    else:
        asyncio.run(measure(args.flows, args.rounds, args.warmup, args.routes))


if __name__ == "__main__":
    main()
