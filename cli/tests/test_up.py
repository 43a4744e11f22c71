"""``agora up`` as a person runs it: a real process tree, real signals, the CLI beside it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from agora_events import contracts
from agora_events.connection import connect
from agora_events.nats_server import EmbeddedNats, free_port
from agora_events.store import EventStore

pytestmark = pytest.mark.slow

READY = re.compile(r"^ready\.")
NATS_LINE = re.compile(r"^nats\s+(nats://\S+)")
SERVICE_LINE = re.compile(r"^([a-z]+)\s+(http://\S+)")
DEMO_LINE = re.compile(r"^demo\s+([a-z]+)\s+(.*)$")
ORGANISER = {"Authorization": "Bearer local-organiser-token"}
WAIT = 30.0


def environment() -> dict[str, str]:
    """This process's environment without anything that would point the CLI elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("AGORA_NATS_URL", "AGORA_HOME")}
    return {**env, "PYTHONUNBUFFERED": "1"}


class Platform:
    """``agora up`` run in ``cwd``; on ``home`` when given, else on ``cwd/.agora``."""

    def __init__(self, cwd: Path, home: Path | None = None) -> None:
        home_args = ["--home", str(home)] if home else []
        self.home = home or cwd / ".agora"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agora_cli.main", "up", *home_args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment(),
        )
        self.lines: list[str] = []
        self.nats_url = ""
        self.services: dict[str, str] = {}
        self.demo: dict[str, str] = {}

    def wait_until_ready(self) -> Platform:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if match := NATS_LINE.match(line):
                self.nats_url = match.group(1)
            if match := SERVICE_LINE.match(line):
                self.services[match.group(1)] = match.group(2)
            if match := DEMO_LINE.match(line):
                self.demo[match.group(1)] = match.group(2)
            if READY.match(line):
                return self
        raise AssertionError("agora up ended before it was ready:\n" + "\n".join(self.lines))

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self) -> None:
        children = self.tree()
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=WAIT) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"left behind: {[p.cmdline() for p in alive]}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def agora(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``agora`` command as a person types it in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "agora_cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment(),
        timeout=WAIT,
    )


def command_line(process: psutil.Process) -> str:
    """What a process runs; empty for one that ended meanwhile (a finished demo task is a
    zombie until ``agora up`` reaps it)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""


def nats_servers_on(home: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if any("nats-server" in part for part in command) and str(home / "nats") in command:
            found.append(process)
    return found


@contextlib.contextmanager
def port_4222_taken() -> Iterator[None]:
    """Something else on 4222, as on a machine that runs its own NATS: a listener of ours,
    unless one is there already."""
    with socket.socket() as listener:
        try:
            listener.bind(("127.0.0.1", 4222))
            listener.listen()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
        assert free_port(4222) != 4222
        yield


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform for the tests that only look at it: started in a folder of its own, on
    its default home, while 4222 is taken by something else."""
    cwd = tmp_path_factory.mktemp("shared")
    with port_4222_taken():
        running = Platform(cwd)
        try:
            yield running.wait_until_ready()
        finally:
            running.kill()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path, tmp_path / "agora-home")
    try:
        yield running
    finally:
        running.kill()


async def nats_answers(url: str) -> bool:
    nc = await connect(url, name="test-up")
    try:
        info = await nc.jetstream().stream_info("AGENDA")
        return info.config.name == "AGENDA"
    finally:
        await nc.close()


def test_children_die_with_a_killed_runner(platform: Platform) -> None:
    platform.wait_until_ready()
    children = platform.tree()
    assert children
    platform.process.kill()
    platform.process.wait()
    _, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], f"orphans: {[p.cmdline() for p in alive]}"


def test_a_taken_port_is_not_reused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert free_port(port) != port
    assert free_port(port) == port


def test_a_second_up_on_the_same_home_is_refused_before_it_starts_anything(
    shared: Platform,
) -> None:
    second = agora("up", cwd=shared.home.parent)
    assert second.returncode != 0
    assert f"pid {shared.process.pid}" in second.stderr, second.stderr
    assert shared.nats_url in second.stderr
    assert second.stdout == ""  # not one line about starting something
    assert [p.pid for p in nats_servers_on(shared.home)] == [
        c.pid for c in shared.tree() if "nats-server" in command_line(c)
    ]


def test_the_cli_finds_the_platform_through_endpoints_json_when_4222_is_someone_elses(
    shared: Platform,
) -> None:
    assert not shared.nats_url.endswith(":4222")
    endpoints = json.loads((shared.home / "endpoints.json").read_text())
    assert endpoints["nats_url"] == shared.nats_url
    assert endpoints["pid"] == shared.process.pid
    assert {n: s["url"] for n, s in endpoints["services"].items()} == shared.services

    info = agora("streams", "info", cwd=shared.home.parent)
    assert info.returncode == 0, info.stderr
    for stream in ("REGISTRATION", "AGENDA", "DECLARATIONS", "NOTIFICATIONS"):
        assert re.search(rf"^{stream}\s+\S+\s+\d+", info.stdout, re.MULTILINE), info.stdout
    assert "missing" not in info.stdout


def test_status_lists_what_runs_where(shared: Platform) -> None:
    status = agora("status", cwd=shared.home.parent)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"running, 'agora up' pid {shared.process.pid}" in status.stdout
    for name, url in [("nats", shared.nats_url), *shared.services.items()]:
        assert re.search(rf"^{name}\s+{re.escape(url)}\s+\d+\s+ready$", status.stdout, re.M), (
            status.stdout
        )


def test_a_server_without_agoras_streams_is_named_not_advised_to_init(
    shared: Platform, tmp_path: Path
) -> None:
    other = EmbeddedNats(tmp_path / "other").start()
    try:
        info = agora("streams", "--nats-url", other.url, "info", cwd=shared.home.parent)
    finally:
        other.stop()
    assert info.returncode != 0
    assert f"the server at {other.url}" in info.stderr
    assert "holds none of Agora's streams" in info.stderr
    assert f"not the local platform's: 'agora up' runs its NATS at {shared.nats_url}" in (
        info.stderr
    )


async def first_session(nats_url: str) -> tuple[str, datetime]:
    contracts.load_all()
    nc = await connect(nats_url, name="test-up")
    try:
        scheduled = await EventStore(nc).read("agenda.session.*.scheduled")
        event = scheduled[0].event
        return str(event.session_id), event.starts_at  # type: ignore[attr-defined]
    finally:
        await nc.close()


async def agenda_log(nats_url: str, session_id: str) -> tuple[int, str, object]:
    """The AGENDA stream's last sequence and the session's last event (subject, event)."""
    contracts.load_all()
    nc = await connect(nats_url, name="test-up")
    try:
        last = (await nc.jetstream().stream_info("AGENDA")).state.last_seq
        history = await EventStore(nc).read(f"agenda.session.{session_id}.*")
        return last, history[-1].subject, history[-1].event
    finally:
        await nc.close()


def request(method: str, url: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    headers = {**ORGANISER, "Content-Type": "application/json"}
    with urllib.request.urlopen(
        urllib.request.Request(url, data=data, method=method, headers=headers), timeout=10
    ) as response:
        return json.loads(response.read())


def session_starts_at(url: str, session_id: str, expected: datetime) -> bool:
    with contextlib.suppress(OSError):
        found = request("GET", f"{url}/sessions/{session_id}?draft=true")
        assert isinstance(found, dict)
        return datetime.fromisoformat(found["starts_at"]) == expected
    return False


def eventually(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigterm_leaves_no_process_and_a_restart_keeps_changes_and_ports(tmp_path: Path) -> None:
    first = Platform(tmp_path)
    try:
        first.wait_until_ready()
        assert asyncio.run(nats_answers(first.nats_url))
        assert any("nats-server" in command_line(c) for c in first.tree())
        assert first.demo["agenda"].startswith("imported edition"), first.lines
        session_id, starts_at = asyncio.run(first_session(first.nats_url))
        moved_to = starts_at.replace(hour=20, minute=30)
        agenda = first.services["agenda"]
        request("POST", f"{agenda}/sessions/{session_id}/move", {"starts_at": moved_to.isoformat()})
        before = asyncio.run(agenda_log(first.nats_url, session_id))
        assert before[1] == f"agenda.session.{session_id}.moved"
        first.stop()  # exits 0, every child gone
    finally:
        first.kill()

    again = Platform(tmp_path)
    try:
        again.wait_until_ready()
        assert (again.nats_url, again.services) == (first.nats_url, first.services)
        assert again.demo["agenda"] == "left as it is: the log already holds edition unpsf-2025"
        assert again.demo["registration"].startswith("left as it is"), again.lines
        after = asyncio.run(agenda_log(again.nats_url, session_id))
        assert after[0] == before[0]  # the demo appended nothing
        assert after[1] == f"agenda.session.{session_id}.moved"
        eventually(
            lambda: session_starts_at(agenda, session_id, moved_to), "the moved session's view"
        )
        again.stop()
    finally:
        again.kill()


def test_a_recorded_port_taken_by_another_program_is_named_not_moved(tmp_path: Path) -> None:
    home = tmp_path / ".agora"
    home.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        recorded = {
            "home": str(home),
            "pid": None,
            "nats_url": f"nats://127.0.0.1:{free_port()}",
            "monitor_url": f"http://127.0.0.1:{free_port()}",
            "services": {"agenda": {"url": f"http://127.0.0.1:{port}"}},
        }
        (home / "endpoints.json").write_text(json.dumps(recorded))
        refused = agora("up", "--only", "agenda", cwd=tmp_path)
    assert refused.returncode != 0
    assert f"port {port} (agenda)" in refused.stderr, refused.stderr
    assert refused.stdout == ""
    assert nats_servers_on(home) == []
