"""End to end: an Idempotency-Key is bound to the request it first came with, on every command
endpoint of the agenda, under real uvicorn, a real nats-server and a real SQLite file.

A key sent again with the same request (however its JSON is spelled) answers what the first
call answered, with ``duplicate: true``; with another request, on the same endpoint or another,
before or after a restart, it is refused with 422 ``IdempotencyKeyReused`` and nothing is
appended. ``X-Correlation-Id`` travels as the events' ``ce-correlationid``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from nats.aio.client import Client as NATS
from pydantic import SecretStr

from agora_agenda.main import create_app
from agora_agenda.settings import AgendaSettings

TOKEN = "organiser-token-for-tests"
ORGANISER = {"Authorization": f"Bearer {TOKEN}"}
STREAM = "AGENDA"

JSON = dict[str, Any]


# -- the service -----------------------------------------------------------------------------


@pytest.fixture
def settings(nats_client: NATS, nats_url: str, tmp_path: Path) -> AgendaSettings:
    """Settings on the test's fresh streams and its own SQLite file (``nats_client`` first,
    so the streams are new before the service starts)."""
    return AgendaSettings(
        nats_url=nats_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'agenda.db'}",
        organiser_token=SecretStr(TOKEN),
        read_your_writes_timeout=5.0,
    )


@asynccontextmanager
async def serving(settings: AgendaSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The service on a free port until the block ends. Requests sent before it is up wait
    in the listen backlog."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_config=None, access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200
            yield client
    finally:
        server.should_exit = True
        await serving
        listener.close()


@pytest.fixture
async def agenda(settings: AgendaSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings) as client:
        yield client


async def last_sequence(nats_client: NATS) -> int:
    info = await nats_client.jetstream().stream_info(STREAM)
    sequence: int = info.state.last_seq
    return sequence


async def stored_headers(nats_client: NATS, sequence: int) -> dict[str, str]:
    message = await nats_client.jetstream().get_msg(STREAM, sequence)
    return dict(message.headers or {})


# -- requests --------------------------------------------------------------------------------


def respelled(body: JSON) -> str:
    """``body`` as other JSON text for the same data: keys in reverse order at every level,
    other spacing and line breaks, non-ASCII characters escaped."""

    def reversed_keys(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: reversed_keys(value[key]) for key in reversed(list(value))}
        if isinstance(value, list):
            return [reversed_keys(item) for item in value]
        return value

    text = json.dumps(reversed_keys(body), indent="\t", separators=(" ,", " :  "))
    return f"\n  {text}\n\n"


@dataclass(frozen=True)
class Call:
    """One command request: a JSON body, a TOML programme, or no body."""

    method: str
    path: str
    body: JSON | None = None
    toml: str | None = None

    async def send(
        self,
        client: httpx.AsyncClient,
        key: str | None = None,
        *,
        respell: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = ORGANISER | (headers or {})
        if key is not None:
            sent["Idempotency-Key"] = key
        content: bytes | None = None
        if self.toml is not None:
            content = self.toml.encode()
            sent["Content-Type"] = "application/toml"
        elif self.body is not None:
            text = respelled(self.body) if respell else json.dumps(self.body, ensure_ascii=False)
            content = text.encode()
            sent["Content-Type"] = "application/json"
        return await client.request(self.method, self.path, content=content, headers=sent)


@dataclass(frozen=True)
class Endpoint:
    """A command endpoint: a valid request on the small edition (``first``, answered with
    ``status``) and another valid request on it (another body, path id or query)."""

    name: str
    status: int
    first: Call
    other: Call

    def __str__(self) -> str:
        return self.name.replace(" ", "-")


def edition(edition_id: str, year: int, city: str) -> JSON:
    return {
        "edition_id": edition_id,
        "name": f"Forum {year}",
        "host_city": city,
        "host_country": "UZB",
        "start_date": f"{year}-06-23",
        "end_date": f"{year}-06-25",
        "time_zone": "Asia/Samarkand",
    }


def workshop_session(
    session_id: str, room_id: str, number: int, starts: str, ends: str, **more: Any
) -> JSON:
    return {
        "session_id": session_id,
        "kind": "workshop_session",
        "title": f"Workshop {number}, {session_id}",
        "room_id": room_id,
        "starts_at": f"2025-06-{starts}:00+05:00",
        "ends_at": f"2025-06-{ends}:00+05:00",
        "workshop": {"number": number, "title": f"Workshop {number}", "organisers": ["UN DESA"]},
        **more,
    }


ROBYN = {"person_id": "robyn-bennett", "name": "Robyn Bennett", "role": "moderator"}
SHERZOD = {"person_id": "sherzod-shermatov", "name": "Sherzod Shermatov", "role": "speaker"}

SMALL_EDITION = [
    Call("POST", "/editions", edition("e25", 2025, "Samarkand")),
    Call("POST", "/editions", edition("e26", 2026, "Tashkent")),
    Call("POST", "/editions/e25/rooms", {"room_id": "ws-room-5", "name": "Room 5", "capacity": 80}),
    Call("POST", "/editions/e25/rooms", {"room_id": "ws-room-7", "name": "Room 7", "capacity": 80}),
    Call("POST", "/editions/e25/rooms", {"room_id": "hall", "name": "Hall", "capacity": 1000}),
    Call(
        "POST",
        "/editions/e25/sessions",
        workshop_session("ws5-s1", "ws-room-5", 5, "23T14:30", "23T16:00", people=[ROBYN, SHERZOD]),
    ),
    Call(
        "POST",
        "/editions/e25/sessions",
        workshop_session("ws7-s1", "ws-room-7", 7, "23T14:30", "23T16:00"),
    ),
]
"""Two editions (e26 is empty), three rooms of e25 and two workshop sessions side by side."""


async def plan_small_edition(client: httpx.AsyncClient) -> None:
    for call in SMALL_EDITION:
        response = await call.send(client)
        assert response.status_code == 201, (call.path, response.text)


PROGRAMME = """
[edition]
id = "e24"
name = "Forum 2024"
host_city = "Incheon"
host_country = "KOR"
start_date = "2024-06-24"
end_date = "2024-06-26"
time_zone = "Asia/Seoul"

[[rooms]]
id = "hall"
name = "Hall"
capacity = 500

[[sessions]]
id = "2024-opening"
kind = "opening_ceremony"
title = "Opening"
room = "hall"
date = "2024-06-24"
start = "09:00"
end = "10:00"
"""

AZIZ = {"name": "Aziz Karimov", "role": "speaker", "title": "Director"}
DETAILS = {
    "title": "Futures literacy in practice",
    "capacity": 60,
    "workshop": {"number": 5, "title": "Foresight", "organisers": ["UN DESA", "UNDP"]},
}

ENDPOINTS = [
    Endpoint(
        "plan edition",
        201,
        Call("POST", "/editions", edition("e27", 2027, "Bukhara")),
        Call("POST", "/editions", edition("e28", 2028, "Khiva")),
    ),
    Endpoint(
        "change edition",
        200,
        Call("PATCH", "/editions/e25", {"theme": "Five years to 2030", "name": "Forum 2025 II"}),
        Call("PATCH", "/editions/e26", {"theme": "Five years to 2030", "name": "Forum 2025 II"}),
    ),
    Endpoint(
        "import",
        201,
        Call("POST", "/editions/import", toml=PROGRAMME),
        Call("POST", "/editions/import?cancel_missing=true", toml=PROGRAMME),
    ),
    Endpoint(
        "add room",
        201,
        Call("POST", "/editions/e25/rooms", {"room_id": "r9", "name": "Room 9", "capacity": 40}),
        Call("POST", "/editions/e25/rooms", {"room_id": "r10", "name": "Room 10", "capacity": 40}),
    ),
    Endpoint(
        "change capacity",
        200,
        Call("PUT", "/rooms/hall/capacity", {"capacity": 900}),
        Call("PUT", "/rooms/hall/capacity", {"capacity": 900, "capacity_estimated": True}),
    ),
    Endpoint(
        "rename room",
        200,
        Call("PUT", "/rooms/hall/name", {"name": "Salle des Fêtes"}),
        Call("PUT", "/rooms/ws-room-7/name", {"name": "Salle des Fêtes"}),
    ),
    Endpoint(
        "schedule session",
        201,
        Call(
            "POST",
            "/editions/e25/sessions",
            workshop_session(
                "ws5-s2",
                "ws-room-5",
                5,
                "24T09:30",
                "24T11:00",
                capacity=60,
                people=[{"person_id": "aziz-karimov", **AZIZ}],
            ),
        ),
        Call(
            "POST",
            "/editions/e25/sessions",
            workshop_session("ws7-s2", "ws-room-7", 7, "24T09:30", "24T11:00"),
        ),
    ),
    Endpoint(
        "move",
        200,
        Call("POST", "/sessions/ws5-s1/move", {"starts_at": "2025-06-24T11:30:00+05:00"}),
        Call(
            "POST",
            "/sessions/ws5-s1/move",
            {"starts_at": "2025-06-24T11:30:00+05:00", "room_id": "hall"},
        ),
    ),
    Endpoint(
        "change details",
        200,
        Call("PATCH", "/sessions/ws5-s1", DETAILS),
        Call("PATCH", "/sessions/ws7-s1", DETAILS),
    ),
    Endpoint(
        "assign person",
        200,
        Call("PUT", "/sessions/ws7-s1/people/aziz-karimov", AZIZ),
        Call("PUT", "/sessions/ws7-s1/people/lola-rahimova", AZIZ | {"name": "Lola Rahimova"}),
    ),
    Endpoint(
        "remove person",
        200,
        Call("DELETE", "/sessions/ws5-s1/people/robyn-bennett"),
        Call("DELETE", "/sessions/ws5-s1/people/sherzod-shermatov"),
    ),
    Endpoint(
        "cancel",
        200,
        Call("POST", "/sessions/ws7-s1/cancel", {"reason": "merged into workshop 5"}),
        Call("POST", "/sessions/ws5-s1/cancel", {"reason": "merged into workshop 5"}),
    ),
    Endpoint(
        "publish version",
        201,
        Call("POST", "/editions/e25/versions", {"label": "Draft"}),
        Call("POST", "/editions/e26/versions", {"label": "Draft"}),
    ),
]
"""Every route of ``api.writes()``, each with two valid requests on the small edition."""

BY_NAME = {endpoint.name: endpoint for endpoint in ENDPOINTS}


def key_for(endpoint: Endpoint) -> str:
    return f"key-{endpoint}"


def assert_key_reused(response: httpx.Response, key: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["error"] == "IdempotencyKeyReused", problem
    assert repr(key) in problem["reason"], problem


async def first_call(client: httpx.AsyncClient, endpoint: Endpoint, key: str) -> JSON:
    response = await endpoint.first.send(client, key)
    assert response.status_code == endpoint.status, response.text
    answer: JSON = response.json()
    assert answer["duplicate"] is False
    assert answer["events"], answer
    return answer


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_a_key_used_again_with_another_request_on_its_endpoint_is_refused_and_appends_nothing(
    agenda: httpx.AsyncClient, nats_client: NATS, endpoint: Endpoint
) -> None:
    await plan_small_edition(agenda)
    key = key_for(endpoint)
    first = await first_call(agenda, endpoint, key)
    assert await last_sequence(nats_client) == first["sequence"]

    reused = await endpoint.other.send(agenda, key)

    assert_key_reused(reused, key)
    assert await last_sequence(nats_client) == first["sequence"]
    # The other request is a valid one: under a key of its own it is accepted.
    fresh = await endpoint.other.send(agenda, f"{key}-fresh")
    assert fresh.status_code == endpoint.status, fresh.text
    assert fresh.json()["duplicate"] is False


async def test_agenda_refuses_a_capacity_change_whose_key_was_used_for_adding_a_room(
    agenda: httpx.AsyncClient, nats_client: NATS
) -> None:
    await plan_small_edition(agenda)
    added = await first_call(agenda, BY_NAME["add room"], "room-9")

    response = await Call("PUT", "/rooms/r9/capacity", {"capacity": 30}).send(agenda, "room-9")

    assert_key_reused(response, "room-9")
    assert await last_sequence(nats_client) == added["sequence"]


async def test_a_key_used_on_one_endpoint_is_refused_on_every_other_endpoint(
    agenda: httpx.AsyncClient, nats_client: NATS
) -> None:
    await plan_small_edition(agenda)
    added = await first_call(agenda, BY_NAME["add room"], "shared-key")
    for endpoint in ENDPOINTS:
        if endpoint.name == "add room":
            continue
        response = await endpoint.first.send(agenda, "shared-key")
        assert response.status_code == 422, (endpoint.name, response.text)
        assert response.json()["error"] == "IdempotencyKeyReused", endpoint.name
    assert await last_sequence(nats_client) == added["sequence"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_a_true_retry_answers_like_the_first_call_marked_duplicate_and_appends_nothing(
    agenda: httpx.AsyncClient, nats_client: NATS, endpoint: Endpoint
) -> None:
    await plan_small_edition(agenda)
    key = key_for(endpoint)
    first = await endpoint.first.send(agenda, key)
    assert first.status_code == endpoint.status, first.text
    answer = first.json()
    assert (answer["duplicate"], bool(answer["events"])) == (False, True)
    after = await last_sequence(nats_client)
    assert after == answer["sequence"]

    # The same request, its JSON body (if any) spelled otherwise, then byte for byte.
    retried = await endpoint.first.send(agenda, key, respell=True)
    again = await endpoint.first.send(agenda, key)

    for retry in (retried, again):
        assert retry.status_code == first.status_code, retry.text
        assert retry.json() == answer | {"duplicate": True}
    assert await last_sequence(nats_client) == after


async def test_the_correlation_id_sent_with_a_command_is_carried_by_every_event_it_appends(
    agenda: httpx.AsyncClient, nats_client: NATS
) -> None:
    await plan_small_edition(agenda)
    schedule = BY_NAME["schedule session"].first  # the session and its speaker: two events

    response = await schedule.send(agenda, headers={"X-Correlation-Id": "journey-42"})

    assert response.status_code == 201, response.text
    accepted = response.json()
    assert len(accepted["events"]) == 2
    last = accepted["sequence"]
    stored = [await stored_headers(nats_client, seq) for seq in (last - 1, last)]
    assert [h["ce-type"] for h in stored] == accepted["events"]
    assert {h["ce-correlationid"] for h in stored} == {"journey-42"}
    [causation] = {h["ce-causationid"] for h in stored}
    assert causation and causation != "journey-42"


async def test_without_a_correlation_id_the_events_are_correlated_with_their_command(
    agenda: httpx.AsyncClient, nats_client: NATS
) -> None:
    await plan_small_edition(agenda)
    causations = set()
    for endpoint in (BY_NAME["move"], BY_NAME["rename room"]):
        response = await endpoint.first.send(agenda)
        assert response.status_code == endpoint.status, response.text
        headers = await stored_headers(nats_client, response.json()["sequence"])
        assert headers["ce-causationid"]
        assert headers["ce-correlationid"] == headers["ce-causationid"]
        causations.add(headers["ce-causationid"])
    assert len(causations) == 2  # one id per command


RESTART_CASES = [
    *ENDPOINTS,
    Endpoint(
        "plan the same edition otherwise",  # the same event subject, so the same event id
        201,
        Call("POST", "/editions", edition("e29", 2029, "Termez")),
        Call("POST", "/editions", edition("e29", 2029, "Termez") | {"name": "Forum 2029 II"}),
    ),
]
"""The endpoints' first requests, applied one after another on the small edition, fit
together; so does the extra case of planning one edition twice, otherwise."""


async def first_calls(client: httpx.AsyncClient, endpoints: list[Endpoint]) -> dict[str, JSON]:
    """The first request of every endpoint in turn, each with its own key: the answers."""
    answers = {}
    for endpoint in endpoints:
        answers[endpoint.name] = await first_call(client, endpoint, key_for(endpoint))
    return answers


async def test_a_key_reused_with_another_request_after_a_restart_is_still_refused(
    settings: AgendaSettings, nats_client: NATS
) -> None:
    async with serving(settings) as agenda:
        await plan_small_edition(agenda)
        await first_calls(agenda, RESTART_CASES)
    before = await last_sequence(nats_client)

    answered = {}
    async with serving(settings) as restarted:  # same NATS, same database, nothing in memory
        for endpoint in RESTART_CASES:
            response = await endpoint.other.send(restarted, key_for(endpoint))
            answered[endpoint.name] = (response.status_code, response.json().get("error"))

    assert answered == {e.name: (422, "IdempotencyKeyReused") for e in RESTART_CASES}
    assert await last_sequence(nats_client) == before


async def test_a_key_used_for_adding_a_room_is_refused_for_a_capacity_change_after_a_restart(
    settings: AgendaSettings, nats_client: NATS
) -> None:
    async with serving(settings) as agenda:
        await plan_small_edition(agenda)
        added = await first_call(agenda, BY_NAME["add room"], "room-9")

    async with serving(settings) as restarted:
        capacity = Call("PUT", "/rooms/r9/capacity", {"capacity": 30})
        response = await capacity.send(restarted, "room-9")

    assert_key_reused(response, "room-9")
    assert await last_sequence(nats_client) == added["sequence"]


async def test_a_true_retry_after_a_restart_answers_like_the_first_call(
    settings: AgendaSettings, nats_client: NATS
) -> None:
    async with serving(settings) as agenda:
        await plan_small_edition(agenda)
        firsts = await first_calls(agenda, ENDPOINTS)
    before = await last_sequence(nats_client)

    answered = {}
    async with serving(settings) as restarted:
        for endpoint in ENDPOINTS:
            retry = await endpoint.first.send(restarted, key_for(endpoint), respell=True)
            assert retry.status_code == endpoint.status, (endpoint.name, retry.text)
            answered[endpoint.name] = retry.json()

    assert answered == {name: first | {"duplicate": True} for name, first in firsts.items()}
    assert await last_sequence(nats_client) == before


async def test_after_a_restart_a_refused_reuse_does_not_spoil_the_true_retry(
    settings: AgendaSettings, nats_client: NATS
) -> None:
    endpoint = BY_NAME["add room"]
    async with serving(settings) as agenda:
        await plan_small_edition(agenda)
        first = await first_call(agenda, endpoint, "room-9")

    async with serving(settings) as restarted:
        assert_key_reused(await endpoint.other.send(restarted, "room-9"), "room-9")
        retry = await endpoint.first.send(restarted, "room-9")

    assert retry.status_code == 201, retry.text
    assert retry.json() == first | {"duplicate": True}


@pytest.mark.xfail(
    strict=True,
    reason="a request that changes nothing appends no event, so its key is bound only in "
    "the process's memory (RecentKeys): refused in the same process, but after a restart "
    "the same key with another request is accepted and appended",
)
async def test_a_key_whose_request_changed_nothing_is_refused_for_another_request_after_a_restart(
    settings: AgendaSettings, nats_client: NATS
) -> None:
    again = SMALL_EDITION[2]  # adding a room the edition already has: nothing to append
    async with serving(settings) as agenda:
        await plan_small_edition(agenda)
        unchanged = await again.send(agenda, "room-5-again")
        assert (unchanged.status_code, unchanged.json()["events"]) == (201, [])
    before = await last_sequence(nats_client)

    async with serving(settings) as restarted:
        reused = await BY_NAME["add room"].first.send(restarted, "room-5-again")

    assert_key_reused(reused, "room-5-again")
    assert await last_sequence(nats_client) == before
