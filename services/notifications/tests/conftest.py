"""Fixtures for notifications' tests: a real nats-server (agora_events' pytest plugin), a
real SMTP server (aiosmtpd) and a real HTTP receiver on free ports, the service running on
them with a clock the test moves, and a writer of the other contexts' events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import email.policy
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from nats.aio.client import Client as NatsClient
from sqlalchemy import select

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    EditionPlanned,
    RoomAdded,
    SessionCancelled,
    SessionMoved,
    SessionScheduled,
)
from agora_events.contracts.registration import ParticipantRegistered, PlaceClaimed
from agora_events.reactor import Reactor as AnyReactor
from agora_events.service import ReactorParts, Runtime, running
from agora_events.settings import LOCAL_ORGANISER_TOKEN
from agora_events.store import EventStore
from agora_notifications.application import Notifications
from agora_notifications.delivery import Dispatcher
from agora_notifications.main import NOTIFICATIONS
from agora_notifications.projections import notices
from agora_notifications.reactor import Reactor
from agora_notifications.settings import NotificationsSettings

Service = Runtime[NotificationsSettings, Notifications]
SAMARKAND = timezone(timedelta(hours=5))
EDITION = "unpsf-2025"
ORGANISER = {"Authorization": f"Bearer {LOCAL_ORGANISER_TOKEN}"}
DEADLINE = 30.0


def at(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=SAMARKAND)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], what: str, deadline: float = DEADLINE
) -> None:
    """Wait for a condition, checking it often, failing with ``what`` after the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > end:
            raise AssertionError(f"not within {deadline:g} s: {what}")
        await asyncio.sleep(0.02)  # a polling period while waiting for the condition


# -- SMTP --------------------------------------------------------------------------------------


class Inbox:
    """What a real aiosmtpd server on a free port received, parsed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self.port = free_port()
        self._controller: Controller | None = None
        self.refuse_with: str | None = None
        self.hold_after: int | None = None
        """Hold the mail that arrives after this many, until ``release``; then refuse it."""
        self.holding = threading.Event()
        self._release = threading.Event()

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: SmtpEnvelope
    ) -> str:
        if self.refuse_with is not None:
            return self.refuse_with
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            self.hold_after = None
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self._release.wait, 60)
            return "451 try again later"
        parsed = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        with self._lock:
            self._messages.append(parsed)
        return "250 OK"

    def start(self, **options: Any) -> None:
        """``options``: aiosmtpd's (``tls_context``, ``require_starttls``, ``authenticator``…)."""
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def release(self) -> None:
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, count: int, address: str | None = None) -> list[Message]:
        def arrived() -> bool:
            found = self.to(address) if address else self.messages
            return len(found) >= count

        await eventually(arrived, f"{count} mail(s) to {address or 'anyone'}")
        return self.to(address) if address else self.messages


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def smtp_server() -> type[Inbox]:
    """For a test that runs an SMTP server of its own (``smtp_server().start(...)``)."""
    return Inbox


# -- an HTTP receiver --------------------------------------------------------------------------


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on a free port that records each POST and answers with the next
    of ``answers`` (then 204); an answer of ``None`` holds the request until ``release``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int | None] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    answer = receiver.answers.pop(0) if receiver.answers else 204
                if answer is None:
                    receiver._release.wait(60)
                    answer = 204
                self.send_response(answer)
                if answer in (301, 302, 307, 308):
                    self.send_header("location", f"{receiver.url}/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def release(self) -> None:
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def posts(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    async def wait_for(self, count: int) -> list[Received]:
        await eventually(lambda: len(self.posts()) >= count, f"{count} webhook POST(s)")
        return self.posts()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the other contexts ------------------------------------------------------------------------


class Upstream:
    """Writes REGISTRATION, AGENDA and DECLARATIONS events straight to their streams, as
    their services would."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.registered = 0
        self.claims = 0

    async def append(self, *events: DomainEvent) -> int:
        result = await self.store.append(list(events), expected=None)
        return result.last_sequence

    async def participant(self, language: str | None = None, **fields: Any) -> str:
        self.registered += 1
        participant_id = f"p{self.registered:07d}"
        await self.append(
            ParticipantRegistered(
                participant_id=participant_id,
                name=f"Participant {self.registered}",
                email=f"participant.{self.registered}@example.org",
                category="delegate",
                delegation="UZB",
                language=language,
                **fields,
            )
        )
        return participant_id

    async def edition(self) -> None:
        await self.append(
            EditionPlanned(
                edition_id=EDITION,
                name="UN Public Service Forum 2025",
                host_city="Samarkand",
                host_country="UZB",
                start_date=at(9).date(),
                end_date=at(9, day=26).date(),
                time_zone="Asia/Samarkand",
            ),
            RoomAdded(room_id="hall-a", edition_id=EDITION, name="Hall A", capacity=100),
            RoomAdded(room_id="hall-b", edition_id=EDITION, name="Hall B", capacity=100),
        )

    async def session(self, session_id: str, title: str = "Foresight in Public Service") -> None:
        await self.append(
            SessionScheduled(
                session_id=session_id,
                edition_id=EDITION,
                kind="workshop_session",
                title=title,
                room_id="hall-a",
                starts_at=at(14, 30),
                ends_at=at(16),
            )
        )

    async def claim(self, participant_id: str, session_id: str) -> int:
        self.claims += 1
        return await self.append(
            PlaceClaimed(
                participant_id=participant_id,
                session_id=session_id,
                claim=self.claims,
                starts_at=at(14, 30),
                ends_at=at(16),
            )
        )

    async def move(
        self, session_id: str, old: tuple[str, datetime], new: tuple[str, datetime]
    ) -> int:
        return await self.append(
            SessionMoved(
                session_id=session_id,
                edition_id=EDITION,
                old_room_id=old[0],
                new_room_id=new[0],
                old_starts_at=old[1],
                old_ends_at=old[1] + timedelta(minutes=90),
                new_starts_at=new[1],
                new_ends_at=new[1] + timedelta(minutes=90),
            )
        )

    async def cancel(self, session_id: str, reason: str) -> int:
        return await self.append(
            SessionCancelled(session_id=session_id, edition_id=EDITION, reason=reason)
        )


@pytest.fixture
def upstream(nats_client: NatsClient) -> Upstream:
    return Upstream(EventStore(nats_client, source="/agora-test"))


# -- the service -------------------------------------------------------------------------------


class Clock:
    """The dispatcher's clock: real time unless a test holds it, then moved by hand."""

    def __init__(self) -> None:
        self.held: datetime | None = None

    def __call__(self) -> datetime:
        return self.held or datetime.now(UTC)

    def hold(self, moment: datetime | None = None) -> None:
        self.held = moment or datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.held = self() + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Harness:
    """The running service, with shorthands."""

    def __init__(self, runtime: Service, clock: Clock, client: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.clock = clock
        self.client = client

    @property
    def dispatcher(self) -> Dispatcher:
        reactor = self.runtime.reactor
        assert isinstance(reactor, Reactor) and reactor.dispatcher is not None
        return reactor.dispatcher

    @property
    def commands(self) -> Notifications:
        return self.runtime.commands

    async def notices(self, **where: str) -> list[Any]:
        query = select(notices).order_by(notices.c.sequence)
        for column, value in where.items():
            query = query.where(notices.c[column] == value)
        async with self.runtime.session() as db:
            return list((await db.execute(query)).all())

    async def wait_for_notices(self, count: int, **where: str) -> list[Any]:
        async def enough() -> bool:
            return len(await self.notices(**where)) >= count

        await eventually(enough, f"{count} notice(s) {where}")
        return await self.notices(**where)

    async def settled(self, count: int, **where: str) -> list[Any]:
        """Until ``count`` notices matching ``where`` are no longer pending."""

        async def done() -> bool:
            rows = await self.notices(**where)
            return len(rows) >= count and all(r.status != "pending" for r in rows)

        await eventually(done, f"{count} notice(s) {where} settled")
        return await self.notices(**where)

    async def attempted(self, attempts: int, **where: str) -> list[Any]:
        """Until some notice matches ``where`` and every one has had ``attempts`` attempts
        recorded (or is no longer pending)."""

        async def reached() -> bool:
            rows = await self.notices(**where)
            return bool(rows) and all(r.attempts >= attempts or r.status != "pending" for r in rows)

        await eventually(reached, f"notices {where} attempted {attempts} time(s)")
        return await self.notices(**where)

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        await eventually(check, what)

    def tick(self) -> None:
        self.dispatcher.wake()


def settings_for(
    nats_url: str, tmp_path: Path, inbox_port: int, **more: Any
) -> NotificationsSettings:
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/notifications.db",
        "smtp_port": inbox_port,
        "digest_window": 0,
        "poll_every": 0.05,
        "retry_base": 1.0,
        "retry_factor": 2.0,
        "retry_attempts": 4,
        "read_your_writes_timeout": 5.0,
        # A loaded machine may bind the reactors' consumers slower than a production start
        # allows (15 s).
        "nats_connect_timeout": 20.0,
        "organiser_emails": ("organisers@forum.example",),
    }
    return NotificationsSettings.model_validate(values | more)


ServiceStarter = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]


@pytest.fixture
def start_service(
    nats_url: str, nats_client: NatsClient, tmp_path: Path, inbox: Inbox, clock: Clock
) -> ServiceStarter:
    """``async with start_service(**settings) as service``: the whole process minus uvicorn,
    its dispatcher on a clock the test holds when it likes and jitter drawn as 0."""

    @contextlib.asynccontextmanager
    async def start(**more: Any) -> AsyncIterator[Harness]:
        used = clock
        settings = settings_for(nats_url, tmp_path, inbox.port, **more)

        def reactors(
            parts: ReactorParts[NotificationsSettings, Notifications],
        ) -> Sequence[AnyReactor]:
            assert parts.db is not None
            dispatcher = Dispatcher(
                parts.commands, parts.db, parts.settings, clock=used, draw=lambda: 0.0
            )
            return [
                Reactor(
                    parts.broker,
                    parts.commands,
                    parts.db,
                    parts.runner,
                    dispatcher=dispatcher,
                    retry_delays=(0.05, 0.1, 0.2),
                )
            ]

        definition = dataclasses.replace(NOTIFICATIONS, reactors=reactors)
        async with running(definition, settings, nc=nats_client) as runtime:
            transport = httpx.ASGITransport(app=runtime.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://notifications", headers=ORGANISER
            ) as client:
                yield Harness(runtime, used, client)

    return start
