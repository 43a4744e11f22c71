"""End to end: the agenda's app under real uvicorn, a real nats-server and a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
import uvicorn
from icalendar import Calendar
from pydantic import SecretStr

from agora_agenda.importer import bundled_editions
from agora_agenda.main import create_app
from agora_agenda.settings import AgendaSettings

TOKEN = "organiser-token-for-tests"
ORGANISER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def agenda(nats_client, nats_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The service on a free port. Requests sent before it is up wait in the listen backlog."""
    settings = AgendaSettings(
        nats_url=nats_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'agenda.db'}",
        organiser_token=SecretStr(TOKEN),
        read_your_writes_timeout=5.0,
    )
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


async def import_2025(client: httpx.AsyncClient) -> int:
    response = await client.post("/editions/import?bundled=unpsf-2025", headers=ORGANISER)
    assert response.status_code == 201, response.text
    sequence: int = response.json()["sequence"]
    return sequence


async def schedule_2025_workshops(
    client: httpx.AsyncClient, bodies: list[dict[str, object]]
) -> int:
    """The organiser schedules the workshop sessions the report leaves unscheduled."""
    sequence = 0
    for body in bodies:
        response = await client.post("/editions/unpsf-2025/sessions", json=body, headers=ORGANISER)
        assert response.status_code == 201, response.text
        sequence = response.json()["sequence"]
    return sequence


async def test_moving_a_workshop_session_publishes_its_old_and_new_place(
    agenda, nats_client, workshop_bodies
):
    moves = await nats_client.subscribe("agenda.session.*.moved")
    # A round trip on this connection: its answer comes after the server took the subscription
    # (nats-py's flush on a young connection sometimes returns before that).
    await nats_client.jetstream().account_info()
    await import_2025(agenda)
    await schedule_2025_workshops(agenda, workshop_bodies)

    response = await agenda.post(
        "/sessions/2025-ws5-s3/move",
        json={"starts_at": "2025-06-24T15:00:00+05:00", "room_id": "unpsf-2025-workshop-room-8"},
        headers=ORGANISER,
    )
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["ids"] == {"session_id": "2025-ws5-s3", "room_id": "unpsf-2025-workshop-room-8"}
    assert accepted["events"] == ["agora.agenda.session.moved.v1"]

    message = await moves.next_msg(timeout=10)
    assert message.subject == "agenda.session.2025-ws5-s3.moved"
    assert message.headers["ce-type"] == "agora.agenda.session.moved.v1"
    moved = json.loads(message.data)
    assert (moved["old_room_id"], moved["new_room_id"]) == (
        "unpsf-2025-workshop-room-5",
        "unpsf-2025-workshop-room-8",
    )
    assert (moved["old_starts_at"], moved["old_ends_at"]) == (
        "2025-06-24T11:30:00+05:00",
        "2025-06-24T13:00:00+05:00",
    )
    assert (moved["new_starts_at"], moved["new_ends_at"]) == (
        "2025-06-24T15:00:00+05:00",
        "2025-06-24T16:30:00+05:00",
    )

    after = {"after": accepted["sequence"]}
    draft = after | {"draft": "true"}
    session = (await agenda.get("/sessions/2025-ws5-s3", params=draft, headers=ORGANISER)).json()
    assert session["room"]["name"] == "Workshop Room 8"
    assert session["starts_at"] == "2025-06-24T15:00:00+05:00"
    assert session["history"][-1]["change"] == "moved"
    calendar = await agenda.get(
        "/sessions/2025-ws5-s3/calendar.ics", params=draft, headers=ORGANISER
    )
    assert calendar.headers["content-type"].startswith("text/calendar")
    [event] = Calendar.from_ical(calendar.content).walk("VEVENT")
    assert (str(event["UID"]), event.decoded("SEQUENCE")) == ("2025-ws5-s3@agenda.agora", 1)


async def test_refuses_a_move_into_a_taken_room_naming_the_session_there(agenda, workshop_bodies):
    await import_2025(agenda)
    await schedule_2025_workshops(agenda, workshop_bodies)
    response = await agenda.post(
        "/sessions/2025-ws5-s3/move",
        json={"room_id": "unpsf-2025-workshop-room-1"},
        headers=ORGANISER,
    )
    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["reason"]) == (
        "InvariantViolated",
        "room 'Workshop Room 1' is taken by 'Workshop 1: Creating an Enabling "
        "Environment for Public Sector Innovation (session 3)' 11:30\u201313:00 on 2025-06-24 "
        "(session 2025-ws1-s3)",
    )


async def test_answers_bad_requests_with_a_clear_4xx(agenda, workshop_bodies):
    await import_2025(agenda)
    sequence = await schedule_2025_workshops(agenda, workshop_bodies)
    move = {"room_id": "unpsf-2025-workshop-room-8"}
    cases = [
        ("post", "/sessions/2025-ws5-s3/move", move, {}, 401),
        ("post", "/sessions/2025-ws5-s3/move", move, {"Authorization": "Bearer wrong"}, 403),
        ("post", "/sessions/no-such-session/move", move, ORGANISER, 404),
        ("post", "/sessions/2025-ws5-s3/move", {}, ORGANISER, 422),
        ("post", "/sessions/2025-ws5-s3/move", {"starts_at": "2025-06-24T15:00"}, ORGANISER, 422),
        (
            "post",
            "/sessions/2025-ws5-s3/move",
            {"starts_at": "2025-06-24T15:00:00+05:00", "ends_at": "2025-06-24T14:00:00+05:00"},
            ORGANISER,
            422,
        ),
        (
            "post",
            "/sessions/2025-ws5-s3/move",
            {"starts_at": "2025-06-27T15:00:00+05:00"},
            ORGANISER,
            409,
        ),
        ("post", "/sessions/2025-ws5-s3/move", {"room_id": "a.b"}, ORGANISER, 422),
        ("post", "/editions/unpsf-2025/sessions", {"session_id": "x"}, ORGANISER, 422),
        ("post", "/editions/import?bundled=unpsf-1999", None, ORGANISER, 422),
        ("put", "/rooms/unpsf-2025-plenary-hall/capacity", {"capacity": 0}, ORGANISER, 422),
        ("delete", "/sessions/2025-ws5-s3/people/nobody", None, ORGANISER, 404),
        ("get", "/editions/unpsf-1999/programme", None, {}, 404),
        ("get", "/editions/unpsf-2025/programme?draft=true&day=2025-07-01", None, ORGANISER, 422),
        ("get", "/editions/unpsf-2025/programme?draft=true", None, {}, 401),
        ("get", "/editions/unpsf-2025/programme", None, {}, 404),  # nothing published yet
        ("get", "/editions/unpsf-2025/diff?from=1&to=2", None, {}, 404),
        ("get", "/sessions/nope/calendar.ics", None, {}, 404),
        ("get", "/sessions/2025-ws5-s3?after=-1", None, {}, 422),
        # Numbers past what the database holds are refused, not passed on to it.
        ("get", f"/sessions/2025-ws5-s3?after={2**64}", None, {}, 422),
        ("get", f"/editions/unpsf-2025/programme?workshop={2**64}", None, {}, 422),
        ("get", f"/editions/unpsf-2025/diff?from=0&to={2**64}", None, {}, 422),
        ("get", f"/editions/unpsf-2025/versions/{2**64}", None, {}, 422),
        ("get", f"/sessions/2025-ws5-s3?after={sequence}", None, {}, 404),  # unpublished
        ("get", f"/sessions/2025-ws5-s3?after={sequence}&draft=true", None, ORGANISER, 200),
    ]
    for method, path, body, headers, status in cases:
        response = await agenda.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        assert status == 200 or response.json()["reason"], (method, path)
    invalid_toml = await agenda.post(
        "/editions/import",
        content=b"[edition\n",
        headers=ORGANISER | {"Content-Type": "application/toml"},
    )
    assert invalid_toml.status_code == 422
    assert "not valid TOML" in invalid_toml.json()["reason"]


async def test_refuses_to_move_a_cancelled_session(agenda, workshop_bodies):
    await import_2025(agenda)
    await schedule_2025_workshops(agenda, workshop_bodies)
    cancelled = await agenda.post(
        "/sessions/2025-ws5-s3/cancel", json={"reason": "merged"}, headers=ORGANISER
    )
    assert cancelled.status_code == 200
    response = await agenda.post(
        "/sessions/2025-ws5-s3/move",
        json={"room_id": "unpsf-2025-workshop-room-8"},
        headers=ORGANISER,
    )
    assert response.status_code == 409
    assert "is cancelled and cannot be moved" in response.json()["reason"]


async def test_a_retried_command_with_its_idempotency_key_applies_once(
    agenda, nats_client, workshop_bodies
):
    await import_2025(agenda)
    await schedule_2025_workshops(agenda, workshop_bodies)
    headers = ORGANISER | {"Idempotency-Key": "assign-robyn-ws5-s1"}
    body = {"name": "Robyn Bennett", "role": "moderator", "title": "Advisor"}
    path = "/sessions/2025-ws5-s1/people/robyn-bennett"
    first = (await agenda.put(path, json=body, headers=headers)).json()
    again = (await agenda.put(path, json=body, headers=headers)).json()
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["sequence"] == first["sequence"]
    assert first["ids"] == {"session_id": "2025-ws5-s1", "person_id": "robyn-bennett"}
    info = await nats_client.jetstream().stream_info("AGENDA")
    assert info.state.last_seq == first["sequence"]


async def test_importing_twice_over_http_changes_nothing(agenda, nats_client):
    first = await import_2025(agenda)
    response = await agenda.post("/editions/import?bundled=unpsf-2025", headers=ORGANISER)
    assert (response.json()["events"], response.json()["sequence"]) == ([], first)
    params = {"after": first, "draft": "true"}
    programme = await agenda.get("/editions/unpsf-2025/programme", params=params, headers=ORGANISER)
    assert programme.json()["edition"]["host_city"] == "Samarkand"
    assert sum(len(day["sessions"]) for day in programme.json()["days"]) == 11


async def test_an_http_import_answers_the_sessions_the_programme_no_longer_lists(agenda):
    await import_2025(agenda)
    text = bundled_editions()["unpsf-2025"].read_text(encoding="utf-8")
    start = text.index('[[sessions]]\nid = "2025-d2-cadgov-launch"\n')
    end = text.index("\n[[sessions]]\n", start) + 1
    trimmed = (text[:start] + text[end:]).encode()
    toml = ORGANISER | {"Content-Type": "application/toml"}

    reported = (await agenda.post("/editions/import", content=trimmed, headers=toml)).json()
    assert [s["session_id"] for s in reported["missing"]] == ["2025-d2-cadgov-launch"]
    assert (reported["events"], reported["cancelled"]) == ([], [])

    cancel = await agenda.post(
        "/editions/import?cancel_missing=true", content=trimmed, headers=toml
    )
    assert cancel.status_code == 201, cancel.text
    assert [s["session_id"] for s in cancel.json()["cancelled"]] == ["2025-d2-cadgov-launch"]
    after = {"after": cancel.json()["sequence"]}
    draft = after | {"draft": "true"}
    session = await agenda.get("/sessions/2025-d2-cadgov-launch", params=draft, headers=ORGANISER)
    assert session.json()["status"] == "cancelled"

    again = await agenda.post("/editions/import?cancel_missing=true", content=trimmed, headers=toml)
    assert (again.json()["events"], again.json()["missing"]) == ([], [])


async def test_publishes_versions_and_serves_their_diff(agenda):
    await import_2025(agenda)
    draft = await agenda.post(
        "/editions/unpsf-2025/versions", json={"label": "Draft"}, headers=ORGANISER
    )
    assert draft.status_code == 201
    await agenda.post(
        "/sessions/2025-d2-cadgov-launch/cancel", json={"reason": "postponed"}, headers=ORGANISER
    )
    final = await agenda.post(
        "/editions/unpsf-2025/versions", json={"label": "Final"}, headers=ORGANISER
    )
    after = {"after": final.json()["sequence"]}
    versions = (await agenda.get("/editions/unpsf-2025/versions", params=after)).json()
    assert [(v["version"], v["label"], v["cancelled"]) for v in versions][1] == (
        2,
        "Final",
        ["2025-d2-cadgov-launch"],
    )
    diff = (await agenda.get("/editions/unpsf-2025/diff", params={"from": 1, "to": 2})).json()
    assert [s["session_id"] for s in diff["cancelled"]] == ["2025-d2-cadgov-launch"]
    unchanged = await agenda.post(
        "/editions/unpsf-2025/versions", json={"label": "Again"}, headers=ORGANISER
    )
    assert unchanged.status_code == 409


async def test_serves_data_quality_warnings_calendar_and_openapi(agenda):
    response = await agenda.post("/editions/import?bundled=unpsf-2024", headers=ORGANISER)
    after = {"after": response.json()["sequence"]}
    warnings = (await agenda.get("/editions/unpsf-2024/data-quality", params=after)).json()
    [ws2] = [w for w in warnings["warnings"] if w["session_id"] == "2024-ws2-s1"]
    assert ws2["values"] == ["14:30-16:00", "14:30-15:45"]
    published = await agenda.post(
        "/editions/unpsf-2024/versions", json={"label": "Programme"}, headers=ORGANISER
    )
    after = {"after": published.json()["sequence"]}
    calendar = await agenda.get("/editions/unpsf-2024/calendar.ics", params=after)
    events = Calendar.from_ical(calendar.content).walk("VEVENT")
    assert len(events) == 47
    spec = (await agenda.get("/openapi.json")).json()
    assert "/sessions/{session_id}/move" in spec["paths"]
    assert "/editions/{edition_id}/data-quality" in spec["paths"]
    ready = (await agenda.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert {p["projection"] for p in ready["checks"]["projections"]} == {
        "programme",
        "data_quality",
    }


async def test_an_unpublished_change_is_invisible_in_the_public_programme_and_calendar(agenda):
    await import_2025(agenda)
    v1 = await agenda.post("/editions/unpsf-2025/versions", json={"label": "v1"}, headers=ORGANISER)
    assert v1.status_code == 201, v1.text
    move = await agenda.post(
        "/sessions/2025-d3-closing/move",
        json={"starts_at": "2025-06-25T12:30:00+05:00"},
        headers=ORGANISER,
    )
    after = {"after": move.json()["sequence"]}

    async def closing(path: str, params: Mapping[str, object], headers: dict[str, str]) -> str:
        response = await agenda.get(path, params={**after, **params}, headers=headers)
        assert response.status_code == 200, response.text
        if path.endswith(".ics"):
            [event] = [
                e
                for e in Calendar.from_ical(response.content).walk("VEVENT")
                if str(e["UID"]) == "2025-d3-closing@agenda.agora"
            ]
            return f"{event.decoded('DTSTART'):%H:%M} {event['STATUS']}"
        [found] = [
            s
            for day in response.json()["days"]
            for s in day["sessions"]
            if s["session_id"] == "2025-d3-closing"
        ]
        return f"{found['starts_at'][11:16]} {found['status']}"

    programme, calendar = "/editions/unpsf-2025/programme", "/editions/unpsf-2025/calendar.ics"
    assert await closing(programme, {}, {}) == "12:15 tentative"
    assert await closing(calendar, {}, {}) == "12:15 TENTATIVE"
    draft = {"draft": "true"}
    assert await closing(programme, draft, ORGANISER) == "12:30 scheduled"
    assert await closing(calendar, draft, ORGANISER) == "12:30 CONFIRMED"
    assert (await agenda.get(programme, params=draft)).status_code == 401

    v2 = await agenda.post("/editions/unpsf-2025/versions", json={"label": "v2"}, headers=ORGANISER)
    after = {"after": v2.json()["sequence"]}
    assert await closing(programme, {}, {}) == "12:30 scheduled"
    assert await closing(calendar, {}, {}) == "12:30 CONFIRMED"
    assert await closing(calendar, {"version": 1}, {}) == "12:15 TENTATIVE"
    assert await closing(programme, {"version": 1}, {}) == "12:15 tentative"


async def test_a_calendar_refuses_an_unknown_query_parameter(agenda):
    sequence = await import_2025(agenda)
    await agenda.post("/editions/unpsf-2025/versions", json={"label": "v1"}, headers=ORGANISER)
    cases = [
        ("/editions/unpsf-2025/calendar.ics?verison=1", 422),
        ("/editions/unpsf-2025/calendar.ics?version=1&colour=red", 422),
        ("/sessions/2025-d1-opening/calendar.ics?versions=1", 422),
        ("/editions/unpsf-2025/programme?dya=2025-06-23", 422),
        ("/editions/unpsf-2025/calendar.ics?version=2", 404),
        ("/editions/unpsf-2025/calendar.ics?version=1", 200),
        ("/sessions/2025-d1-opening/calendar.ics?version=1", 200),
    ]
    for path, status in cases:
        response = await agenda.get(f"{path}&after={sequence + 1}")
        assert response.status_code == status, (path, response.text)
    refused = await agenda.get("/editions/unpsf-2025/calendar.ics?verison=1")
    assert "'verison'" in refused.json()["reason"]


async def test_the_undated_2025_workshops_are_served_unscheduled_and_not_in_the_calendar(agenda):
    sequence = await import_2025(agenda)
    published = await agenda.post(
        "/editions/unpsf-2025/versions", json={"label": "v1"}, headers=ORGANISER
    )
    after = {"after": published.json()["sequence"]}
    assert published.json()["sequence"] > sequence
    workshops = (await agenda.get("/editions/unpsf-2025/workshops", params=after)).json()
    assert [(w["number"], w["status"], w["sessions"]) for w in workshops][4] == (
        5,
        "unscheduled",
        [],
    )
    assert workshops[4]["partners"] == [
        "School of International Futures",
        "Creative Bureaucracy Festival",
    ]
    calendar = await agenda.get("/editions/unpsf-2025/calendar.ics", params=after)
    events = Calendar.from_ical(calendar.content).walk("VEVENT")
    assert {str(e["STATUS"]) for e in events} == {"TENTATIVE"}
    assert not [e for e in events if str(e["UID"]).startswith("2025-ws")]


async def publish(client: httpx.AsyncClient, label: str) -> dict[str, int]:
    """Publish a version of the 2025 programme; ``?after=`` for reads that must see it."""
    response = await client.post(
        "/editions/unpsf-2025/versions", json={"label": label}, headers=ORGANISER
    )
    assert response.status_code == 201, response.text
    return {"after": response.json()["sequence"]}


async def get_json(
    client: httpx.AsyncClient,
    path: str,
    after: Mapping[str, str | int],
    *,
    draft: bool = False,
    **params: str | int,
) -> object:
    headers = ORGANISER if draft else {}
    query = {**after, **params} | ({"draft": "true"} if draft else {})
    response = await client.get(path, params=query, headers=headers)
    assert response.status_code == 200, (path, response.text)
    return response.json()


async def move_closing(client: httpx.AsyncClient) -> dict[str, int]:
    """An unpublished move: the closing session fixed at 12:30 (the programme says 12:15)."""
    move = await client.post(
        "/sessions/2025-d3-closing/move",
        json={"starts_at": "2025-06-25T12:30:00+05:00"},
        headers=ORGANISER,
    )
    assert move.status_code == 200, move.text
    return {"after": move.json()["sequence"]}


async def assign_ada(client: httpx.AsyncClient) -> dict[str, int]:
    """An unpublished change of panel: Ada Example moderates the closing session."""
    assigned = await client.put(
        "/sessions/2025-d3-closing/people/ada-example",
        json={"name": "Ada Example", "role": "moderator"},
        headers=ORGANISER,
    )
    assert assigned.status_code == 200, assigned.text
    return {"after": assigned.json()["sequence"]}


async def test_a_session_is_served_as_published_until_the_next_version(agenda):
    await import_2025(agenda)
    assert (await agenda.get("/sessions/2025-d3-closing")).status_code == 404  # unpublished
    await publish(agenda, "v1")
    after = await move_closing(agenda)

    def seen(session: object) -> tuple[str, str, list[str]]:
        assert isinstance(session, dict)
        changes = [h["change"] for h in session["history"]]
        return session["starts_at"][11:16], session["status"], changes

    path = "/sessions/2025-d3-closing"
    public = seen(await get_json(agenda, path, after))
    assert public[:2] == ("12:15", "tentative") and "moved" not in public[2]
    draft = seen(await get_json(agenda, path, after, draft=True))
    assert draft[:2] == ("12:30", "scheduled") and draft[2][-1] == "moved"
    assert (await agenda.get(path, params={"draft": "true"})).status_code == 401
    assert (await agenda.get(path, params={"draft": "true", "version": 1})).status_code == 422
    assert (await agenda.get(path, params={"verison": 1})).status_code == 422

    after = await publish(agenda, "v2")
    assert seen(await get_json(agenda, path, after)) == draft
    assert seen(await get_json(agenda, path, after, version=1)) == public
    assert (await agenda.get(path, params={"version": 3})).status_code == 404


async def test_an_edition_is_served_as_published_until_the_next_version(agenda, workshop_bodies):
    await import_2025(agenda)
    assert (await agenda.get("/editions/unpsf-2025")).status_code == 404  # unpublished
    await publish(agenda, "v1")
    [ws5_s1] = [b for b in workshop_bodies if b["session_id"] == "2025-ws5-s1"]
    after = {"after": await schedule_2025_workshops(agenda, [ws5_s1])}

    def seen(edition: object) -> tuple[int | None, str, int]:
        assert isinstance(edition, dict)
        [room] = [r for r in edition["rooms"] if r["room_id"] == "unpsf-2025-workshop-room-5"]
        [workshop] = [w for w in edition["workshops"] if w["number"] == 5]
        return edition["version"], workshop["status"], room["sessions"]

    path = "/editions/unpsf-2025"
    assert seen(await get_json(agenda, path, after)) == (1, "unscheduled", 0)
    assert seen(await get_json(agenda, path, after, draft=True)) == (None, "scheduled", 1)
    assert (await agenda.get(path, params={"draft": "true"})).status_code == 401

    after = await publish(agenda, "v2")
    assert seen(await get_json(agenda, path, after)) == (2, "scheduled", 1)
    assert seen(await get_json(agenda, path, after, version=1)) == (1, "unscheduled", 0)


async def test_an_editions_people_are_served_as_published_until_the_next_version(agenda):
    await import_2025(agenda)
    assert (await agenda.get("/editions/unpsf-2025/people")).status_code == 404  # unpublished
    await publish(agenda, "v1")
    after = await assign_ada(agenda)

    def ada(people: object) -> list[str]:
        assert isinstance(people, list)
        return [
            s["session_id"]
            for p in people
            if p["person_id"] == "ada-example"
            for s in p["sessions"]
        ]

    path = "/editions/unpsf-2025/people"
    assert ada(await get_json(agenda, path, after)) == []
    assert ada(await get_json(agenda, path, after, draft=True)) == ["2025-d3-closing"]
    assert (await agenda.get(path, params={"draft": "true"})).status_code == 401

    after = await publish(agenda, "v2")
    assert ada(await get_json(agenda, path, after)) == ["2025-d3-closing"]
    assert ada(await get_json(agenda, path, after, version=1)) == []


async def test_a_person_is_served_as_published_until_the_next_version(agenda):
    await import_2025(agenda)
    await publish(agenda, "v1")
    after = await assign_ada(agenda)
    path = "/people/ada-example"

    async def status(**params: str | int) -> int:
        headers = ORGANISER if params.get("draft") else {}
        response = await agenda.get(path, params={**after, **params}, headers=headers)
        code: int = response.status_code
        return code

    assert await status() == 404
    assert await status(edition="unpsf-2025") == 404
    person = await get_json(agenda, path, after, draft=True)
    assert isinstance(person, dict)
    assert [s["session_id"] for s in person["sessions"]] == ["2025-d3-closing"]
    assert (await agenda.get(path, params={"draft": "true"})).status_code == 401
    assert await status(version=1) == 422  # a version is an edition's

    after = await publish(agenda, "v2")
    choices: list[dict[str, str | int]] = [
        {},
        {"edition": "unpsf-2025"},
        {"edition": "unpsf-2025", "version": 2},
    ]
    for params in choices:
        person = await get_json(agenda, path, {**after, **params})
        assert isinstance(person, dict)
        assert [s["session_id"] for s in person["sessions"]] == ["2025-d3-closing"], params
    assert await status(edition="unpsf-2025", version=1) == 404


async def test_serves_the_countries_the_2025_forum_recognised_with_the_report_criteria(agenda):
    found = await agenda.get("/editions/unpsf-2025/recognitions")
    unknown = await agenda.get("/editions/unpsf-2024/recognitions")

    assert found.status_code == 200
    body = found.json()
    assert len(body["countries"]) == 12
    assert body["countries"][0] == {"alpha3": "ALB", "name": "Albania"}
    assert {"alpha3": "UZB", "name": "Uzbekistan"} in body["countries"]
    assert any("15 or more positions" in c for c in body["criteria"])
    assert unknown.status_code == 404
    assert "record no recognitions" in unknown.json()["reason"]
