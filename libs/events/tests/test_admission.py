"""Admission control at the HTTP edge: past the limit of requests in progress, 503 at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from agora_events.http import AdmissionControl, install_edges, reads_own_write
from agora_events.service import ServiceDefinition, application
from agora_events.settings import ServiceSettings


def app_holding_requests(limit: int) -> tuple[FastAPI, asyncio.Event, asyncio.Semaphore]:
    """An app whose ``/slow`` holds each request until ``release`` is set; ``entered`` is
    released once per request that got in."""
    app = FastAPI()
    install_edges(app)
    app.add_middleware(AdmissionControl, limit=limit)
    release = asyncio.Event()
    entered = asyncio.Semaphore(0)

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        entered.release()
        await release.wait()
        return {"status": "done"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app, release, entered


async def held_inside(
    client: httpx.AsyncClient, entered: asyncio.Semaphore, count: int, **params: int
) -> list[asyncio.Task[httpx.Response]]:
    """``count`` requests to ``/slow``, returned once every one of them is in the route."""
    held = [asyncio.create_task(client.get("/slow", params=params)) for _ in range(count)]
    for _ in held:
        await entered.acquire()
    return held


async def test_past_the_limit_a_request_is_answered_503_with_retry_after_at_once() -> None:
    app, release, entered = app_holding_requests(limit=3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        held = await held_inside(client, entered, 3)

        refused = await client.get("/slow")
        health = await client.get("/healthz")
        release.set()
        answers = await asyncio.gather(*held)
        after = await client.get("/slow")

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["error"] == "Overloaded"
    assert health.status_code == 200  # health and metrics are always admitted
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert after.status_code == 200  # the places are given back


async def test_a_saturated_service_turns_away_new_work_before_the_reads_of_its_writes() -> None:
    app, release, entered = app_holding_requests(limit=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        new_work = await held_inside(client, entered, 2)
        more_new_work = await client.get("/slow")  # the limit is taken: no new work

        reads = await held_inside(client, entered, 2, after=7)  # up to twice the limit
        read_past_the_reserve = await client.get("/slow", params={"x": "1", "after": 8})
        release.set()
        answers = await asyncio.gather(*new_work, *reads)

    assert more_new_work.status_code == 503
    assert more_new_work.headers["Retry-After"] == "1"
    assert read_past_the_reserve.status_code == 503
    assert [answer.status_code for answer in answers] == [200] * 4


@pytest.mark.parametrize(
    ("method", "query", "expected"),
    [
        ("GET", b"after=12", True),
        ("GET", b"limit=5&after=12", True),
        ("HEAD", b"after=12", True),
        ("GET", b"afterwards=12", False),
        ("GET", b"", False),
        ("POST", b"after=12", False),
    ],
)
def test_a_read_of_ones_own_write_is_a_get_naming_after(
    method: str, query: bytes, expected: bool
) -> None:
    scope = {"type": "http", "method": method, "path": "/x", "query_string": query}
    assert reads_own_write(scope) is expected


async def test_a_limit_of_zero_admits_every_request() -> None:
    app, release, entered = app_holding_requests(limit=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        held = [asyncio.create_task(client.get("/slow")) for _ in range(20)]
        for _ in held:
            await entered.acquire()
        release.set()
        answers = await asyncio.gather(*held)
    assert {answer.status_code for answer in answers} == {200}


async def test_a_request_that_fails_gives_its_place_back() -> None:
    app = FastAPI()
    install_edges(app)
    app.add_middleware(AdmissionControl, limit=1)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        first = await client.get("/broken")
        second = await client.get("/broken")
    assert (first.status_code, second.status_code) == (500, 500)


def test_the_service_shell_takes_its_limit_from_the_settings() -> None:
    definition: ServiceDefinition[ServiceSettings, None] = ServiceDefinition(
        context="agenda",
        title="test",
        summary="a service without routes",
        settings=ServiceSettings,
        projections=list,
        commands=lambda store, settings: None,
        routers=lambda settings: [],
    )
    app = application(definition, ServiceSettings(max_requests_in_flight=7))
    [admission] = [m for m in app.user_middleware if m.cls == AdmissionControl]  # type: ignore[comparison-overlap]
    assert admission.kwargs == {"limit": 7}
