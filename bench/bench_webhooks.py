"""Webhook deliveries and mails per second: the notifications dispatcher against a raw loop
doing the same work, in one run.

(a) webhooks: N notices already decided, delivered by the dispatcher (the log asked whether
    each is still pending, the CloudEvent signed per Standard Webhooks, POSTed, the outcome
    appended to NOTIFICATIONS), against a raw httpx loop POSTing the same signed bodies with
    the same number in flight;
(b) mails: N email notices delivered to a local SMTP server, against a raw aiosmtplib loop
    sending the same messages with the same number in flight.

The receivers (a minimal HTTP server answering 204, the service's own mail catcher) run in
processes of their own.

    .venv/bin/python bench/bench_webhooks.py [--count 2000] [--in-flight 16]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import httpx
from nats.aio.client import Client as NatsClient
from sqlalchemy import func, select

from agora_events.connection import connect
from agora_events.contracts.registration import ParticipantRegistered
from agora_events.envelope import Envelope
from agora_events.nats_server import EmbeddedNats
from agora_events.service import Runtime, running
from agora_events.streams import ensure_streams
from agora_events.usecases import SYSTEM
from agora_notifications.application import Notifications, structured
from agora_notifications.delivery import Dispatcher
from agora_notifications.domain import Draft, Trigger, notice_id, webhook_id
from agora_notifications.mail import compose
from agora_notifications.main import NOTIFICATIONS
from agora_notifications.projections import notices
from agora_notifications.settings import NotificationsSettings
from agora_notifications.webhooks import body_of, signed_headers

Service = Runtime[NotificationsSettings, Notifications]
RECEIVER = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def trigger(number: int) -> Trigger:
    event = ParticipantRegistered(
        participant_id=f"b{number:07d}",
        name=f"Participant {number}",
        email=f"participant.{number}@example.org",
        category="delegate",
        delegation="UZB",
    )
    envelope = Envelope(
        id=f"bench-{number}",
        source="/agora/registration",
        type=event.meta.type,
        time=datetime.now(UTC),
        data=event.model_dump_json().encode(),
        subject=event.subject,
    )
    return Trigger(event, envelope.id, envelope.type, envelope.time, structured(envelope))


async def decided(commands: Notifications, drafts: list[tuple[Trigger, Draft]]) -> None:
    batch = asyncio.Semaphore(64)

    async def one(item: tuple[Trigger, Draft]) -> None:
        async with batch:
            await commands.decide(item[0], [item[1]], SYSTEM)

    await asyncio.gather(*(one(item) for item in drafts))


async def dispatched(runtime: Service, dispatcher: Dispatcher, count: int) -> float:
    """Seconds the dispatcher takes to see ``count`` notices delivered."""
    started = time.perf_counter()
    dispatcher.start()
    while True:
        async with runtime.session() as db:
            done = await db.scalar(
                select(func.count()).select_from(notices).where(notices.c.status != "pending")
            )
        if (done or 0) >= count:
            break
        await asyncio.sleep(0.01)  # polling for the end of the run
    elapsed = time.perf_counter() - started
    await dispatcher.stop()
    return elapsed


async def raw(work: Callable[[int], Awaitable[None]], count: int, in_flight: int) -> float:
    slots = asyncio.Semaphore(in_flight)

    async def one(number: int) -> None:
        async with slots:
            await work(number)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return time.perf_counter() - started


async def bench(home: Path, http_port: int, smtp_port: int, count: int, in_flight: int) -> None:
    with EmbeddedNats(home / "nats") as server:
        await wait_listening(http_port)
        await wait_listening(smtp_port)
        nc = await connect(server.url, name="bench")
        await ensure_streams(nc.jetstream())
        await run_cases(nc, server.url, home, http_port, smtp_port, count, in_flight)
        await nc.close()


async def last_sequence(nc: NatsClient) -> int:
    return int((await nc.jetstream().stream_info("NOTIFICATIONS")).state.last_seq)


async def run_cases(
    nc: NatsClient, url: str, home: Path, http_port: int, smtp_port: int, count: int, in_flight: int
) -> None:
    settings = NotificationsSettings(
        nats_url=url,
        database_url=f"sqlite+aiosqlite:///{home}/notifications.db",
        smtp_port=smtp_port,
        run_reactors=False,
        deliveries_in_flight=in_flight,
        poll_every=0.01,
        organiser_emails=(),
    )
    target = f"http://127.0.0.1:{http_port}/hook"
    async with running(NOTIFICATIONS, settings, nc=nc) as runtime:
        commands = runtime.commands
        endpoint = await commands.register_endpoint(target, ["*"])
        endpoint_id = endpoint.ids["endpoint_id"]
        secret = endpoint.secret
        await runtime.wait_for(endpoint.sequence)

        # (a) webhooks
        hooks = [
            (t, Draft("webhook", endpoint_id, "webhook", {"cloudevent": t.cloudevent}))
            for t in map(trigger, range(count))
        ]
        await decided(commands, hooks)
        await runtime.wait_for(await last_sequence(nc))
        dispatcher = Dispatcher(commands, runtime.db, settings)
        agora_hooks = await dispatched(runtime, dispatcher, count)

        async with httpx.AsyncClient(follow_redirects=False) as client:
            bodies = [body_of(t.cloudevent) for t, _ in hooks]

            async def post(number: int) -> None:
                body = bodies[number]
                headers = signed_headers([secret], webhook_id(f"raw{number}"), body)
                response = await client.post(target, content=body, headers=headers)
                assert response.status_code == 204

            raw_hooks = await raw(post, count, in_flight)

        # (b) mails
        mails = [
            (
                t,
                Draft(
                    "registration.received",
                    f"m{n}",
                    "email",
                    {"name": f"P {n}"},
                    address=f"participant.{n}@example.org",
                ),
            )
            for n, t in enumerate(map(trigger, range(count, 2 * count)))
        ]
        await decided(commands, mails)
        await runtime.wait_for(await last_sequence(nc))
        dispatcher = Dispatcher(commands, runtime.db, settings)
        agora_mails = await dispatched(runtime, dispatcher, 2 * count)

        decisions = []
        for t, d in mails:
            state, _ = await commands.notice(notice_id(d.rule, t.event_id, d.recipient))
            assert state.decided is not None
            decisions.append(state.decided)

        async def send(number: int) -> None:
            await aiosmtplib.send(
                compose(decisions[number], settings), hostname="127.0.0.1", port=smtp_port
            )

        raw_mails = await raw(send, count, in_flight)

    print(f"{count} deliveries, {in_flight} in flight")
    print("| case | Agora /s | raw /s | ratio |")
    print("|---|---|---|---|")
    for name, agora, plain in (
        ("webhooks (signed POST, outcome recorded)", agora_hooks, raw_hooks),
        ("mails (SMTP, outcome recorded)", agora_mails, raw_mails),
    ):
        print(f"| {name} | {count / agora:,.0f} | {count / plain:,.0f} | {plain / agora:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agora-bench-") as directory:
        home = Path(directory)
        http_port, smtp_port = free_port(), free_port()
        catch = ["catch-mail", "--port", str(smtp_port), "--dir", str(home / "mail")]
        receivers = [
            subprocess.Popen([sys.executable, "-c", RECEIVER, str(http_port)]),
            subprocess.Popen(
                [sys.executable, "-m", "agora_notifications.main", *catch],
                stdout=subprocess.DEVNULL,
            ),
        ]
        try:
            asyncio.run(bench(home, http_port, smtp_port, args.count, args.in_flight))
        finally:
            for process in receivers:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
