from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi import FastAPI

from agora_events.logs import JsonLines
from agora_events.store import EventStore, Expected
from agora_events.tracing import TraceMiddleware, child_of, current_traceparent, trace_id

from .counter import CounterOpened

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_child_span_keeps_the_trace_and_gets_a_new_span() -> None:
    child = child_of(PARENT)
    assert trace_id(child) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert child != PARENT


@pytest.mark.parametrize("bad", [None, "", "garbage", "01-xyz"])
def test_a_malformed_parent_starts_a_new_trace(bad: str | None) -> None:
    assert trace_id(child_of(bad)) is not None


async def test_http_requests_continue_the_callers_trace() -> None:
    app = FastAPI()
    app.add_middleware(TraceMiddleware)

    @app.get("/where")
    async def where() -> dict[str, str | None]:
        return {"trace": trace_id()}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agora") as client:
        response = await client.get("/where", headers={"traceparent": PARENT})
    assert response.json() == {"trace": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert trace_id(response.headers["traceparent"]) == "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_appended_events_carry_the_current_trace(event_store: EventStore) -> None:
    from .counter import registry

    store = EventStore(event_store._nc, registry=registry)
    token = current_traceparent.set(PARENT)
    try:
        await store.append(
            [CounterOpened(counter_id="t1")], expected=Expected("agenda.counter.t1.*")
        )
    finally:
        current_traceparent.reset(token)
    [record] = await store.read("agenda.counter.t1.*")
    assert record.envelope.traceparent == PARENT


def test_log_lines_are_json_with_the_trace_id_and_extra_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "agora.test",
            "levelno": 20,
            "levelname": "INFO",
            "msg": "applied",
            "event_id": "e-1",
        }
    )
    token = current_traceparent.set(PARENT)
    try:
        line = json.loads(JsonLines().format(record))
    finally:
        current_traceparent.reset(token)
    assert line["message"] == "applied"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["event_id"] == "e-1"
