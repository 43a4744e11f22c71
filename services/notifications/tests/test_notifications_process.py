"""The service as a real process: killed with SIGKILL in the middle of a batch of mails,
then started again, it loses no notice and sends none twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx
import pytest

from agora_events.settings import LOCAL_ORGANISER_TOKEN

if TYPE_CHECKING:
    from tests.conftest import Inbox, Upstream

pytestmark = pytest.mark.slow
MAILS = 40
HELD = 15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(nats_url: str, tmp_path: Path, smtp_port: int, http_port: int) -> dict[str, str]:
    return os.environ | {
        "AGORA_NATS_URL": nats_url,
        "AGORA_NOTIFICATIONS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/notifications.db",
        "AGORA_NOTIFICATIONS_HTTP_PORT": str(http_port),
        "AGORA_NOTIFICATIONS_SMTP_PORT": str(smtp_port),
        "AGORA_NOTIFICATIONS_DIGEST_WINDOW": "0",
        "AGORA_NOTIFICATIONS_POLL_EVERY": "0.05",
        "AGORA_NOTIFICATIONS_DELIVERIES_IN_FLIGHT": "1",
    }


async def start(env: dict[str, str], log: IO[bytes], port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agora_notifications.main", "serve", env=env, stderr=log
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while True:
            if process.returncode is not None:
                pytest.fail(f"the service exited with {process.returncode}; see {log.name}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if loop.time() > deadline:
                pytest.fail(f"the service was not ready within 60 s; see {log.name}")
            await asyncio.sleep(0.1)  # polling for readiness


async def notices(port: int, **params: str) -> int:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {LOCAL_ORGANISER_TOKEN}"},
        timeout=60,
    ) as client:
        response = await client.get("/notices", params={"limit": "1000"} | params)
        response.raise_for_status()
        return len(response.json())


async def test_a_kill_in_the_middle_of_a_batch_loses_no_notice_and_sends_none_twice(
    nats_url: str, upstream: Upstream, inbox: Inbox, tmp_path: Path
) -> None:
    port = free_port()
    env = environment(nats_url, tmp_path, inbox.port, port)
    inbox.hold_after = HELD
    for _ in range(MAILS):
        await upstream.participant()
    log = await asyncio.to_thread((tmp_path / "service.log").open, "wb")
    with log:
        process = await start(env, log, port)
        try:
            await asyncio.get_running_loop().run_in_executor(None, inbox.holding.wait, 60)
            assert inbox.holding.is_set(), "a mail in the middle of the batch is being sent"

            async def all_decided() -> bool:
                return await notices(port) == MAILS

            # The kill lands in the dispatcher's batch, not in the reactor's: a reactor killed
            # holding an event gets it back only after the consumer's ack wait (60 s).
            await _eventually(all_decided, "every notice decided before the kill")
            process.send_signal(signal.SIGKILL)
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        inbox.release()
        assert len(inbox.messages) == HELD
        process = await start(env, log, port)
        try:
            await inbox.wait_for(MAILS)

            async def none_pending() -> bool:
                return await notices(port, status="pending") == 0

            await _eventually(none_pending, "every notice settled after the restart")
        finally:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await process.wait()
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(ids) == MAILS
    assert len(set(ids)) == MAILS


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within 30 s: {what}")
        await asyncio.sleep(0.05)  # polling for the condition
