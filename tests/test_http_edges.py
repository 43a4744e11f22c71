"""What every service's HTTP edge gives an operator and a client, checked on each service's
own app: one SERVER span and one log line per request, errors as RFC 9457 problem details, an
OpenAPI document with its bearer scheme, and /docs served without any CDN."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agora_cli.services import SERVICES
from agora_events.catalogue import SCHEMA_PATH
from agora_events.logs import JsonLines
from agora_events.service import ServiceDefinition, application
from agora_events.tracing import use_tracer_provider

URL = re.compile(r'(?:src|href)="([^"]+)"')


def definition_of(entry: Any) -> ServiceDefinition[Any, Any]:
    module = entry.load()
    (found,) = [v for v in vars(module).values() if isinstance(v, ServiceDefinition)]
    return found


@pytest.fixture(params=SERVICES, ids=lambda e: e.name)
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The service's app as the shell builds it (not started: no NATS needed for these)."""
    entry = request.param
    app = application(definition_of(entry), entry.load().load_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        use_tracer_provider(None)


@pytest.fixture
def request_lines() -> Iterator[io.StringIO]:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("agora.http.request")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def test_one_server_span_and_one_log_line_per_request(
    client: httpx.AsyncClient, spans: InMemorySpanExporter, request_lines: io.StringIO
) -> None:
    for path in (SCHEMA_PATH.rstrip("/"), "/no-such-route", "/healthz"):
        await client.get(path, params={"q": "secret-query-value"})
    server = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(server) == 3
    records = [json.loads(line) for line in request_lines.getvalue().splitlines()]
    # The probe's line is at debug level: two at info, each with its request's trace.
    assert [(r["method"], r["route"], r["status"]) for r in records] == [
        ("GET", SCHEMA_PATH.rstrip("/"), 200),
        ("GET", "unmatched", 404),
    ]
    assert [r["trace_id"] for r in records] == [
        f"{s.context.trace_id:032x}" for s in server[:2] if s.context is not None
    ]
    assert "secret-query-value" not in request_lines.getvalue()


async def test_errors_are_problem_details_keeping_error_and_reason(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/no-such-route")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"] == "urn:agora:problem:NotFound"
    assert body["title"] == "Not found"
    assert body["status"] == 404
    assert body["detail"] == body["reason"] and body["error"] == "NotFound"


async def test_openapi_declares_the_bearer_scheme_and_problem_responses(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {"bearer": []} in document["security"]
    problem = document["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "error", "reason"} <= set(problem)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_load_every_file_from_the_service_itself(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text
    urls = URL.findall(html)
    assert urls
    for url in urls:
        assert url.startswith("/"), url  # nothing from another host
        answer = await client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
