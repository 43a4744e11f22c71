"""Prometheus metrics every service exposes at ``/metrics``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

COMMANDS = Counter(
    "agora_commands_total",
    "Commands handled, by scope context and outcome",
    ["context", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "agora_command_seconds",
    "Time to handle a command: decide, append, retries",
    ["context"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
APPEND_CONFLICTS = Counter(
    "agora_append_conflicts_total",
    "Appends refused because the consistency scope moved on (each is retried)",
    ["context"],
)
PROJECTION_EVENTS = Counter(
    "agora_projection_events_total",
    "Events applied by projections",
    ["projection", "stream"],
)
PROJECTION_LAG = Gauge(
    "agora_projection_lag",
    "Stream sequences between the projection's checkpoint and the stream's end, 0 when none "
    "it reads is pending; measured at each scrape, as /readyz reports it",
    ["projection", "stream"],
)
REACTOR_LAG = Gauge(
    "agora_reactor_lag",
    "Events a reactor's consumer has not settled yet (pending and awaiting acknowledgement); "
    "measured at each scrape, as /readyz reports it",
    ["consumer"],
)
PROJECTION_BATCH_SECONDS = Histogram(
    "agora_projection_batch_seconds",
    "Time to apply and commit one batch of events",
    ["projection"],
)
DEAD_LETTERS = Counter(
    "agora_projection_dead_letters",
    "Events this process parked in the dead-letter table (agora dead-letters list shows them)",
    ["projection"],
)
FOREIGN_MESSAGES = Counter(
    "agora_foreign_messages_total",
    "Stored messages that are not Agora events, stepped over when reading history "
    "(each counted once per process; agora streams foreign lists them)",
    ["stream", "reason"],
)
CONSUMER_EVENTS = Counter(
    "agora_consumer_events_total",
    "Events settled by FastStream consumers (reactors), by consumer and outcome",
    ["consumer", "outcome"],
)
CONSUMER_HANDLER_SECONDS = Histogram(
    "agora_consumer_handler_seconds",
    "Time from receiving an event to settling it, handler included",
    ["consumer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)


def metrics_router() -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # Lags are measured now, not left as they were after the last batch: a stuck
        # projection has no next batch to report it (the service shell sets the hook).
        refresh: Callable[[], Awaitable[object]] | None = getattr(
            request.app.state, "refresh_metrics", None
        )
        if refresh is not None:
            await refresh()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
