"""The HTTP API on a real nats-server, with the read model on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from agora_events.contracts.registration import AccreditationApproved, BadgeIssued
from agora_events.projections.source import last_sequence
from agora_events.streams import STREAMS
from agora_registration.domain import Amend, badge_number
from agora_registration.queries import PlaceView, clashes

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from tests.conftest import Agenda, Api


async def enrolled(api: Api, agenda: Agenda, *session_ids: str) -> tuple[str, dict[str, str]]:
    """An approved participant enrolled in each session, in that order, once the reactor has
    heard the agenda: their id and their own auth header."""
    assert api.service.reactor is not None
    await api.service.reactor.wait_for(agenda.sequence)
    pid, own = await api.approved()
    for session_id in session_ids:
        response = await api.client.post(
            f"/participants/{pid}/enrolments", json={"session_id": session_id}, headers=own
        )
        assert response.status_code == 200, response.text
        api.sequence = response.json()["sequence"]
    return pid, own


async def test_registers_a_participant_and_reads_it_back_at_the_returned_sequence(
    api: Api,
) -> None:
    registered = await api.register(
        name="Sherzod Shermatov",
        email="s.shermatov@example.org",
        category="minister",
        delegation="uzb",
        organisation="Ministry of Digital Technologies",
    )
    pid = registered["ids"]["participant_id"]
    assert registered["events"] == ["agora.registration.participant.registered.v1"]
    response = await api.client.get(
        f"/participants/{pid}",
        params={"after": registered["sequence"]},
        headers=api.bearer(registered["participant_token"]),
    )
    assert response.status_code == 200, response.text
    participant = response.json()
    assert participant["delegation"] == "UZB"
    assert participant["delegation_name"] == "Uzbekistan"
    assert participant["status"] == "submitted"
    assert participant["badge_number"] is None


async def test_registering_carries_the_correlation_id_and_a_bad_key_is_refused(
    api: Api, nats_client: NatsClient
) -> None:
    """Register and the read-back take their headers and query as parameters of their own
    rather than through dependencies (they are the hottest routes): they keep what every
    command and every query does."""
    sent = await api.client.post(
        "/participants",
        json={"name": "Amina Yusupova", "email": "a.yusupova@example.org", "category": "press"},
        headers={"X-Correlation-Id": "journey-7"},
    )
    assert sent.status_code == 201, sent.text
    stored = await nats_client.jetstream().get_msg(
        STREAMS["registration"].name, sent.json()["sequence"]
    )
    assert (stored.headers or {})["ce-correlationid"] == "journey-7"

    before = await last_sequence(nats_client, STREAMS["registration"].name)
    for headers in ({"Idempotency-Key": "k" * 201}, {"X-Correlation-Id": "two words"}):
        refused = await api.client.post(
            "/participants",
            json={"name": "A B", "email": "a.b@example.org", "category": "press"},
            headers=headers,
        )
        assert refused.status_code == 422, refused.text
        assert next(iter(headers)) in refused.json()["reason"]
    assert await last_sequence(nats_client, STREAMS["registration"].name) == before


async def test_openapi_documents_the_inputs_of_register_and_the_read_back(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    register = paths["/participants"]["post"]
    assert {(p["in"], p["name"]) for p in register["parameters"]} == {
        ("header", "Idempotency-Key"),
        ("header", "X-Correlation-Id"),
    }
    assert register["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RegisterRequest"
    }
    assert register["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RegistrationAccepted"
    }
    read = paths["/participants/{participant_id}"]["get"]
    assert {(p["in"], p["name"]) for p in read["parameters"]} == {
        ("path", "participant_id"),
        ("header", "authorization"),
        ("query", "after"),
    }
    assert read["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ParticipantDetail"
    }


async def test_approval_issues_the_badge_the_participant_reads_on_their_record(api: Api) -> None:
    pid, own = await api.approved()
    approval = await api.client.post(f"/participants/{pid}/approve", headers=api.organiser)
    assert approval.status_code == 409  # already approved
    record = (
        await api.client.get(f"/participants/{pid}", params={"after": api.sequence}, headers=own)
    ).json()
    assert record["status"] == "approved"
    assert record["badge_number"] == badge_number(pid)


async def test_an_approval_is_one_event_that_carries_the_badge(api: Api) -> None:
    registered = await api.register()
    pid = registered["ids"]["participant_id"]
    approval = await api.client.post(f"/participants/{pid}/approve", headers=api.organiser)
    assert approval.json()["events"] == ["agora.registration.participant.approved.v1"]
    history = await api.service.store.read(f"registration.participant.{pid}.*")
    event = history[-1].event
    assert isinstance(event, AccreditationApproved)
    assert event.badge is not None
    assert (event.badge.badge_number, event.badge.issue) == (badge_number(pid), 1)


async def test_shows_the_badge_of_an_approval_recorded_in_two_events(api: Api) -> None:
    registered = await api.register(category="minister", delegation="UZB")
    pid = registered["ids"]["participant_id"]
    badge = BadgeIssued(
        participant_id=pid,
        badge_number=badge_number(pid),
        issue=1,
        category="minister",
        delegation="UZB",
    )
    appended = await api.service.store.append(
        [AccreditationApproved(participant_id=pid), badge], expected=None
    )
    record = await api.client.get(
        f"/participants/{pid}",
        params={"after": appended.last_sequence},
        headers=api.bearer(registered["participant_token"]),
    )
    assert (record.json()["status"], record.json()["badge_number"]) == (
        "approved",
        badge_number(pid),
    )
    again = await api.service.commands.amend(Amend(pid, delegation="KAZ"))
    reapproved = await api.service.commands.approve(pid)
    assert reapproved.sequence > again.sequence
    latest = (await api.service.store.read(f"registration.participant.{pid}.*"))[-1].event
    assert isinstance(latest, AccreditationApproved)
    assert latest.badge is not None
    assert latest.badge.issue == 2


async def test_refuses_an_unknown_country_code_and_suggests_close_names(api: Api) -> None:
    response = await api.client.post(
        "/participants",
        json={"name": "A", "email": "a@example.org", "category": "minister", "delegation": "UZK"},
    )
    assert response.status_code == 422
    assert "did you mean UZB (Uzbekistan)" in response.json()["reason"]


async def test_refuses_an_unknown_category_naming_the_allowed_ones(api: Api) -> None:
    response = await api.client.post(
        "/participants", json={"name": "A", "email": "a@example.org", "category": "king"}
    )
    assert response.status_code == 422
    assert "head_of_state_or_government" in response.json()["reason"]


async def test_answers_404_for_an_unknown_participant(api: Api) -> None:
    for path in ("/participants/zzzzzzzz", "/participants/not-an-id"):
        response = await api.client.get(path, headers=api.organiser)
        assert response.status_code == 404, response.text
    response = await api.client.post("/participants/zzzzzzzz/approve", headers=api.organiser)
    assert response.status_code == 404
    assert "no participant zzzzzzzz" in response.json()["reason"]


async def test_refuses_organiser_actions_without_a_token_with_401(api: Api) -> None:
    registered = await api.register()
    pid = registered["ids"]["participant_id"]
    response = await api.client.post(f"/participants/{pid}/approve")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await api.client.get("/participants")).status_code == 401
    own = api.bearer(registered["participant_token"])
    assert (await api.client.post(f"/participants/{pid}/approve", headers=own)).status_code == 403


async def test_refuses_another_participants_token_with_403(api: Api) -> None:
    alice, alice_token = await api.approved()
    _, bob_token = await api.approved()
    for request in (
        api.client.get(f"/participants/{alice}", headers=bob_token),
        api.client.post(f"/participants/{alice}/withdraw", headers=bob_token),
        api.client.patch(f"/participants/{alice}", json={"name": "X"}, headers=bob_token),
    ):
        response = await request
        assert response.status_code == 403, response.text
        assert f"does not act for participant {alice}" in response.json()["reason"]
    response = await api.client.get(f"/participants/{alice}")
    assert response.status_code == 401
    own = await api.client.get(
        f"/participants/{alice}", params={"after": api.sequence}, headers=alice_token
    )
    assert own.status_code == 200


async def test_refuses_a_second_check_in_without_a_check_out(api: Api) -> None:
    pid, _ = await api.approved()
    first = await api.client.post(
        f"/participants/{pid}/check-in", json={"gate": "North"}, headers=api.organiser
    )
    assert first.status_code == 200, first.text
    second = await api.client.post(
        f"/participants/{pid}/check-in", json={"gate": "South"}, headers=api.organiser
    )
    assert second.status_code == 409
    assert "already checked in (gate North" in second.json()["reason"]
    out = await api.client.post(
        f"/participants/{pid}/check-out", json={"gate": "North"}, headers=api.organiser
    )
    record = await api.client.get(
        f"/participants/{pid}", params={"after": out.json()["sequence"]}, headers=api.organiser
    )
    assert [p["direction"] for p in record.json()["passages"]] == ["in", "out"]
    assert record.json()["inside"] is False


async def test_a_record_lists_places_in_start_order_and_passages_as_they_happened(
    api: Api, agenda: Agenda
) -> None:
    """The record's times are the instants recorded, to the microsecond and in UTC, whatever
    order the places were taken in (the detail is read in one statement: the database hands
    the places and passages over as JSON)."""
    await agenda.room("room-7", 5)
    later = (agenda.at(14, 15).replace(microsecond=250000), agenda.at(15, 45))
    earlier = (agenda.at(9, 30), agenda.at(10, 30).replace(microsecond=1))
    await agenda.workshop("ws7-pm", "room-7", *later)
    await agenda.workshop("ws7-am", "room-7", *earlier)
    pid, own = await enrolled(api, agenda, "ws7-pm", "ws7-am")
    gates = [
        ("check-in", "North", "2025-06-24T08:05:00.123456+00:00"),
        ("check-out", "North", "2025-06-24T12:00:00+00:00"),
        ("check-in", "South", "2025-06-24T13:55:00+05:00"),  # Tashkent time: 08:55 UTC
    ]
    for action, gate, at in gates:
        passed = await api.client.post(
            f"/participants/{pid}/{action}", json={"gate": gate, "at": at}, headers=api.organiser
        )
        assert passed.status_code == 200, passed.text
        api.sequence = passed.json()["sequence"]

    record = await api.client.get(
        f"/participants/{pid}", params={"after": api.sequence}, headers=own
    )

    assert record.status_code == 200, record.text
    detail = record.json()
    assert [
        (
            p["session_id"],
            datetime.fromisoformat(p["starts_at"]),
            datetime.fromisoformat(p["ends_at"]),
        )
        for p in detail["places"]
    ] == [("ws7-am", *earlier), ("ws7-pm", *later)]
    assert [
        (p["direction"], p["gate"], datetime.fromisoformat(p["at"])) for p in detail["passages"]
    ] == [
        ("in", "North", datetime.fromisoformat(gates[0][2])),
        ("out", "North", datetime.fromisoformat(gates[1][2])),
        ("in", "South", datetime.fromisoformat(gates[2][2])),
    ]
    assert all(p["at"].endswith(("Z", "+00:00")) for p in detail["passages"])
    assert detail["clashes"] == []


async def test_refuses_check_in_of_a_withdrawn_participant_and_says_why(api: Api) -> None:
    pid, own = await api.approved()
    withdrawn = await api.client.post(
        f"/participants/{pid}/withdraw", json={"reason": "travel cancelled"}, headers=own
    )
    assert withdrawn.status_code == 200, withdrawn.text
    response = await api.client.post(
        f"/participants/{pid}/check-in", json={"gate": "North"}, headers=api.organiser
    )
    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["reason"]) == (
        "InvariantViolated",
        f"participant {pid} cannot check in: they withdrew",
    )


async def test_refuses_check_in_of_a_rejected_participant_with_the_reason(api: Api) -> None:
    registered = await api.register()
    pid = registered["ids"]["participant_id"]
    rejection = await api.client.post(
        f"/participants/{pid}/reject", json={"reason": "not invited"}, headers=api.organiser
    )
    assert rejection.status_code == 200
    response = await api.client.post(
        f"/participants/{pid}/check-in", json={"gate": "North"}, headers=api.organiser
    )
    assert response.status_code == 409
    assert "rejected (not invited)" in response.json()["reason"]


async def test_checks_in_by_badge_number_and_refuses_a_mistyped_one(api: Api) -> None:
    pid, _ = await api.approved()
    badge = badge_number(pid)
    response = await api.client.post(
        "/check-ins", json={"badge": badge, "gate": "North"}, headers=api.organiser
    )
    assert response.status_code == 200, response.text
    assert response.json()["ids"] == {"participant_id": pid}
    slipped = badge[:-1] + ("0" if badge[-1] != "0" else "1")
    response = await api.client.post(
        "/check-ins", json={"badge": slipped, "gate": "North"}, headers=api.organiser
    )
    assert response.status_code == 422
    assert "typo" in response.json()["reason"]


async def test_amending_contact_details_keeps_the_approval_but_a_new_category_does_not(
    api: Api,
) -> None:
    pid, own = await api.approved()
    contact = await api.client.patch(
        f"/participants/{pid}", json={"email": "new@example.org", "title": "Adviser"}, headers=own
    )
    assert contact.status_code == 200, contact.text
    record = await api.client.get(
        f"/participants/{pid}", params={"after": contact.json()["sequence"]}, headers=own
    )
    assert (record.json()["status"], record.json()["email"]) == ("approved", "new@example.org")
    category = await api.client.patch(
        f"/participants/{pid}", json={"category": "head_of_delegation"}, headers=own
    )
    record = await api.client.get(
        f"/participants/{pid}", params={"after": category.json()["sequence"]}, headers=own
    )
    assert record.json()["status"] == "submitted"
    refused = await api.client.post(
        f"/participants/{pid}/check-in", json={"gate": "N"}, headers=api.organiser
    )
    assert "awaits an organiser's review" in refused.json()["reason"]


async def test_a_retry_with_the_same_idempotency_key_is_applied_once(api: Api) -> None:
    body = {"name": "Ana", "email": "ana@example.org", "category": "press"}
    headers = {"Idempotency-Key": "signup-7f3a"}
    first = await api.client.post("/participants", json=body, headers=headers)
    again = await api.client.post("/participants", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["duplicate"] is True
    assert again.json()["ids"] == first.json()["ids"]
    pid = first.json()["ids"]["participant_id"]
    gate = {"Idempotency-Key": "scan-1"} | api.organiser
    await api.client.post(f"/participants/{pid}/approve", headers=api.organiser)
    one = await api.client.post(f"/participants/{pid}/check-in", json={"gate": "N"}, headers=gate)
    two = await api.client.post(f"/participants/{pid}/check-in", json={"gate": "N"}, headers=gate)
    assert (one.status_code, two.status_code) == (200, 200)
    assert two.json()["sequence"] == one.json()["sequence"]


async def test_bad_input_gets_a_clear_4xx_never_a_500(api: Api) -> None:
    pid, own = await api.approved()
    cases = [
        ("post", "/participants", {"content": b"{not json", "headers": {}}, 422),
        ("post", "/participants", {"json": {"name": "A"}}, 422),
        (
            "post",
            "/participants",
            {"json": {"name": "A", "email": "nope", "category": "press"}},
            422,
        ),
        ("patch", f"/participants/{pid}", {"json": {"shoe_size": 44}, "headers": own}, 422),
        (
            "patch",
            f"/participants/{pid}",
            {"json": {"delegation": "Atlantis"}, "headers": own},
            422,
        ),
        (
            "post",
            f"/participants/{pid}/check-in",
            {"json": {"gate": "N", "at": "yesterday"}, "headers": api.organiser},
            422,
        ),
        (
            "post",
            f"/participants/{pid}/check-in",
            {"json": {"gate": "N", "at": "2025-06-24T09:00:00"}, "headers": api.organiser},
            422,
        ),
        (
            "post",
            f"/participants/{pid}/enrolments",
            {"json": {"session_id": "a.b"}, "headers": own},
            422,
        ),
        (
            "post",
            f"/participants/{pid}/enrolments",
            {"json": {"session_id": "ws-x"}, "headers": own},
            404,
        ),
        ("delete", f"/participants/{pid}/enrolments/ws-x", {"headers": own}, 404),
        ("get", "/participants", {"params": {"country": "XX"}, "headers": api.organiser}, 422),
        ("get", "/participants", {"params": {"status": "happy"}, "headers": api.organiser}, 422),
        ("get", "/delegations/Narnia", {"headers": api.organiser}, 422),
        ("get", "/sessions/ws-x", {"headers": api.organiser}, 404),
        ("get", f"/participants/{pid}", {"params": {"after": -1}, "headers": own}, 422),
        # Numbers past what the database holds are refused, not passed on to it.
        ("get", "/participants", {"params": {"offset": 2**64}, "headers": api.organiser}, 422),
        ("get", f"/participants/{pid}", {"params": {"after": 2**64}, "headers": own}, 422),
        (
            "post",
            f"/participants/{pid}/reject",
            {"json": {"reason": ""}, "headers": api.organiser},
            422,
        ),
    ]
    for method, path, options, expected in cases:
        response = await api.client.request(method, path, **options)  # type: ignore[arg-type]
        assert response.status_code == expected, (method, path, response.text)
        assert response.json()["reason"], (path, response.json())


async def test_lists_filter_by_country_category_and_status_and_count_them(api: Api) -> None:
    await api.approved(category="minister", delegation="UZB")
    await api.approved(category="delegate", delegation="UZB")
    await api.approved(category="minister", delegation="KOR")
    pending = await api.register(category="press", delegation=None)
    sequence = pending["sequence"]
    listed = await api.client.get(
        "/participants",
        params={"country": "uzb", "category": "minister", "after": sequence},
        headers=api.organiser,
    )
    assert listed.json()["total"] == 1
    assert listed.json()["items"][0]["delegation"] == "UZB"
    submitted = await api.client.get(
        "/participants", params={"status": "submitted"}, headers=api.organiser
    )
    assert [p["category"] for p in submitted.json()["items"]] == ["press"]
    delegation = await api.client.get("/delegations/UZB", headers=api.organiser)
    assert delegation.json()["name"] == "Uzbekistan"
    assert len(delegation.json()["participants"]) == 2
    counts = (await api.client.get("/counts", headers=api.organiser)).json()
    assert counts["total"] == 4
    assert counts["by_status"] == {"approved": 3, "submitted": 1}
    assert counts["by_category"] == {"delegate": 1, "minister": 2, "press": 1}
    assert counts["by_country"] == {"KOR": 1, "UZB": 2, "none": 1}


async def test_enrolment_fills_the_roster_then_the_waitlist_and_refuses_overlap(
    api: Api, agenda: Agenda
) -> None:
    await agenda.room("room-5", 2)
    await agenda.workshop("ws5-s1", "room-5", agenda.at(9), agenda.at(10, 30))
    await agenda.workshop("ws6-s1", "room-5", agenda.at(10), agenda.at(11))
    assert api.service.reactor is not None
    await api.service.reactor.wait_for(agenda.sequence)
    people = [await api.approved() for _ in range(3)]
    answers = []
    for pid, own in people:
        response = await api.client.post(
            f"/participants/{pid}/enrolments", json={"session_id": "ws5-s1"}, headers=own
        )
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert [(a["status"], a["position"]) for a in answers] == [
        ("enrolled", None),
        ("enrolled", None),
        ("waitlisted", 1),
    ]
    pid, own = people[0]
    overlap = await api.client.post(
        f"/participants/{pid}/enrolments", json={"session_id": "ws6-s1"}, headers=own
    )
    assert overlap.status_code == 409
    assert "overlaps session ws5-s1" in overlap.json()["reason"]
    double = await api.client.post(
        f"/participants/{pid}/enrolments", json={"session_id": "ws5-s1"}, headers=own
    )
    assert double.status_code == 409
    assert "already enrolled" in double.json()["reason"]
    left = await api.client.delete(f"/participants/{pid}/enrolments/ws5-s1", headers=own)
    assert left.status_code == 200, left.text
    roster = await api.client.get(
        "/sessions/ws5-s1", params={"after": left.json()["sequence"]}, headers=api.organiser
    )
    assert [e["participant_id"] for e in roster.json()["roster"]] == [people[1][0], people[2][0]]
    assert roster.json()["waitlist"] == []
    summary = (await api.client.get("/sessions")).json()
    assert [(s["session_id"], s["enrolled"], s["waitlisted"]) for s in summary] == [
        ("ws5-s1", 2, 0),
        ("ws6-s1", 0, 0),
    ]
    mine = await api.client.get(f"/participants/{people[2][0]}", headers=people[2][1])
    assert [(p["session_id"], p["status"]) for p in mine.json()["places"]] == [
        ("ws5-s1", "enrolled")
    ]


async def test_a_participants_record_shows_their_place_on_the_waitlist(
    api: Api, agenda: Agenda
) -> None:
    await agenda.room("room-5", 2)
    await agenda.workshop("ws5-s1", "room-5", agenda.at(9), agenda.at(10, 30))
    assert api.service.reactor is not None
    await api.service.reactor.wait_for(agenda.sequence)
    people = [await api.approved() for _ in range(4)]
    sequence = 0
    for pid, own in people:
        response = await api.client.post(
            f"/participants/{pid}/enrolments", json={"session_id": "ws5-s1"}, headers=own
        )
        assert response.status_code == 200, response.text
        sequence = response.json()["sequence"]

    async def places() -> list[list[tuple[str, str, int | None]]]:
        found = []
        for pid, own in people:
            record = await api.client.get(
                f"/participants/{pid}", params={"after": sequence}, headers=own
            )
            assert record.status_code == 200, record.text
            found.append(
                [(p["session_id"], p["status"], p["position"]) for p in record.json()["places"]]
            )
        return found

    assert await places() == [
        [("ws5-s1", "enrolled", None)],
        [("ws5-s1", "enrolled", None)],
        [("ws5-s1", "waitlisted", 1)],
        [("ws5-s1", "waitlisted", 2)],
    ]
    first, own = people[0]
    left = await api.client.delete(f"/participants/{first}/enrolments/ws5-s1", headers=own)
    assert left.status_code == 200, left.text
    sequence = left.json()["sequence"]
    assert (await places())[1:] == [
        [("ws5-s1", "enrolled", None)],
        [("ws5-s1", "enrolled", None)],
        [("ws5-s1", "waitlisted", 1)],
    ]


async def test_a_participant_awaiting_review_cannot_enrol(api: Api, agenda: Agenda) -> None:
    await agenda.room("room-5", 2)
    await agenda.workshop("ws5-s1", "room-5", agenda.at(9), agenda.at(10, 30))
    assert api.service.reactor is not None
    await api.service.reactor.wait_for(agenda.sequence)
    registered = await api.register()
    pid = registered["ids"]["participant_id"]
    response = await api.client.post(
        f"/participants/{pid}/enrolments",
        json={"session_id": "ws5-s1"},
        headers=api.bearer(registered["participant_token"]),
    )
    assert response.status_code == 409
    assert "awaits an organiser's review" in response.json()["reason"]


async def test_a_query_the_read_model_cannot_answer_yet_gets_503_with_retry_after(
    api: Api,
) -> None:
    await api.service.projections.stop()  # the projections stall
    settings = api.service.settings
    api.service.settings = settings.model_copy(update={"read_your_writes_timeout": 0.5})
    await api.register()
    response = await api.client.get(
        "/counts", params={"after": api.sequence}, headers=api.organiser
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "ReadModelBehind"


async def test_an_organiser_can_give_a_participant_their_token_again(api: Api) -> None:
    registered = await api.register()
    pid = registered["ids"]["participant_id"]
    response = await api.client.get(f"/participants/{pid}/token", headers=api.organiser)
    assert response.json()["participant_token"] == registered["participant_token"]


async def test_serves_health_readiness_states_and_openapi(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok", "service": "registration"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    report = ready.json()
    assert (report["status"], report["service"]) == ("ready", "registration")
    assert report["checks"]["nats"] == report["checks"]["reactor_connection"] == "connected"
    assert {p["projection"] for p in report["checks"]["projections"]}
    assert {r["consumer"] for r in report["checks"]["reactors"]} == {
        "registration-reactor-agenda",
        "registration-reactor-releases",
    }
    states = (await api.client.get("/states")).json()
    assert len(states) == 195
    assert {"alpha3": "VAT", "name": "Holy See", "status": "observer"} in states
    schema = (await api.client.get("/openapi.json")).json()
    assert "/participants/{participant_id}/enrolments" in schema["paths"]


async def test_lists_possible_double_registrations_until_an_organiser_rejects_one(
    api: Api,
) -> None:
    first = await api.register(name="Aziza Karimova", email="a.karimova@example.org")
    again = await api.register(name="aziza karimova", email="A.Karimova@example.org")
    # One focal point's address for several delegates is no sign of a double registration.
    await api.register(name="Bobur Aliev", email="mission@example.org")
    await api.register(name="Dilnoza Yusupova", email="mission@example.org")

    listed = await api.client.get(
        "/participants/duplicates", params={"after": api.sequence}, headers=api.organiser
    )
    assert listed.status_code == 200, listed.text
    groups = listed.json()
    assert len(groups) == 1
    assert [p["participant_id"] for p in groups[0]["participants"]] == [
        first["ids"]["participant_id"],
        again["ids"]["participant_id"],
    ]

    extra = again["ids"]["participant_id"]
    rejected = await api.client.post(
        f"/participants/{extra}/reject",
        json={"reason": f"registered twice; see {first['ids']['participant_id']}"},
        headers=api.organiser,
    )
    assert rejected.status_code == 200, rejected.text
    after = await api.client.get(
        "/participants/duplicates",
        params={"after": rejected.json()["sequence"]},
        headers=api.organiser,
    )
    assert after.json() == []
    assert (await api.client.get("/participants/duplicates")).status_code == 401


async def test_a_session_moved_onto_another_one_shows_as_a_clash_on_the_record(
    api: Api, agenda: Agenda
) -> None:
    await agenda.room("room-5", 20)
    await agenda.workshop("ws5-s1", "room-5", agenda.at(9), agenda.at(10, 30))
    await agenda.workshop("ws6-s1", "room-5", agenda.at(14), agenda.at(15))
    pid, own = await enrolled(api, agenda, "ws5-s1", "ws6-s1")
    record = await api.client.get(
        f"/participants/{pid}", params={"after": api.sequence}, headers=own
    )
    assert record.json()["clashes"] == []

    await agenda.move(
        "ws6-s1",
        ("room-5", agenda.at(14), agenda.at(15)),
        ("room-5", agenda.at(10), agenda.at(11)),
    )
    await api.service.reactor.wait_for(agenda.sequence)
    # The reactor recorded the new times in REGISTRATION; the read model follows from there.
    recorded = await last_sequence(api.service.nc, "REGISTRATION")
    await api.service.projections.wait_for(recorded, stream="REGISTRATION")
    record = await api.client.get(f"/participants/{pid}", headers=own)
    assert record.json()["clashes"] == [["ws5-s1", "ws6-s1"]]
    assert [p["status"] for p in record.json()["places"]] == ["enrolled", "enrolled"]


def test_back_to_back_sessions_do_not_clash_but_each_overlap_is_named_once() -> None:
    def place(session_id: str, start: tuple[int, int], end: tuple[int, int]) -> PlaceView:
        day = datetime(2025, 6, 24, tzinfo=ZoneInfo("Asia/Samarkand"))
        return PlaceView(
            session_id=session_id,
            title=session_id,
            starts_at=day.replace(hour=start[0], minute=start[1]),
            ends_at=day.replace(hour=end[0], minute=end[1]),
            status="enrolled",
        )

    places = [
        place("c", (10, 0), (12, 0)),
        place("a", (9, 0), (10, 0)),  # ends as c starts: no clash
        place("b", (9, 30), (10, 30)),
        place("d", (11, 0), (11, 30)),
    ]
    assert clashes(places) == [("a", "b"), ("b", "c"), ("c", "d")]
