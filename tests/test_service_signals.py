"""SIGTERM at every stage of a service's life, on the real processes (``python -m
agora_<service>.main serve``): while connecting, starting, serving, and stopping with NATS
gone. Each stage is known from the service's own log lines; a process still running
``EXIT_WITHIN`` seconds after its signal hangs, and fails the test."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from agora_events.connection import connect
from agora_events.nats_server import EmbeddedNats, die_with_parent, free_port
from agora_events.streams import ensure_streams

SERVICES = ("agenda", "registration")
EXIT_WITHIN = 40.0
"""Failure detection only: a healthy process exits well within this."""
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM
SECRET = "short-secret-xyz"


def environment(service: str, nats_url: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The process's environment: no AGORA_ variable of the caller's, a database of the
    test's own, a free port, and ``settings`` as ``AGORA_<SERVICE>_<NAME>``."""
    prefix = f"AGORA_{service.upper()}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    return env | {
        "AGORA_NATS_URL": nats_url,
        f"{prefix}DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / f'{service}.db'}",
        f"{prefix}HTTP_PORT": str(free_port()),
        **{prefix + name.upper(): value for name, value in settings.items()},
    }


class ServiceProcess:
    """A service process whose stderr is read as it comes (a full pipe would block it)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.messages: list[str] = []
        self.ended = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            async with self._changed:
                self.lines.append(line)
                with suppress(ValueError, TypeError, KeyError):
                    self.messages.append(json.loads(line)["message"])
                self._changed.notify_all()
        async with self._changed:
            self.ended = True
            self._changed.notify_all()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def logged(self, message: str) -> None:
        """Until the process logs ``message``."""
        try:
            async with asyncio.timeout(EXIT_WITHIN), self._changed:
                await self._changed.wait_for(lambda: message in self.messages or self.ended)
        except TimeoutError:
            raise AssertionError(f"no {message!r} within {EXIT_WITHIN:g} s:\n{self.log}") from None
        assert message in self.messages, f"ended without logging {message!r}:\n{self.log}"

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    async def exit_code(self) -> int:
        """The exit code (negative: killed by that signal); fails if the process lives on."""
        try:
            async with asyncio.timeout(EXIT_WITHIN):
                code = await self.process.wait()
                await self._reader
        except TimeoutError:
            raise AssertionError(
                f"still running {EXIT_WITHIN:g} s after the signal:\n{self.log}"
            ) from None
        return code

    def leftovers(self) -> bool:
        """Whether anything of its process group (its children, say) is still alive."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def end(self) -> None:
        """Kill whatever is left: the process and any child of its group."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._reader.cancel()


@asynccontextmanager
async def serve(service: str, env: dict[str, str]) -> AsyncIterator[ServiceProcess]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"agora_{service}.main",
        "serve",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: children left behind are seen
        preexec_fn=die_with_parent,  # a crashed test run leaves no orphan service
    )
    running = ServiceProcess(process)
    try:
        yield running
    finally:
        running.end()
        with suppress(ProcessLookupError):
            await process.wait()


@asynccontextmanager
async def silent_nats() -> AsyncIterator[str]:
    """A URL whose server accepts connections and never says a word: a NATS handshake on
    it waits for the server's INFO until its connect timeout."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # until the client goes away

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"nats://agenda:{SECRET}@127.0.0.1:{port}"
    finally:
        server.close()
        for writer in held:
            writer.close()


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    """A nats-server for one test, which the test may kill, with every Agora stream (the
    registration reads the agenda's)."""
    with EmbeddedNats(tmp_path / "jetstream") as server:
        nc = await connect(server.url, name="agora-tests")
        try:
            await ensure_streams(nc.jetstream())
        finally:
            await nc.close()
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
async def test_sigterm_while_the_nats_handshake_hangs_stops_at_once(service, tmp_path):
    async with silent_nats() as url:
        env = environment(service, url, tmp_path, nats_connect_timeout="60")
        async with serve(service, env) as process:
            await process.logged("connecting")
            process.signal()
            code = await process.exit_code()
            assert not process.leftovers()
    assert code == 0, process.log
    assert process.messages[-1] == "stopped while starting", process.log
    assert SECRET not in process.log


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["connecting", "started", "serving"])
@pytest.mark.parametrize("service", SERVICES)
async def test_sigterm_at_each_stage_of_start_stops_cleanly(
    service, stage, nats_client, nats_url, tmp_path
):
    async with serve(service, environment(service, nats_url, tmp_path)) as process:
        await process.logged(stage)
        process.signal()
        code = await process.exit_code()
        assert not process.leftovers()
    assert code == 0, process.log
    assert process.messages[-1] in ("stopped", "stopped while starting"), process.log


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
async def test_sigterm_with_nats_gone_stops_within_the_shutdown_timeout(
    service, own_nats, tmp_path
):
    env = environment(service, own_nats.url, tmp_path, shutdown_timeout="5")
    async with serve(service, env) as process:
        await process.logged("serving")
        own_nats.kill()
        await process.logged("nats connection problem")
        process.signal()
        code = await process.exit_code()
        assert not process.leftovers()
    print(process.log)
    assert code in (0, SIGTERM_EXIT_CODE), process.log


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
async def test_a_second_sigterm_during_a_slow_stop_exits_at_once(service, own_nats, tmp_path):
    env = environment(service, own_nats.url, tmp_path, shutdown_timeout="60")
    async with serve(service, env) as process:
        await process.logged("serving")
        own_nats.kill()
        await process.logged("nats connection problem")
        process.signal()
        await process.logged("stop signal")
        process.signal()
        code = await process.exit_code()
    assert code == SIGTERM_EXIT_CODE, process.log
    assert "second stop signal: exiting now" in process.messages, process.log


@pytest.mark.parametrize("service", SERVICES)
async def test_invalid_settings_exit_with_2_naming_the_setting(service, tmp_path):
    env = environment(service, "nats://127.0.0.1:1", tmp_path, stream_replicas="0")
    async with serve(service, env) as process:
        code = await process.exit_code()
    assert code == 2, process.log
    assert f"python -m agora_{service}.main: invalid settings: stream_replicas:" in process.log


@pytest.mark.parametrize("service", SERVICES)
async def test_a_refused_secret_is_named_never_shown(service, tmp_path):
    env = environment(service, "nats://127.0.0.1:1", tmp_path, organiser_token=SECRET)
    async with serve(service, env | {"AGORA_ENV": "production"}) as process:
        code = await process.exit_code()
    assert code == 2, process.log
    assert "organiser token must be at least 16 characters" in process.log
    assert SECRET not in process.log
