from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from nats.aio.client import Client as NATS
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.commands import CommandHandler
from agora_events.decider import Rejected
from agora_events.http import install_edges
from agora_events.logs import JsonLines
from agora_events.projections import EventContext, Projection
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.runner import ProjectionRunner
from agora_events.store import ConcurrencyConflict, EventStore, Expected, Metadata
from agora_events.tracing import TraceMiddleware, consumer_span, trace_id, tracer

from .counter import CounterOpened, Incremented, Open, counter_decider, registry, scope
from .projections.helpers import FAST

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
PARENT = f"00-{TRACE}-{PARENT_SPAN}-01"
MALFORMED = [
    "garbage",
    "01-xyz",
    f"00-{'0' * 32}-{PARENT_SPAN}-01",  # the all-zero trace id is invalid
    f"00-{TRACE}-{'0' * 16}-01",  # so is the all-zero span id
    f"00-{TRACE.upper()}-{PARENT_SPAN}-01",
]


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def parent_id(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None


def traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    trace, span_id = hex_ids(span)
    return f"00-{trace}-{span_id}-{context.trace_flags:02x}"


def only(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    [found] = [span for span in spans.get_finished_spans() if span.name == name]
    return found


class JsonCapture(logging.Handler):
    """Formats each record as it is emitted, while its span is still current."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonLines())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_logs() -> Iterator[JsonCapture]:
    capture = JsonCapture()
    logger = logging.getLogger("agora.test")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)


def traced_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(TraceMiddleware)

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str | None]:
        return {"trace": trace_id()}

    return app


async def get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agora") as client:
        return await client.get(path, headers=headers)


# -- HTTP --------------------------------------------------------------------------------------


async def test_a_request_runs_in_a_server_span_named_after_its_route_template(
    recorded_spans: InMemorySpanExporter,
) -> None:
    response = await get(traced_app(), "/things/t-42")
    server = only(recorded_spans, "GET /things/{thing_id}")
    assert server.kind is SpanKind.SERVER
    assert server.parent is None
    assert dict(server.attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/things/t-42",
        "http.route": "/things/{thing_id}",
        "http.response.status_code": 200,
    }
    assert response.json() == {"trace": hex_ids(server)[0]}
    assert response.headers["traceparent"] == traceparent(server)


async def test_a_request_continues_the_callers_trace(
    recorded_spans: InMemorySpanExporter,
) -> None:
    response = await get(traced_app(), "/things/t-1", {"traceparent": PARENT})
    server = only(recorded_spans, "GET /things/{thing_id}")
    assert hex_ids(server)[0] == TRACE
    assert parent_id(server) == PARENT_SPAN
    assert server.parent is not None and server.parent.is_remote
    assert response.json() == {"trace": TRACE}
    assert response.headers["traceparent"] == traceparent(server)


@pytest.mark.parametrize("malformed", MALFORMED)
async def test_a_malformed_traceparent_starts_a_new_trace(
    recorded_spans: InMemorySpanExporter, malformed: str
) -> None:
    response = await get(traced_app(), "/things/t-1", {"traceparent": malformed})
    server = only(recorded_spans, "GET /things/{thing_id}")
    assert server.parent is None
    assert hex_ids(server)[0] != TRACE
    assert response.headers["traceparent"] == traceparent(server)


async def test_a_server_error_marks_the_server_span_as_failed(
    recorded_spans: InMemorySpanExporter,
) -> None:
    app = FastAPI()
    app.add_middleware(TraceMiddleware)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("out of order")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://agora") as client:
        response = await client.get("/broken")
    assert response.status_code == 500
    server = only(recorded_spans, "GET /broken")
    assert server.status.status_code is StatusCode.ERROR
    assert [event.name for event in server.events] == ["exception"]


async def test_without_a_tracer_provider_an_incoming_trace_still_reaches_the_events(
    event_store: EventStore,
) -> None:
    # No provider in this test: spans are not recorded, but the caller's context flows on.
    store = EventStore(event_store._nc, registry=registry)
    handler = CommandHandler(store, counter_decider, scope)
    app = FastAPI()
    app.add_middleware(TraceMiddleware)

    @app.get("/open/{counter_id}")
    async def open_counter(counter_id: str) -> dict[str, int]:
        result = await handler.handle(Open(counter_id))
        return {"sequence": result.last_sequence}

    response = await get(app, "/open/quiet", {"traceparent": PARENT})
    assert response.headers["traceparent"].split("-")[1] == TRACE
    [record] = await store.read("agenda.counter.quiet.*")
    assert record.envelope.traceparent is not None
    assert record.envelope.traceparent.split("-")[1] == TRACE


# -- one trace from the request to the read model --------------------------------------------


def logging_projection() -> Projection:
    projection = Projection("traced_counters", subjects=["agenda.counter.>"], metadata=MetaData())

    @projection.on(CounterOpened)
    async def _opened(db: AsyncSession, event: CounterOpened, ctx: EventContext) -> None:
        logging.getLogger("agora.test").info("counted", extra={"counter_id": event.counter_id})

    return projection


async def test_an_http_command_is_one_trace_from_the_request_through_append_to_the_projection(
    recorded_spans: InMemorySpanExporter,
    json_logs: JsonCapture,
    nats_client: NATS,
    tmp_path: Path,
) -> None:
    store = EventStore(nats_client, registry=registry, source="/test")
    handler = CommandHandler(store, counter_decider, scope)
    app = FastAPI()
    install_edges(app)

    @app.post("/counters/{counter_id}")
    async def open_counter(counter_id: str) -> dict[str, int]:
        result = await handler.handle(Open(counter_id))
        return {"sequence": result.last_sequence}

    projection = logging_projection()
    db = ReadModelDatabase(f"sqlite+aiosqlite:///{tmp_path}/read.db")
    await db.prepare([projection])
    runner = ProjectionRunner(
        nats_client, db, [projection], consumer_prefix="test", registry=registry, options=FAST
    )
    await runner.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agora") as client:
            response = await client.post("/counters/c-7", headers={"traceparent": PARENT})
        sequence = response.json()["sequence"]
        await runner.wait_for(sequence, stream="AGENDA")
    finally:
        await runner.stop()
        await db.dispose()

    server = only(recorded_spans, "POST /counters/{counter_id}")
    command = only(recorded_spans, "command Open")
    append = only(recorded_spans, "append AGENDA")
    project = only(recorded_spans, "project traced_counters agora.agenda.counter.opened.v1")
    assert {hex_ids(span)[0] for span in (server, command, append, project)} == {TRACE}
    assert parent_id(server) == PARENT_SPAN
    assert parent_id(command) == hex_ids(server)[1]
    assert parent_id(append) == hex_ids(command)[1]
    assert parent_id(project) == hex_ids(append)[1]
    assert [span.kind for span in (server, command, append, project)] == [
        SpanKind.SERVER,
        SpanKind.INTERNAL,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
    ]
    assert (command.attributes or {})["agora.command.outcome"] == "accepted"
    assert dict(append.attributes or {}) == {
        "messaging.system": "nats",
        "messaging.operation.type": "send",
        "messaging.destination.name": "agenda.counter.c-7.opened",
        "agora.events": 1,
        "agora.stream.sequence": sequence,
    }
    assert (project.attributes or {})["agora.stream.sequence"] == sequence
    assert response.headers["traceparent"] == traceparent(server)
    [line] = [line for line in json_logs.lines if line["message"] == "counted"]
    assert (line["trace_id"], line["span_id"]) == hex_ids(project)


# -- appends and consumers ---------------------------------------------------------------------


async def test_appended_events_carry_the_append_spans_context(
    recorded_spans: InMemorySpanExporter, nats_client: NATS
) -> None:
    store = EventStore(nats_client, registry=registry)
    with tracer().start_as_current_span("caller") as caller:
        result = await store.append(
            [CounterOpened(counter_id="b1"), Incremented(counter_id="b1", tag="x")],
            expected=Expected("agenda.counter.b1.*"),
        )
    append = only(recorded_spans, "append AGENDA")
    assert parent_id(append) == f"{caller.get_span_context().span_id:016x}"
    assert (append.attributes or {})["agora.events"] == 2
    assert (append.attributes or {})["agora.stream.sequence"] == result.last_sequence
    records = await store.read("agenda.counter.b1.*")
    assert [r.envelope.traceparent for r in records] == [traceparent(append)] * 2


async def test_an_append_continues_a_traceparent_given_in_its_metadata(
    recorded_spans: InMemorySpanExporter, nats_client: NATS
) -> None:
    store = EventStore(nats_client, registry=registry)
    await store.append(
        [CounterOpened(counter_id="m1")],
        expected=Expected("agenda.counter.m1.*"),
        metadata=Metadata(traceparent=PARENT),
    )
    append = only(recorded_spans, "append AGENDA")
    assert hex_ids(append)[0] == TRACE
    assert parent_id(append) == PARENT_SPAN
    [record] = await store.read("agenda.counter.m1.*")
    assert record.envelope.traceparent == traceparent(append)


async def test_a_refused_append_is_a_failed_span(
    recorded_spans: InMemorySpanExporter, nats_client: NATS
) -> None:
    store = EventStore(nats_client, registry=registry)
    await store.append([CounterOpened(counter_id="r1")], expected=Expected("agenda.counter.r1.*"))
    with pytest.raises(ConcurrencyConflict):
        await store.append(
            [CounterOpened(counter_id="r1")], expected=Expected("agenda.counter.r1.*")
        )
    refused = recorded_spans.get_finished_spans()[-1]
    assert refused.name == "append AGENDA"
    assert refused.status.status_code is StatusCode.ERROR


async def test_a_rejected_command_is_an_outcome_not_an_error(
    recorded_spans: InMemorySpanExporter, nats_client: NATS
) -> None:
    handler = CommandHandler(EventStore(nats_client, registry=registry), counter_decider, scope)
    await handler.handle(Open("twice"))
    with pytest.raises(Rejected):
        await handler.handle(Open("twice"))
    first, second = [s for s in recorded_spans.get_finished_spans() if s.name == "command Open"]
    assert (first.attributes or {})["agora.command.outcome"] == "accepted"
    assert (second.attributes or {})["agora.command.outcome"] == "rejected"
    assert second.status.status_code is StatusCode.UNSET


def test_a_consumer_span_continues_the_trace_of_the_event(
    recorded_spans: InMemorySpanExporter,
) -> None:
    with consumer_span("react agora.agenda.counter.opened.v1", PARENT) as span:
        inside = trace_id()
    [recorded] = recorded_spans.get_finished_spans()
    assert recorded.get_span_context() == span.get_span_context()
    assert recorded.kind is SpanKind.CONSUMER
    assert (inside, parent_id(recorded)) == (TRACE, PARENT_SPAN)


@pytest.mark.parametrize("malformed", [None, "", *MALFORMED])
def test_a_consumer_span_without_a_valid_traceparent_starts_a_new_trace(
    recorded_spans: InMemorySpanExporter, malformed: str | None
) -> None:
    with tracer().start_as_current_span("unrelated"), consumer_span("react", malformed):
        pass
    consumer = only(recorded_spans, "react")
    assert consumer.parent is None
    assert hex_ids(consumer)[0] not in (TRACE, hex_ids(only(recorded_spans, "unrelated"))[0])


# -- logs --------------------------------------------------------------------------------------


def test_log_lines_are_json_with_the_trace_and_span_ids_and_extra_fields(
    recorded_spans: InMemorySpanExporter, json_logs: JsonCapture
) -> None:
    with tracer().start_as_current_span("work") as span:
        logging.getLogger("agora.test").info("applied", extra={"event_id": "e-1"})
    [line] = json_logs.lines
    assert line["message"] == "applied"
    assert line["event_id"] == "e-1"
    context = span.get_span_context()
    assert (line["trace_id"], line["span_id"]) == (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )


def test_log_lines_outside_any_span_carry_no_trace_id(json_logs: JsonCapture) -> None:
    logging.getLogger("agora.test").info("idle")
    [line] = json_logs.lines
    assert "trace_id" not in line
    assert "span_id" not in line
