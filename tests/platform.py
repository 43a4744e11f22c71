"""The whole platform as `agora up` runs it, for end-to-end tests across processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")
NATS_LINE = re.compile(r"^nats\s+(nats://\S+)")
SERVICE_LINE = re.compile(r"^(\w+)\s+(http://\S+)\s+docs")


class Platform:
    def __init__(self, home: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agora_cli.main", "up", "--home", str(home), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.nats_url = ""
        self.services: dict[str, str] = {}

    def wait_until_ready(self) -> Platform:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if match := NATS_LINE.match(line):
                self.nats_url = match.group(1)
            if match := SERVICE_LINE.match(line):
                self.services[match.group(1)] = match.group(2)
            if line.startswith("ready."):
                return self
        raise AssertionError("agora up ended before it was ready:\n" + "\n".join(self.lines))

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def eventually(probe: Callable[[], T | None], *, within: float = 20.0, what: str) -> T:
    """Poll a condition across services (they share no sequence to wait on) until it holds."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.05)
