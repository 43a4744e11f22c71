"""The one wiring point of the registration process. Nothing connects at import time.

python -m agora_registration.main [serve]   HTTP API, projections and reactor
python -m agora_registration.main demo      load the demo participants, then exit
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import nats
import uvicorn
from fastapi import FastAPI
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.connection import redacted
from agora_events.logs import configure_logging
from agora_events.projections import Projection
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.runner import ProjectionRunner
from agora_events.store import EventStore
from agora_events.streams import ensure_streams
from agora_events.tracing import configure_tracing

from .api import create_app
from .application import Registration
from .demo import load_demo
from .projections import all_projections
from .reactor import Reactor
from .settings import RegistrationSettings

log = logging.getLogger("agora.registration")
STREAM = "REGISTRATION"


CONNECT_WITHIN = 15.0


async def _nats_error(error: Exception) -> None:
    log.warning("nats connection trouble", extra={"error": f"{type(error).__name__}: {error}"})


async def connect(settings: RegistrationSettings, name: str) -> NatsClient:
    """A connection that keeps reconnecting once made; refuses to start if NATS cannot be
    reached within CONNECT_WITHIN seconds."""
    try:
        async with asyncio.timeout(CONNECT_WITHIN):
            return await nats.connect(
                settings.nats_url,
                name=name,
                connect_timeout=2,
                reconnect_time_wait=1,
                max_reconnect_attempts=-1,
                error_cb=_nats_error,
            )
    except TimeoutError:
        raise NatsUnreachableError(
            f"cannot reach NATS at {redacted(settings.nats_url)} within {CONNECT_WITHIN:g} s"
        ) from None


class NatsUnreachableError(OSError):
    pass


def reactor_broker(settings: RegistrationSettings) -> NatsBroker:
    """FastStream's broker for the reactor's consumers: its own connection, reconnecting
    forever once made; stopping waits up to 10 s for the event in hand to be finished."""
    return NatsBroker(
        settings.nats_url,
        name="agora-registration-reactor",
        connect_timeout=2,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        error_cb=_nats_error,
        graceful_timeout=10.0,
        # FastStream's own line per message stays at debug; the reactor logs what matters.
        log_level=logging.DEBUG,
    )


async def start_reactor(
    settings: RegistrationSettings, store: EventStore, registration: Registration
) -> tuple[NatsBroker, Reactor]:
    broker = reactor_broker(settings)
    reactor = Reactor(broker, store, registration)
    broker.include_router(reactor.router)
    try:
        async with asyncio.timeout(CONNECT_WITHIN):
            await broker.start()
    except TimeoutError:
        await broker.stop()
        raise NatsUnreachableError(
            f"cannot reach NATS at {redacted(settings.nats_url)} within {CONNECT_WITHIN:g} s"
        ) from None
    reactor.keep_consumers()
    return broker, reactor


def load_settings() -> RegistrationSettings:
    return RegistrationSettings()


def projections() -> list[Projection]:
    return all_projections()


class RunnerReadModel:
    """The read side the API queries: the database, and the runner to wait on."""

    def __init__(self, db: ReadModelDatabase, runner: ProjectionRunner, timeout: float) -> None:
        self._db = db
        self._runner = runner
        self._timeout = timeout

    def session(self) -> AsyncSession:
        return self._db.session()

    async def wait_for(self, sequence: int) -> None:
        await self._runner.wait_for(sequence, stream=STREAM, timeout=self._timeout)


@dataclass
class Service:
    """Everything one registration process runs, started in order and stopped in reverse."""

    settings: RegistrationSettings
    nc: NatsClient
    owns_connection: bool
    registration: Registration
    db: ReadModelDatabase
    runner: ProjectionRunner
    broker: NatsBroker | None
    reactor: Reactor | None
    app: FastAPI

    async def readiness(self) -> dict[str, Any]:
        connected = self.nc.is_connected and self._reactor_connected()
        report: dict[str, Any] = {"ready": connected, "nats": connected}
        if connected:
            with contextlib.suppress(Exception):
                report["read_model_lag"] = {
                    f"{lag.projection}/{lag.stream}": lag.lag for lag in await self.runner.lag()
                }
                report["reactor_lag"] = await self.reactor.lag() if self.reactor else None
        return report

    def _reactor_connected(self) -> bool:
        """The reactor's own connection (FastStream's), when it runs."""
        if self.broker is None:
            return True
        try:
            return self.broker.connection.is_connected
        except Exception:  # not connected yet, or stopped
            return False

    async def stop(self) -> None:
        if self.reactor is not None:
            await self.reactor.stop_keeping()
        if self.broker is not None:
            await self.broker.stop()
        await self.runner.stop()
        await self.db.dispose()
        if self.owns_connection:
            await self.nc.drain()


async def start_service(settings: RegistrationSettings, *, nc: NatsClient | None = None) -> Service:
    """Connect (unless given a connection), make sure the streams and tables exist, and start
    the projections and the reactor. The HTTP server is the caller's."""
    owns_connection = nc is None
    if nc is None:
        nc = await connect(settings, "agora-registration")
    await ensure_streams(nc.jetstream())
    store = EventStore(nc, source="/agora/registration")
    registration = Registration(store)
    db = ReadModelDatabase(settings.database_url, schema=settings.database_schema)
    await db.prepare(projections())
    runner = ProjectionRunner(nc, db, projections(), consumer_prefix="registration")
    await runner.start()
    broker, reactor = None, None
    if settings.run_reactor:
        broker, reactor = await start_reactor(settings, store, registration)
    read_model = RunnerReadModel(db, runner, settings.read_your_writes_timeout)
    service = Service(
        settings=settings,
        nc=nc,
        owns_connection=owns_connection,
        registration=registration,
        db=db,
        runner=runner,
        broker=broker,
        reactor=reactor,
        app=create_app(registration, read_model, settings),
    )
    service.app.state.readiness = service.readiness
    return service


class Server(uvicorn.Server):
    """uvicorn, minus its signal handling: ``serve`` owns SIGTERM/SIGINT and shuts down the
    projections and the reactor after the last request."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: FastAPI, host: str, port: int) -> Server:
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    return Server(config)


async def serve(settings: RegistrationSettings) -> int:
    service = await start_service(settings)
    server = http_server(service.app, settings.http_host, settings.http_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    log.info("serving", extra={"host": settings.http_host, "port": settings.http_port})
    try:
        await server.serve()
    finally:
        await service.stop()
    log.info("stopped")
    return 0


async def demo(settings: RegistrationSettings) -> int:
    nc = await connect(settings, "agora-registration-demo")
    try:
        await ensure_streams(nc.jetstream())
        report = await load_demo(Registration(EventStore(nc, source="/agora/registration")))
    finally:
        await nc.drain()
    print(
        f"demo: {report.participants} roundtable participants; "
        f"{report.registered} newly registered, {report.approved} newly approved"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agora_registration.main", description="Agora registration service"
    )
    parser.add_argument("command", nargs="?", choices=("serve", "demo"), default="serve")
    args = parser.parse_args(argv)
    configure_logging()
    configure_tracing("agora-registration")
    try:
        settings = load_settings()
    except ValidationError as error:
        print(f"registration: invalid settings:\n{error}", file=sys.stderr)
        return 2
    try:
        if args.command == "demo":
            return asyncio.run(demo(settings))
        return asyncio.run(serve(settings))
    except (OSError, nats.errors.NoServersError) as error:
        print(f"registration: cannot start: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
