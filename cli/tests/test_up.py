"""``agora up`` as a person runs it: a real process tree, real signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agora_events.connection import connect
from agora_events.nats_server import free_port

pytestmark = pytest.mark.slow

READY = re.compile(r"^ready\.")
NATS_LINE = re.compile(r"^nats\s+(nats://\S+)")
SERVICE_LINE = re.compile(r"^(agenda|registration)\s+(http://\S+)")


class Platform:
    def __init__(self, home: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agora_cli.main", "up", "--home", str(home)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.nats_url = ""
        self.services: dict[str, str] = {}

    def wait_until_ready(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if match := NATS_LINE.match(line):
                self.nats_url = match.group(1)
            if match := SERVICE_LINE.match(line):
                self.services[match.group(1)] = match.group(2)
            if READY.match(line):
                return
        raise AssertionError("agora up ended before it was ready:\n" + "\n".join(self.lines))

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path / "agora-home")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


async def nats_answers(url: str) -> bool:
    nc = await connect(url, name="test-up")
    try:
        info = await nc.jetstream().stream_info("AGENDA")
        return info.config.name == "AGENDA"
    finally:
        await nc.close()


def test_up_starts_everything_and_sigterm_leaves_no_process(platform: Platform) -> None:
    platform.wait_until_ready()
    assert platform.nats_url, platform.lines
    assert asyncio.run(nats_answers(platform.nats_url))
    children = platform.tree()
    assert any("nats-server" in " ".join(c.cmdline()) for c in children)

    platform.process.send_signal(signal.SIGTERM)
    assert platform.process.wait(timeout=30) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left behind: {[p.cmdline() for p in alive]}"


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
