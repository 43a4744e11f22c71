"""End to end over real HTTP: uvicorn on a free port, a real nats-server, a real database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from sqlalchemy import select

from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.runner import ProjectionRunner
from agora_events.service import http_server
from agora_registration.main import projections
from agora_registration.states import all_states

if TYPE_CHECKING:
    from tests.conftest import Agenda, Service

CROWD = 200
CAPACITY = 150
# Requests in flight at once: all 200 people act at the same time, over this many connections
# (httpx's pool spends quadratic time on requests queued inside it, so they queue here).
CONNECTIONS = 24
WITHIN = 60.0  # seconds a request may take on a loaded machine before the test gives up


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The service's app served by uvicorn on a socket bound before the server starts, so
    the first request waits in the listen backlog rather than on a timer. (IPPROTO_TCP, so
    that asyncio sets TCP_NODELAY on accepted connections, as it does on sockets it makes.)"""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    server = http_server(service.app, "127.0.0.1", port)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    limits = httpx.Limits(max_connections=CONNECTIONS)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=WITHIN
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await serving
        listener.close()


async def rows(db: ReadModelDatabase) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    async with db.session() as session:
        for projection in projections():
            for table in projection.tables:
                query = select(table).order_by(*table.primary_key.columns)
                found[table.name] = [tuple(row) for row in await session.execute(query)]
    return found


async def test_two_hundred_people_register_enrol_past_capacity_and_a_withdrawal_promotes(
    http: httpx.AsyncClient,
    service: Service,
    agenda: Agenda,
    nats_client: NatsClient,
    tmp_path: Path,
) -> None:
    organiser = {"Authorization": "Bearer local-organiser-token"}
    await agenda.room("ws-room-3", CAPACITY)
    await agenda.workshop("ws3-s1", "ws-room-3", agenda.at(14), agenda.at(15, 30))
    assert service.reactor is not None
    await service.reactor.wait_for(agenda.sequence)

    codes = sorted(all_states())
    connections = asyncio.Semaphore(CONNECTIONS)

    async def post(path: str, **options: Any) -> httpx.Response:
        async with connections:
            return await http.post(path, **options)

    async def register(n: int) -> tuple[str, dict[str, str]]:
        response = await post(
            "/participants",
            json={
                "name": f"Delegate {n}",
                "email": f"delegate.{n}@example.org",
                "category": "delegate",
                "delegation": codes[n % len(codes)],
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["ids"]["participant_id"], {
            "Authorization": f"Bearer {body['participant_token']}"
        }

    people = await asyncio.gather(*(register(n) for n in range(CROWD)))
    assert len({pid for pid, _ in people}) == CROWD

    async def approve(pid: str) -> None:
        response = await post(f"/participants/{pid}/approve", headers=organiser)
        assert response.status_code == 200, response.text

    await asyncio.gather(*(approve(pid) for pid, _ in people))

    async def enrol(pid: str, own: dict[str, str]) -> dict[str, Any]:
        response = await post(
            f"/participants/{pid}/enrolments", json={"session_id": "ws3-s1"}, headers=own
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    answers = await asyncio.gather(*(enrol(pid, own) for pid, own in people))
    enrolled = [a["ids"]["participant_id"] for a in answers if a["status"] == "enrolled"]
    waiting = sorted(
        (a["position"], a["ids"]["participant_id"]) for a in answers if a["status"] == "waitlisted"
    )
    assert len(enrolled) == CAPACITY
    assert [position for position, _ in waiting] == list(range(1, CROWD - CAPACITY + 1))
    first_in_line = waiting[0][1]

    leaver = enrolled[17]
    own = dict(people)[leaver]
    withdrawn = await http.post(f"/participants/{leaver}/withdraw", headers=own)
    assert withdrawn.status_code == 200, withdrawn.text
    assert "agora.registration.enrolment.promoted.v1" in withdrawn.json()["events"]

    lists = await http.get(
        "/sessions/ws3-s1", params={"after": withdrawn.json()["sequence"]}, headers=organiser
    )
    roster = [entry["participant_id"] for entry in lists.json()["roster"]]
    waitlist = [entry["participant_id"] for entry in lists.json()["waitlist"]]
    assert len(roster) == CAPACITY
    assert leaver not in roster
    assert roster[-1] == first_in_line
    assert waitlist == [pid for _, pid in waiting[1:]]
    promoted = await http.get(f"/participants/{first_in_line}", headers=organiser)
    assert promoted.json()["places"][0]["status"] == "enrolled"
    counts = (await http.get("/counts", headers=organiser)).json()
    assert counts["by_status"] == {"approved": CROWD - 1, "withdrawn": 1}

    # The read model equals one rebuilt from sequence 0 into a fresh SQLite database.
    await service.reactor.wait_for(withdrawn.json()["sequence"], stream="REGISTRATION")
    last = (await nats_client.jetstream().stream_info("REGISTRATION")).state.last_seq
    await service.projections.wait_for(last, stream="REGISTRATION", timeout=30)
    fresh = ReadModelDatabase(f"sqlite+aiosqlite:///{tmp_path}/rebuilt.db", durable=False)
    await fresh.prepare(projections())
    rebuilder = ProjectionRunner(nats_client, fresh, projections(), consumer_prefix="rebuild")
    await rebuilder.start()
    try:
        await rebuilder.wait_for(last, stream="REGISTRATION", timeout=30)
        live, rebuilt = await rows(service.db), await rows(fresh)
    finally:
        await rebuilder.stop()
        await fresh.dispose()
    assert {name: len(found) for name, found in live.items()} == {
        "registration_participants": CROWD,
        "registration_passages": 0,
        "registration_sessions": 1,
        "registration_places": CROWD - 1,
    }
    assert live == rebuilt


# -- the process ---------------------------------------------------------------------------


def _environment(nats_url: str, tmp_path: Path, port: int = 0) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    return environment | {
        "AGORA_NATS_URL": nats_url,
        "AGORA_REGISTRATION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/registration.db",
        "AGORA_REGISTRATION_HTTP_PORT": str(port),
    }


def _run(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agora_registration.main", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_demo_seeds_the_roundtable_into_a_log_without_it_only(
    nats_client: NatsClient, nats_url: str, tmp_path: Path
) -> None:
    environment = _environment(nats_url, tmp_path)
    first = await asyncio.to_thread(_run, ["demo"], environment)
    assert first.returncode == 0, first.stderr
    assert "16 roundtable participants; 16 newly registered, 16 newly approved" in first.stdout
    again = await asyncio.to_thread(_run, ["demo"], environment)
    assert again.returncode == 0, again.stderr
    assert "left as it is: the log already holds 16 of the 16" in again.stdout
    info = await nats_client.jetstream().stream_info("REGISTRATION")
    assert info.state.messages == 16 * 2  # registered, approved (with its badge)


async def test_serves_until_sigterm_then_exits_cleanly(
    nats_client: NatsClient, nats_url: str, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agora_registration.main",
        "serve",
        env=_environment(nats_url, tmp_path, port),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        lines = []
        async for line in process.stderr:  # the log says when uvicorn is listening
            lines.append(line.decode())
            if b"Uvicorn running on" in line:
                break
        else:
            pytest.fail("the service exited before serving:\n" + "".join(lines))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=WITHIN) as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
