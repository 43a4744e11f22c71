"""``configure_tracing`` sets the process-wide tracer provider, which a process can do once:
each test runs it in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

PROBE = """
import json, logging
from opentelemetry import trace
from agora_events.logs import JsonLines
from agora_events.tracing import configure_tracing, tracer

configure_tracing("agora-probe")
configure_tracing("agora-second-call")
with tracer().start_as_current_span("probe"):
    record = logging.makeLogRecord({"name": "agora.probe", "levelname": "INFO", "msg": "hi"})
    print(JsonLines().format(record))
"""


class Collector(HTTPServer):
    """An OTLP/HTTP endpoint that keeps what it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CollectorHandler)
        self.received: list[tuple[str, bytes]] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_python(code: str, **env: str) -> str:
    """What ``code`` prints, run in a fresh process with no ``OTEL_`` variable but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def run_probe(**env: str) -> dict[str, str]:
    line: dict[str, str] = json.loads(run_python(PROBE, **env).splitlines()[-1])
    return line


def test_spans_go_to_the_otlp_endpoint_with_the_service_name(collector: Collector) -> None:
    # The process exits right after its span; the batch is flushed at exit.
    line = run_probe(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url)
    [(path, body)] = collector.received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "agora-probe"
    [span] = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert span.name == "probe"
    assert (span.trace_id.hex(), span.span_id.hex()) == (line["trace_id"], line["span_id"])


def test_the_traces_endpoint_alone_is_enough_and_otel_service_name_wins(
    collector: Collector,
) -> None:
    run_probe(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{collector.url}/custom/traces",
        OTEL_SERVICE_NAME="renamed",
    )
    [(path, body)] = collector.received
    assert path == "/custom/traces"
    [resource_spans] = ExportTraceServiceRequest.FromString(body).resource_spans
    names = [a.value.string_value for a in resource_spans.resource.attributes]
    assert "renamed" in names
    assert "agora-probe" not in names


def test_without_an_endpoint_spans_still_give_log_lines_real_trace_ids() -> None:
    line = run_probe()
    assert len(line["trace_id"]) == 32 and int(line["trace_id"], 16) != 0
    assert len(line["span_id"]) == 16 and int(line["span_id"], 16) != 0


RECORDING_PROBE = """
from agora_events.tracing import configure_tracing, extract_context, tracer

configure_tracing("agora-probe")
caller = extract_context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
begun_here = tracer().start_span("here")
continued = tracer().start_span("continued", context=caller)
print(begun_here.is_recording(), begun_here.get_span_context().is_valid, continued.is_recording())
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "False True True"),  # nothing exports: a trace begun here is not recorded
        ({"OTEL_TRACES_SAMPLER": "always_on"}, "True True True"),  # unless a sampler says so
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, "True True True"),
    ],
)
def test_a_trace_begun_here_is_recorded_only_where_something_receives_it(
    env: dict[str, str], expected: str
) -> None:
    assert run_python(RECORDING_PROBE, **env) == expected


def test_importing_the_kernel_sets_up_no_tracing() -> None:
    code = (
        "import sys, agora_events.http, agora_events.commands, agora_events.logs\n"
        "from opentelemetry import trace\n"
        "assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
