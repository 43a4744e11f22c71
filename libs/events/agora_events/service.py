"""The service shell: everything a service process does below its domain, written once.

A service declares what it has in a ``ServiceDefinition`` (its context, settings,
projections, use cases, HTTP routers, reactors and command-line tasks); the shell

* connects to NATS (through ``connection``: fail fast the first time, then reconnect forever),
* makes sure the service's own stream exists (replicas from settings; drift is logged),
* prepares the read-model database and runs the projections,
* starts the reactors on a FastStream broker of their own and keeps their consumers,
* serves the HTTP API with ``/healthz``, ``/readyz`` (one JSON shape for every service),
  ``/metrics``, the error table and trace context,
* and stops in reverse order, each step bounded, on SIGTERM or SIGINT at any stage: while
  connecting, starting or serving. A second signal, or a stop that outlasts
  ``shutdown_timeout``, ends the process at once; read models are transactional, so nothing
  is half-applied.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import nats.errors
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from .connection import NatsUnavailable, connect, reactor_broker, redacted
from .contracts import load_all
from .http import ERROR_RESPONSES, AdmissionControl, After, install_edges
from .logs import configure_logging
from .metrics import PROJECTION_LAG, REACTOR_LAG
from .openapi import install_docs
from .projections import Projection
from .projections.database import ReadModelDatabase
from .projections.heartbeat import Heartbeat
from .projections.releases import read_model_schema
from .projections.runner import Lag, ProjectionRunner
from .reactor import Reactor
from .schemas_http import schemas_router
from .settings import ServiceSettings
from .store import EventStore, StoreError
from .streams import STREAMS, ensure_streams
from .tracing import configure_tracing

Cfg = TypeVar("Cfg", bound=ServiceSettings)
U = TypeVar("U")
STOP_STEP_SECONDS = 10.0
"""At most this long for each step of a stop (a reactor's event in hand, a projection's
batch, draining NATS); the whole stop is bounded by the settings' ``shutdown_timeout``."""
RECANCEL_SECONDS = 0.25
"""How often a start being stopped is cancelled again (see ``_Stopping._cancel_start``)."""
log = logging.getLogger("agora.service")


@dataclass(frozen=True, slots=True)
class ReactorParts(Generic[Cfg, U]):
    """What a service's reactors are built from."""

    broker: NatsBroker
    store: EventStore
    commands: U
    settings: Cfg
    db: ReadModelDatabase | None = None
    """The service's read-model database, for a reactor that reads its own read models."""
    runner: ProjectionRunner | None = None
    """The projection runner, when this instance runs the projections (to wait for them)."""


@dataclass(frozen=True, slots=True)
class Task(Generic[Cfg]):
    """A command-line task besides ``serve`` (``demo``, ``import FILE``…)."""

    help: str
    run: Callable[[Cfg, argparse.Namespace], Coroutine[Any, Any, int]]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


def _no_reactors(parts: ReactorParts[Any, Any]) -> Sequence[Reactor]:
    return ()


@dataclass(frozen=True)
class ServiceDefinition(Generic[Cfg, U]):
    """What a service has; the shell does the rest."""

    context: str
    """The bounded context: its stream (``AGENDA``), consumer and process names."""
    title: str
    summary: str
    settings: Callable[[], Cfg]
    projections: Callable[[], Sequence[Projection]]
    commands: Callable[[EventStore, Cfg], U]
    """The service's use cases on a store."""
    routers: Callable[[Cfg], Sequence[APIRouter]]
    reactors: Callable[[ReactorParts[Cfg, U]], Sequence[Reactor]] = _no_reactors
    tasks: Mapping[str, Task[Cfg]] = field(default_factory=dict)
    version: str = "1"
    own_stream: bool = True
    """False for a service that appends to no stream of its own (the console: it reads the
    others' streams and sends commands through their HTTP APIs); its context then names only
    its process, consumers and read models, and no stream is made for it."""

    @property
    def stream(self) -> str:
        return STREAMS[self.context].name

    @property
    def process_name(self) -> str:
        return f"agora-{self.context}"


# -- readiness -------------------------------------------------------------------------------


class ProjectionCheck(BaseModel):
    projection: str
    stream: str
    lag: int
    state: str


class ReactorCheck(BaseModel):
    consumer: str
    lag: int


class Checks(BaseModel):
    nats: Literal["connected", "disconnected"]
    reactor_connection: Literal["connected", "disconnected", "not running"] = "not running"
    projections: list[ProjectionCheck] | None = None
    """None: this service keeps no read model."""
    reactors: list[ReactorCheck] | None = None
    """None: this instance runs no reactors."""
    problems: list[str] = []


class Readiness(BaseModel):
    """The one readiness answer of every service (``/readyz``: 200 when ready, else 503)."""

    status: Literal["ready", "not ready"]
    service: str
    checks: Checks


class Health(BaseModel):
    status: Literal["ok"]
    service: str


# -- the running service ---------------------------------------------------------------------


@dataclass
class Runtime(Generic[Cfg, U]):
    """One running service: what its routes, reactors and tests use."""

    definition: ServiceDefinition[Cfg, U]
    settings: Cfg
    nc: NatsClient
    store: EventStore
    db: ReadModelDatabase
    commands: U
    runner: ProjectionRunner | None = None
    broker: NatsBroker | None = None
    reactors: tuple[Reactor, ...] = ()
    app: FastAPI = field(init=False)
    _unmoved: dict[tuple[str, str], tuple[int, float]] = field(init=False, default_factory=dict)
    """Per projection and stream: the checkpoint last seen behind, and since when."""
    building: set[str] = field(default_factory=set)
    """Projections built from zero at this start that have not yet caught up with the log:
    until they have, /readyz is 503 and queries answer 503 (the old release serves)."""

    def __post_init__(self) -> None:
        self.app = application(self.definition, self.settings)
        self.app.state.runtime = self
        self.app.state.refresh_metrics = self.readiness

    build_targets: dict[tuple[str, str], int] = field(default_factory=dict)
    """Where each stream of a building projection ended when it was first looked at (the
    start): reaching it is catching up. Events stored since are lag, not building; under
    steady writes the lag need never be 0 at the moment it is looked at."""

    def _still_building(self, lags: Sequence[Lag]) -> list[str]:
        """What is still being built (forgetting what has caught up: once caught up, a
        read model is served, and a later lag is only lag)."""
        behind = building_behind(self.building, self.build_targets, lags)
        self.building -= {name for name, total in behind.items() if total == 0}
        return [
            f"projection {name} is being built from the log ({self.db.display}): "
            f"{behind[name]} behind"
            for name in sorted(self.building)
            if name in behind
        ]

    async def refuse_while_building(self) -> None:
        """503 for a query while this release's read models are still being built."""
        if not self.building or self.runner is None:
            return
        self._still_building(await self.runner.lag())
        if self.building:
            raise HTTPException(
                503,
                f"this release is building its read models from the log "
                f"({', '.join(sorted(self.building))}); retry shortly",
                headers={"Retry-After": "5"},
            )

    def _stalled(self, lag: Lag) -> str | None:
        """A problem when the projection is behind and its checkpoint has not moved for
        ``projection_stall_seconds``: stuck, not slow."""
        key = (lag.projection, lag.stream)
        now = time.monotonic()
        if lag.lag == 0:
            self._unmoved.pop(key, None)
            return None
        checkpoint, since = self._unmoved.get(key, (lag.checkpoint, now))
        if checkpoint != lag.checkpoint:
            checkpoint, since = lag.checkpoint, now
        self._unmoved[key] = (checkpoint, since)
        if now - since < self.settings.projection_stall_seconds:
            return None
        return (
            f"projection {lag.projection} on {lag.stream} is stalled: still at sequence "
            f"{checkpoint}, {lag.lag} behind, for {now - since:.0f} s"
        )

    def session(self) -> AsyncSession:
        return self.db.session()

    @property
    def projections(self) -> ProjectionRunner:
        """The projection runner (one that follows another replica's, when this one does not
        project), when the service keeps a read model."""
        if self.runner is None:
            raise LookupError("this service keeps no read model")
        return self.runner

    @property
    def reactor(self) -> Reactor:
        """The service's reactor, when it runs exactly one."""
        if len(self.reactors) != 1:
            names = [reactor.name for reactor in self.reactors]
            raise LookupError(f"this instance runs {len(names)} reactors: {names}")
        return self.reactors[0]

    async def wait_for(self, sequence: int) -> None:
        """Read-your-writes: until the read model has applied the service's own stream up to
        ``sequence``, within ``read_your_writes_timeout`` (ReadModelBehind after it)."""
        if self.runner is None:
            raise HTTPException(
                503,
                f"the {self.definition.context} service keeps no read model, so it cannot "
                f"wait for sequence {sequence}; query without ?after=",
            )
        await self.runner.wait_for(
            sequence,
            stream=self.definition.stream,
            timeout=self.settings.read_your_writes_timeout,
        )

    async def readiness(self) -> Readiness:
        connected = self.nc.is_connected
        checks = Checks(nats="connected" if connected else "disconnected")
        problems: list[str] = []
        if self.broker is not None:
            connected_broker = _broker_connected(self.broker)
            checks.reactor_connection = "connected" if connected_broker else "disconnected"
        if connected and self.runner is not None:
            try:
                lags = await self.runner.lag()
            except Exception as exc:  # the database or NATS is away: not ready, say why
                problems.append(f"projection lag unreadable: {type(exc).__name__}")
            else:
                checks.projections = [
                    ProjectionCheck(
                        projection=lag.projection, stream=lag.stream, lag=lag.lag, state=lag.state
                    )
                    for lag in lags
                ]
                for lag in lags:
                    PROJECTION_LAG.labels(lag.projection, lag.stream).set(lag.lag)
                problems += [found for lag in lags if (found := self._stalled(lag))]
                problems += self._still_building(lags)
        if connected and self.reactors:
            try:
                checks.reactors = [
                    ReactorCheck(consumer=consumer, lag=lag)
                    for reactor in self.reactors
                    for consumer, lag in (await reactor.lag()).items()
                ]
            except Exception as exc:
                problems.append(f"reactor lag unreadable: {type(exc).__name__}")
            for check in checks.reactors or ():
                REACTOR_LAG.labels(check.consumer).set(check.lag)
        # "retrying" means a pass failed (database or NATS trouble); "stopped" is only seen
        # for a moment while the loops start.
        problems += [
            f"projection {p.projection} on {p.stream} is retrying"
            for p in checks.projections or ()
            if p.state == "retrying"
        ]
        checks.problems = problems
        ready = connected and checks.reactor_connection != "disconnected" and not problems
        return Readiness(
            status="ready" if ready else "not ready",
            service=self.definition.context,
            checks=checks,
        )


def _broker_connected(broker: NatsBroker) -> bool:
    try:
        return bool(broker.connection.is_connected)
    except Exception:  # not connected yet, or stopped
        return False


async def _bounded(step: str, stop: Callable[[], Awaitable[object]]) -> None:
    """One step of a stop, given at most STOP_STEP_SECONDS; a stop never hangs on one.

    The step runs to its end even when the task is cancelled again meanwhile (a start that
    is being stopped is cancelled until it ends, see ``_Stopping``), and the cancel is
    raised after it: a step cut short would leave its part running or held."""
    stopping = asyncio.ensure_future(_step(step, stop))
    cancelled = False
    while not stopping.done():
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def _step(step: str, stop: Callable[[], Awaitable[object]]) -> None:
    try:
        async with asyncio.timeout(STOP_STEP_SECONDS):
            await stop()
    except TimeoutError:
        log.warning("stop step took too long; left behind", extra={"step": step})
    except Exception as exc:
        log.warning("stop step failed", extra={"step": step, "error": type(exc).__name__})


async def _close(nc: NatsClient, *, drain: bool = True) -> None:
    """Drain a connected client (pending publishes go out); just close one that is not, or
    when ``drain`` is false: a start that was stopped has nothing in flight to drain, and
    draining waits on the server, which may be why the start was stopped."""
    if drain and nc.is_connected:
        try:
            async with asyncio.timeout(STOP_STEP_SECONDS / 2):
                await nc.drain()
            return
        except (TimeoutError, nats.errors.Error):
            pass
    await nc.close()


async def ensure_own_stream(nc: NatsClient, context: str, replicas: int) -> None:
    """Create the service's stream if missing; never change an existing one, log drift."""
    for report in await ensure_streams(nc.jetstream(), replicas=replicas, contexts=(context,)):
        if report.drift:
            log.warning(
                "stream drift: the stream differs from what this service would create; "
                "see `agora streams info`",
                extra={"stream": report.name, "drift": [str(d) for d in report.drift]},
            )
        elif report.status == "created":
            log.info("stream created", extra={"stream": report.name, "replicas": replicas})


@asynccontextmanager
async def running(
    definition: ServiceDefinition[Cfg, U], settings: Cfg, *, nc: NatsClient | None = None
) -> AsyncIterator[Runtime[Cfg, U]]:
    """Start the service (on ``nc`` if given, which then stays the caller's), yield it
    running, and stop it in reverse order."""
    load_all()
    context = definition.context
    started = False
    async with AsyncExitStack() as stack:
        if nc is None:
            log.info("connecting", extra={"nats": redacted(settings.nats_url)})
            nc = await connect(
                settings.nats_url,
                name=definition.process_name,
                persistent=True,
                timeout=settings.nats_connect_timeout,
                tls_ca_file=settings.nats_tls_ca_file,
            )
            stack.push_async_callback(_bounded, "nats", lambda: _close(nc, drain=started))
        if definition.own_stream:
            await ensure_own_stream(nc, context, settings.stream_replicas)
        projections = definition.projections()
        schema = read_model_schema(
            context=context,
            env=settings.env,
            database_url=settings.database_url,
            database_schema=settings.database_schema,
            projections=projections,
        )
        db = ReadModelDatabase(settings.database_url, schema=schema)
        stack.push_async_callback(_bounded, "database", db.dispose)
        # PostgreSQL: this replica uses these read models, so no prune drops them.
        heartbeat = Heartbeat(db)
        await heartbeat.start()
        stack.push_async_callback(_bounded, "heartbeat", heartbeat.stop)
        prepared = await db.prepare(projections)
        # Built from zero at this start (a new release's schema, a changed projection): not
        # served until caught up with the log.
        building = {p.projection for p in prepared if p.action != "unchanged"}
        runner = None
        if projections:
            # run_projections=false: this replica never projects, and follows the one that does.
            runner = ProjectionRunner(
                nc, db, projections, consumer_prefix=context, project=settings.run_projections
            )
            await runner.start()
            stack.push_async_callback(_bounded, "projections", runner.stop)
        store = EventStore(nc, source="/agora", public_url=settings.base_url)
        commands = definition.commands(store, settings)
        broker: NatsBroker | None = None
        reactors: tuple[Reactor, ...] = ()
        if settings.run_reactors:
            broker, reactors = await _start_reactors(
                stack, definition, settings, store, commands, db=db, runner=runner
            )
        runtime = Runtime(definition, settings, nc, store, db, commands, runner, broker, reactors)
        if runner is not None and building:
            runtime.building = building
            runtime._still_building(await runner.lag())  # an empty log: nothing to build
        log.info(
            "started",
            extra={
                "service": context,
                "database": db.display,
                "projections": runner is not None,
                "reactors": [reactor.name for reactor in reactors],
            },
        )
        started = True
        yield runtime
        log.info("stopping", extra={"service": context})


async def _start_reactors(
    stack: AsyncExitStack,
    definition: ServiceDefinition[Cfg, U],
    settings: Cfg,
    store: EventStore,
    commands: U,
    *,
    db: ReadModelDatabase | None = None,
    runner: ProjectionRunner | None = None,
) -> tuple[NatsBroker | None, tuple[Reactor, ...]]:
    broker = reactor_broker(
        settings.nats_url,
        name=f"{definition.process_name}-reactors",
        tls_ca_file=settings.nats_tls_ca_file,
    )
    parts = ReactorParts(broker, store, commands, settings, db=db, runner=runner)
    reactors = tuple(definition.reactors(parts))
    if not reactors:
        return None, ()
    for reactor in reactors:
        broker.include_router(reactor.router)
    stack.push_async_callback(_bounded, "reactor broker", broker.stop)
    try:
        async with asyncio.timeout(settings.nats_connect_timeout * 3):
            await broker.start()
    except TimeoutError:
        raise NatsUnavailable(
            f"the reactors could not connect to NATS at {redacted(settings.nats_url)} and "
            f"bind their consumers within {settings.nats_connect_timeout * 3:g} s"
        ) from None
    for reactor in reactors:
        reactor.keep_consumers()
        stack.push_async_callback(_bounded, f"reactor {reactor.name}", reactor.stop_keeping)
    return broker, reactors


def building_behind(
    building: Collection[str], targets: dict[tuple[str, str], int], lags: Sequence[Lag]
) -> dict[str, int]:
    """How far each projection in ``building`` is from where its streams ended when first
    looked at (recorded in ``targets`` on that first look); 0 once it has reached them."""
    behind: dict[str, int] = {}
    for lag in lags:
        if lag.projection not in building:
            continue
        target = targets.setdefault((lag.projection, lag.stream), lag.last_sequence)
        remaining = 0 if lag.lag == 0 or lag.checkpoint >= target else lag.lag
        behind[lag.projection] = behind.get(lag.projection, 0) + remaining
    return behind


# -- HTTP ------------------------------------------------------------------------------------


def runtime_of(request: Request) -> Runtime[Any, Any]:
    """The running service, for a route (``app.state.runtime``)."""
    found: Runtime[Any, Any] | None = getattr(request.app.state, "runtime", None)
    if found is None:
        raise HTTPException(503, "the service is still starting; retry shortly")
    return found


async def _runtime(request: Request) -> Runtime[Any, Any]:
    # async: FastAPI runs a plain function dependency on its thread pool, a hop per request.
    return runtime_of(request)


RuntimeOf = Annotated[Runtime[Any, Any], Depends(_runtime)]


# The two readers take the request, not RuntimeOf: a dependency of a dependency costs FastAPI
# a resolution of its own on every request, and these are on every query.
async def reader(request: Request, after: After = None) -> AsyncIterator[AsyncSession]:
    """A read-model session; with ``?after=<sequence>``, once the read model has it."""
    rt = runtime_of(request)
    await rt.refuse_while_building()
    if after is not None:
        await rt.wait_for(after)
    async with rt.session() as db:
        yield db


Reader = Annotated[AsyncSession, Depends(reader)]


async def read_connection(request: Request, after: After = None) -> AsyncIterator[AsyncConnection]:
    """``reader`` without the ORM session: a Core connection, for a hot query that needs
    only ``execute`` (its statements run in one read transaction all the same)."""
    async with reading(request, after) as db:
        yield db


ReadConnection = Annotated[AsyncConnection, Depends(read_connection)]


@asynccontextmanager
async def reading(request: Request, after: int | None) -> AsyncIterator[AsyncConnection]:
    """``read_connection`` for a route that declares ``after: After`` itself and opens the
    connection in its body: the hottest read does without the yielding dependency, which
    FastAPI enters on an exit stack under a shielded cancel scope on every request."""
    rt = runtime_of(request)
    await rt.refuse_while_building()
    if after is not None:
        await rt.wait_for(after)
    async with rt.db.connect() as db:
        yield db


def use_cases(request: Request, kind: type[U]) -> U:
    """The service's use cases, typed as ``kind``: what ``commands_of`` gives, called
    directly by a hot route that resolves no dependency."""
    commands = runtime_of(request).commands
    if not isinstance(commands, kind):
        raise TypeError(f"the running service's use cases are not {kind.__name__}")
    return commands


def commands_of(kind: type[U]) -> Callable[[Request], Awaitable[U]]:
    """A dependency giving a route the service's use cases, typed as ``kind``."""

    async def dependency(request: Request) -> U:
        return use_cases(request, kind)

    return dependency


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz(request: Request) -> Health:
        """Liveness: the process answers."""
        return Health(status="ok", service=request.app.state.service)

    @router.get("/readyz", responses={503: {"model": Readiness}})
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: NATS is connected, the projections and reactors are working."""
        runtime: Runtime[Any, Any] | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            report = Readiness(
                status="not ready",
                service=request.app.state.service,
                checks=Checks(nats="disconnected", problems=["starting"]),
            )
        else:
            report = await runtime.readiness()
        code = 200 if report.status == "ready" else 503
        return JSONResponse(report.model_dump(mode="json"), status_code=code)

    return router


def application(
    definition: ServiceDefinition[Cfg, U],
    settings: Cfg,
    lifespan: Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    app = FastAPI(
        title=f"Agora {definition.title}",
        version=definition.version,
        summary=definition.summary,
        responses=ERROR_RESPONSES,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry (on as soon as a TracerProvider is set) would add a
        # second SERVER span per request beside TraceMiddleware's, a span per dependency,
        # endpoint and serialisation, and metrics: about a fifth of the event loop's CPU per
        # request (bench/bench_http.py). TraceMiddleware makes the one SERVER span.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = definition.context
    app.state.settings = settings
    # The service's own routes first: since FastAPI 0.137 a request walks the routes and
    # included routers in order until one matches, and the probes, schemas, metrics and docs
    # are asked for far less often than the service's routes (bench/http_inprocess.py).
    for router in definition.routers(settings):
        app.include_router(router)
    app.include_router(health_router())
    app.include_router(schemas_router())
    install_edges(app)
    install_docs(app)
    app.add_middleware(AdmissionControl, limit=settings.max_requests_in_flight)
    return app


def create_app(definition: ServiceDefinition[Cfg, U], settings: Cfg) -> FastAPI:
    """The service as an ASGI app that starts and stops with its server's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(definition, settings) as runtime:
            app.state.runtime = runtime
            try:
                yield
            finally:
                app.state.runtime = None

    return application(definition, settings, lifespan)


class Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: FastAPI, host: str, port: int, *, grace: float = 10.0) -> Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=int(grace),
        # Longer than the idle timeout of the proxies in front (60 s is common), so the
        # server never closes a kept-alive connection a client is just reusing (uvicorn's 5 s
        # default loses that race under load: the request dies with a reset connection).
        timeout_keep_alive=75,
    )
    return Server(config)


class _Stopping:
    """What SIGTERM/SIGINT do: the first stops the service gracefully — cancelling the
    start if it is still starting, ending the server if it serves — and arms a watchdog
    that ends the process after ``timeout``; a second signal ends it at once.

    The handlers are plain ``signal`` handlers, not the event loop's: they run even while
    the loop is stuck (a write to a stderr nobody reads), so the watchdog is armed and a
    second signal is heard whatever the loop is doing. The graceful part is handed to the
    loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, lifetime: asyncio.Task[Any], timeout: float
    ) -> None:
        self.loop = loop
        self.lifetime = lifetime
        self.timeout = timeout
        self.server: Server | None = None
        self.signals = 0
        self.past_start = False
        """Set once the service has started: from then on a stop is graceful, not a cancel."""

    def __call__(self, signum: int, frame: object = None) -> None:
        self.signals += 1
        if self.signals > 1:
            _exit_now(128 + signum, "second stop signal: exiting now")
        watchdog = threading.Timer(
            self.timeout,
            _exit_now,
            args=(128 + signum, "stop took longer than the shutdown timeout: exiting now"),
        )
        watchdog.daemon = True
        watchdog.start()
        self.loop.call_soon_threadsafe(self._stop, signum)

    def _stop(self, signum: int) -> None:
        log.info("stop signal", extra={"signal": signal.Signals(signum).name})
        if self.server is not None and self.server.started:
            self.server.should_exit = True
        elif self.past_start:
            self.lifetime.cancel()  # started, not yet serving
        else:
            self._cancel_start()

    def _cancel_start(self) -> None:
        """Cancel the start, and again every ``RECANCEL_SECONDS`` while it is still
        starting: Python 3.11's ``asyncio.wait_for`` (under nats-py's connect and requests)
        swallows a cancel that lands as its awaitable completes, and the start would then
        wait on, for the next reply. The steps of the stop that follow are not cut short by
        the cancels that keep coming (``_bounded``)."""
        if self.lifetime.done() or self.past_start:
            return
        self.lifetime.cancel()
        self.loop.call_later(RECANCEL_SECONDS, self._cancel_start)

    @property
    def requested(self) -> bool:
        return self.signals > 0


def _exit_now(code: int, message: str) -> None:
    """End the process at once, saying why if stderr still takes a line. The line is written
    straight to the file descriptor (the logging lock may be held by the very thread a
    signal interrupted) from a helper thread given half a second (stderr may be full)."""
    line = json.dumps(
        {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "warning",
            "logger": log.name,
            "message": message,
        }
    )
    telling = threading.Thread(
        target=os.write, args=(sys.stderr.fileno(), (line + "\n").encode()), daemon=True
    )
    telling.start()
    telling.join(0.5)
    os._exit(code)


def settle_heap() -> int:
    """Collect once, then freeze what is left: the objects of the start (modules, classes,
    the app's routes and models, FastAPI's and pydantic's schemas), about 110,000 of them,
    move to the collector's permanent generation. Returns how many were frozen.

    Why: a full collection walks every tracked object while the loop waits. With the start's
    objects in it, each took 70-100 ms on the 2-core machine and came every few seconds
    under load, and every request in flight waited that long; frozen, a full collection
    walks only what the running service made since (7-15 ms). Objects of the start that
    become garbage later are still freed by reference counting, only not in cycles."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def serve(definition: ServiceDefinition[Cfg, U], settings: Cfg) -> int:
    """Run the service until SIGTERM or SIGINT; 0 after a clean stop, 1 if it could not
    serve (the port taken)."""
    lifetime = asyncio.current_task()
    assert lifetime is not None
    stopping = _Stopping(asyncio.get_running_loop(), lifetime, settings.shutdown_timeout)
    previous = {sig: signal.signal(sig, stopping) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        async with running(definition, settings) as runtime:
            stopping.past_start = True
            if stopping.requested:
                # The start's cancellation can be lost (asyncio.wait_for in Python 3.11
                # swallows a cancel arriving as its awaitable completes): stop here instead.
                log.info("stopped while starting", extra={"service": definition.context})
                return 0
            server = http_server(
                runtime.app, settings.http_host, settings.http_port, grace=STOP_STEP_SECONDS
            )
            stopping.server = server
            frozen = settle_heap()
            log.info(
                "serving",
                extra={
                    "host": settings.http_host,
                    "port": settings.http_port,
                    "frozen_objects": frozen,
                },
            )
            await server.serve()
            if not server.started and not stopping.requested:
                log.error("could not serve", extra={"port": settings.http_port})
                return 1
    except asyncio.CancelledError:
        if not stopping.requested:
            raise
        log.info("stopped while starting", extra={"service": definition.context})
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped", extra={"service": definition.context})
    return 0


@asynccontextmanager
async def commands_on_nats(
    definition: ServiceDefinition[Cfg, U], settings: Cfg
) -> AsyncIterator[U]:
    """The service's use cases on a short-lived connection, for a command-line task."""
    load_all()
    nc = await connect(
        settings.nats_url,
        name=f"{definition.process_name}-task",
        timeout=settings.nats_connect_timeout,
        tls_ca_file=settings.nats_tls_ca_file,
    )
    try:
        await ensure_own_stream(nc, definition.context, settings.stream_replicas)
        store = EventStore(nc, source="/agora", public_url=settings.base_url)
        yield definition.commands(store, settings)
    finally:
        await _close(nc)


def main(definition: ServiceDefinition[Cfg, U], argv: list[str] | None = None) -> int:
    """The process entry point: ``serve`` (the default) or one of the definition's tasks."""
    prog = f"python -m agora_{definition.context}.main"
    parser = argparse.ArgumentParser(prog=prog, description=f"Agora's {definition.title}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API, projections and reactors (default)")
    for name, task in definition.tasks.items():
        arguments = commands.add_parser(name, help=task.help)
        if task.arguments is not None:
            task.arguments(arguments)
    args = parser.parse_args(argv)
    configure_logging()
    configure_tracing(definition.process_name)
    try:
        settings = definition.settings()
    except ValidationError as exc:
        print(f"{prog}: invalid settings: {_settings_errors(exc)}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # a value that does not parse (JSON for a list, say)
        print(f"{prog}: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            if args.command in (None, "serve"):
                return runner.run(serve(definition, settings))
            return runner.run(definition.tasks[args.command].run(settings, args))
    except (NatsUnavailable, StoreError, OSError, nats.errors.Error) as exc:
        print(f"{prog}: cannot {args.command or 'serve'}: {exc}", file=sys.stderr)
        return 1


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """asyncio's own event loop, unless ``AGORA_EVENT_LOOP=uvloop``. uvloop costs less CPU
    per loop step, but on the whole flow (bench/bench_http.py) it bought too little, too
    unevenly, to be the default (docs/architecture.md, "The collector's pauses")."""
    if os.environ.get("AGORA_EVENT_LOOP") != "uvloop":
        return None
    import uvloop

    return uvloop.new_event_loop


def _settings_errors(exc: ValidationError) -> str:
    """The settings' errors without the values given (a token must not reach a log)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
        for error in exc.errors()
    )


__all__ = [
    "Health",
    "ReactorParts",
    "ReadConnection",
    "Reader",
    "Readiness",
    "Runtime",
    "RuntimeOf",
    "ServiceDefinition",
    "Task",
    "commands_of",
    "commands_on_nats",
    "create_app",
    "main",
    "reading",
    "running",
    "serve",
    "settle_heap",
    "use_cases",
]
