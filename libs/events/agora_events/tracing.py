"""OpenTelemetry traces from an HTTP request through the events it causes, and into logs.

``configure_tracing`` gives the process its TracerProvider (each service's ``main`` calls it
once). The HTTP middleware opens a SERVER span per request, continuing the caller's W3C
``traceparent``; the command handler opens a span per command, the store a PRODUCER span per
append, and that span's context travels on every appended event as the CloudEvents
``traceparent``/``tracestate`` extensions. Whoever handles an event (projections, reactors,
notifiers) continues its trace with ``consumer_span``. Log lines carry the current span's ids.

Without ``configure_tracing`` nothing is recorded, but an incoming trace context still flows
through to the events.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanContext, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from contextvars import Token

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACER_NAME = "agora_events"
EXPORT_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_W3C = TraceContextTextMapPropagator()


class _State:
    tracer: Tracer | None = None
    configured = False


def configure_tracing(service_name: str) -> None:
    """Record this process's spans, and export them over OTLP/HTTP when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set.

    Without an endpoint nothing would receive a recorded span, so unless
    ``OTEL_TRACES_SAMPLER`` says otherwise a trace this process starts is not recorded
    (parent-based: a caller's sampled trace still is). Its spans still have real ids, which
    log lines carry; they cost no attributes, events or span processor (about 4 % of a
    register-and-read flow's instructions, bench/http_inprocess.py). The standard
    ``OTEL_*`` variables apply: ``OTEL_SERVICE_NAME`` overrides ``service_name``,
    ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``,
    ``OTEL_SDK_DISABLED``. Calling it again does nothing."""
    if _State.configured:
        return
    _State.configured = True
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # someone (opentelemetry-instrument, say) configured the process already
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    exporting = any(os.environ.get(name) for name in EXPORT_ENDPOINTS)
    chosen = exporting or os.environ.get("OTEL_TRACES_SAMPLER")
    sampler = None if chosen else ParentBased(ALWAYS_OFF)  # None: the OTEL_* variables' own
    provider = TracerProvider(resource=Resource.create(named), sampler=sampler)
    if exporting:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def use_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Send Agora's spans to ``provider`` instead of the process-wide one (None: back to it).

    For tests, which cannot replace the process-wide provider more than once."""
    _State.tracer = provider.get_tracer(TRACER_NAME) if provider is not None else None


def tracer() -> Tracer:
    found = _State.tracer
    if found is None:
        found = _State.tracer = trace.get_tracer(TRACER_NAME)
    return found


# -- trace context on the wire -------------------------------------------------------------


def extract_context(traceparent: str | None, tracestate: str | None = None) -> context.Context:
    """The context a W3C ``traceparent`` describes; an empty one (a new trace) when it is
    missing or malformed."""
    if not traceparent:
        return context.Context()
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _W3C.extract(carrier)


def traceparent_of(span: Span) -> tuple[str | None, str | None]:
    """The span's W3C ``traceparent`` and ``tracestate``; (None, None) for an invalid span."""
    return _headers(span.get_span_context())


def _headers(span_context: SpanContext) -> tuple[str | None, str | None]:
    # What TraceContextTextMapPropagator.inject writes, without the context and carrier it
    # needs: this runs on every append.
    if not span_context.is_valid:
        return None, None
    traceparent = (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{span_context.trace_flags:02x}"
    )
    state = span_context.trace_state
    return traceparent, state.to_header() if state else None


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id (hex), or None outside any span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def trace_id() -> str | None:
    """The current trace id (hex), or None outside any span."""
    ids = current_ids()
    return ids[0] if ids else None


# -- spans of Agora's own steps ------------------------------------------------------------


@contextmanager
def consumer_span(
    name: str, traceparent: str | None, tracestate: str | None = None
) -> Iterator[Span]:
    """A CONSUMER span, current while the block runs, continuing the trace of the event that
    carried ``traceparent`` (a new trace when it is missing or malformed).

    For anything that handles events: ``with consumer_span("react <type>",
    envelope.traceparent, envelope.tracestate):``."""
    parent = extract_context(traceparent, tracestate)
    with tracer().start_as_current_span(name, parent, kind=SpanKind.CONSUMER) as span:
        yield span


class CommandSpan:
    """The span of one command, current from creation until ``end``."""

    __slots__ = ("_span", "_token")

    def __init__(self, command: object) -> None:
        self._span = span = tracer().start_span(f"command {type(command).__name__}")
        # A span that records nothing has nothing for the append span to hang under.
        self._token: Token[context.Context] | None = (
            context.attach(trace.set_span_in_context(span)) if span.is_recording() else None
        )

    def end(self, outcome: str) -> None:
        if self._token is not None:
            context.detach(self._token)
        span = self._span
        if span.is_recording():
            span.set_attribute("agora.command.outcome", outcome)
            if outcome == "error":
                span.set_status(StatusCode.ERROR)
        span.end()


def append_span(
    stream: str, subject: str, count: int, traceparent: str | None, tracestate: str | None
) -> Span:
    """The PRODUCER span of one append, a child of the current span, or of ``traceparent``
    when the caller gave one. Used as a context manager, it ends there."""
    parent = extract_context(traceparent, tracestate) if traceparent else None
    span = tracer().start_span(f"append {stream}", parent, kind=SpanKind.PRODUCER)
    if span.is_recording():
        span.set_attributes(
            {
                "messaging.system": "nats",
                "messaging.operation.type": "send",
                "messaging.destination.name": subject,
                "agora.events": count,
            }
        )
    return span


def appended(span: Span, sequence: int) -> None:
    if span.is_recording():
        span.set_attribute("agora.stream.sequence", sequence)


# -- HTTP ------------------------------------------------------------------------------------


class TraceMiddleware:
    """A SERVER span per HTTP request, continuing the caller's W3C trace context (a missing
    or malformed one starts a new trace). The response carries the span's ``traceparent``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {}
        for name, value in scope["headers"]:
            if name in (b"traceparent", b"tracestate"):
                carrier[name.decode()] = value.decode("latin-1")
        method = scope["method"]
        parent = _W3C.extract(carrier)
        with tracer().start_as_current_span(method, parent, kind=SpanKind.SERVER) as span:
            traceparent, _ = traceparent_of(span)
            status = 500

            async def send_traced(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    if traceparent is not None:
                        headers = [*message.get("headers", ())]
                        headers.append((b"traceparent", traceparent.encode()))
                        message = {**message, "headers": headers}
                await send(message)

            started = time.perf_counter()
            try:
                await self.app(scope, receive, send_traced)
            finally:
                if span.is_recording():
                    _describe_request(span, scope, method, status)
                _log_request(scope, method, status, time.perf_counter() - started)


_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probed every few seconds: their lines are at debug level."""
_requests = logging.getLogger("agora.http.request")


def _log_request(scope: Scope, method: str, status: int, seconds: float) -> None:
    """One line per request, inside its span (so with its trace id): the route's template,
    not the path, and no query string, so no value a client sent is logged."""
    path = scope.get("path", "")
    level = logging.DEBUG if path in _QUIET else logging.INFO
    if not _requests.isEnabledFor(level):
        return
    route = getattr(scope.get("route"), "path", None)
    _requests.log(
        level,
        "request",
        extra={
            "method": method,
            "route": route if isinstance(route, str) else "unmatched",
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
        },
    )


def _describe_request(span: Span, scope: Scope, method: str, status: int) -> None:
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.scheme": scope.get("scheme", "http"),
        "url.path": scope.get("path", ""),
        "http.response.status_code": status,
    }
    route = getattr(scope.get("route"), "path", None)  # set by the router once it matched
    if isinstance(route, str):
        attributes["http.route"] = route
        span.update_name(f"{method} {route}")
    span.set_attributes(attributes)
    if status >= 500:
        span.set_status(StatusCode.ERROR)
