"""The agenda process: the one place where things are connected. Nothing connects at import.

python -m agora_agenda.main [serve]      HTTP API + projections until SIGTERM/SIGINT
python -m agora_agenda.main demo         import the bundled 2025 programme (idempotent)
python -m agora_agenda.main import FILE  import a programme file; reports the edition's
                                         sessions the file no longer lists
python -m agora_agenda.main import FILE --cancel-missing
                                         … and cancels them
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nats
import uvicorn
from fastapi import FastAPI, HTTPException
from nats.aio.client import Client as NatsClient
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.connection import redacted
from agora_events.contracts import load_all
from agora_events.decider import Rejected
from agora_events.logs import configure_logging
from agora_events.projections import Projection
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.runner import ProjectionRunner
from agora_events.store import EventStore, StoreError
from agora_events.streams import ensure_streams
from agora_events.tracing import configure_tracing

from . import api
from .application import AgendaCommands, Outcome
from .importer import bundled_editions, load_edition
from .projections import all_projections
from .settings import AgendaSettings

STREAM = "AGENDA"
DEMO_EDITION = "unpsf-2025"
CONNECT_ATTEMPTS = 3
log = logging.getLogger("agora.agenda")


def load_settings() -> AgendaSettings:
    return AgendaSettings()


def projections() -> list[Projection]:
    return all_projections()


# -- the running process -------------------------------------------------------------------


@dataclass
class AgendaRuntime:
    """What the HTTP routes use: commands, the read model and the projection runner."""

    settings: AgendaSettings
    nc: NatsClient
    db: ReadModelDatabase
    runner: ProjectionRunner | None
    commands: AgendaCommands

    def session(self) -> AsyncSession:
        return self.db.session()

    async def wait_for(self, sequence: int) -> None:
        if self.runner is None:
            raise HTTPException(
                503,
                "this instance runs no projections (AGORA_AGENDA_RUN_PROJECTIONS=false), "
                f"so it cannot wait for sequence {sequence}; query without ?after=",
            )
        await self.runner.wait_for(
            sequence, stream=STREAM, timeout=self.settings.read_your_writes_timeout
        )

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        connected = self.nc.is_connected
        checks: dict[str, Any] = {"nats": "connected" if connected else "disconnected"}
        if self.runner is None:
            return connected, checks
        lags = await self.runner.lag()
        checks["projections"] = [
            {"projection": lag.projection, "stream": lag.stream, "lag": lag.lag, "state": lag.state}
            for lag in lags
        ]
        # "retrying" means a pass failed (database or NATS trouble); "stopped" is only seen
        # for a moment while the loops start.
        healthy = all(lag.state != "retrying" for lag in lags)
        return connected and healthy, checks


async def connect(settings: AgendaSettings, *, keep_trying: bool) -> NatsClient:
    """Give up on a first connection after a few attempts (so a misconfigured process fails
    loudly); once connected, a long-running process reconnects for as long as it lives."""

    async def error(exc: Exception) -> None:
        log.warning("nats error", extra={"error": type(exc).__name__, "detail": str(exc)})

    async def disconnected() -> None:
        log.warning("nats disconnected")

    async def reconnected() -> None:
        log.info("nats reconnected")

    nc = await nats.connect(
        settings.nats_url,
        name="agora-agenda",
        connect_timeout=5,
        max_reconnect_attempts=CONNECT_ATTEMPTS,
        error_cb=error,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
    )
    if keep_trying:
        nc.options["max_reconnect_attempts"] = -1
    return nc


@asynccontextmanager
async def running(settings: AgendaSettings) -> AsyncIterator[AgendaRuntime]:
    """Connect NATS, ensure the stream, prepare the read model, start the projections."""
    load_all()
    async with AsyncExitStack() as stack:
        nc = await connect(settings, keep_trying=True)
        stack.push_async_callback(nc.close)
        for report in await ensure_streams(nc.jetstream(), contexts=("agenda",)):
            if report.drift:
                log.warning(
                    "stream drift",
                    extra={"stream": report.name, "drift": [str(d) for d in report.drift]},
                )
        db = ReadModelDatabase(settings.database_url)
        stack.push_async_callback(db.dispose)
        await db.prepare(projections())
        runner = None
        if settings.run_projections:
            runner = ProjectionRunner(nc, db, projections(), consumer_prefix="agenda")
            await runner.start()
            stack.push_async_callback(runner.stop)
        commands = AgendaCommands(EventStore(nc, source="/agora"))
        log.info("agenda ready", extra={"database": db.display, "projections": bool(runner)})
        yield AgendaRuntime(settings, nc, db, runner, commands)
        log.info("agenda stopping")


def create_app(settings: AgendaSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(settings) as runtime:
            app.state.runtime = runtime
            yield

    return api.create_app(settings, lifespan)


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT start a graceful shutdown, after which the process exits with a
        status (uvicorn's own version re-raises the signal, killing the process by it)."""
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(settings: AgendaSettings) -> int:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = _Server(config)
    await server.serve()
    return 0 if server.started else 1


async def import_file(
    settings: AgendaSettings, path: Path, *, cancel_missing: bool = False
) -> Outcome:
    load_all()
    command = load_edition(path, cancel_missing=cancel_missing)
    nc = await connect(settings, keep_trying=False)
    try:
        await ensure_streams(nc.jetstream(), contexts=("agenda",))
        return await AgendaCommands(EventStore(nc, source="/agora")).execute(
            command, actor="cli", idempotency_key=None
        )
    finally:
        await nc.close()


# -- entry point -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agora_agenda", description="Agora's agenda service")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API and run the projections (default)")
    commands.add_parser("demo", help=f"import the {DEMO_EDITION} programme (idempotent)")
    importing = commands.add_parser("import", help="import a programme file (TOML)")
    importing.add_argument("file", type=Path)
    importing.add_argument(
        "--cancel-missing",
        action="store_true",
        help="cancel the edition's scheduled sessions the file no longer lists "
        "(by default they are only reported)",
    )
    args = parser.parse_args(argv)

    configure_logging()
    configure_tracing("agora-agenda")
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"agora_agenda: invalid settings: {exc}", file=sys.stderr)
        return 2
    if args.command in (None, "serve"):
        return asyncio.run(serve(settings))
    path = bundled_editions()[DEMO_EDITION] if args.command == "demo" else args.file
    cancel_missing = args.command == "import" and args.cancel_missing
    try:
        outcome = asyncio.run(import_file(settings, path, cancel_missing=cancel_missing))
    except Rejected as exc:
        print(f"agora_agenda: {path.name} was not imported: {exc.reason}", file=sys.stderr)
        return 1
    except (OSError, StoreError, nats.errors.Error) as exc:
        print(
            f"agora_agenda: cannot reach NATS at {redacted(settings.nats_url)}: {exc}",
            file=sys.stderr,
        )
        return 1
    summary = {
        "imported": path.name,
        **outcome.ids,
        "events": len(outcome.events),
        "sequence": outcome.sequence,
        "missing": [asdict(ref) for ref in outcome.missing],
        "cancelled": [asdict(ref) for ref in outcome.cancelled],
    }
    print(json.dumps(summary))
    if outcome.missing:
        print(
            f"agora_agenda: {len(outcome.missing)} scheduled session(s) of "
            f"{outcome.ids['edition_id']} are not in {path.name} and were left as they are "
            "(import with --cancel-missing to cancel them): "
            + ", ".join(f"{ref.session_id} ({ref.title})" for ref in outcome.missing),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
