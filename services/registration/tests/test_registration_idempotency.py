"""Idempotency keys over HTTP, endpoint by endpoint: a key is bound to the request it first
came with. The same key with another request is refused (422, nothing appended); the same
request again is a retry, answered as the first call was, with ``duplicate`` set."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from agora_events.commands import IdempotencyKeyReused
from agora_events.usecases import Caller
from agora_registration.application import Registration
from agora_registration.domain import badge_number

if TYPE_CHECKING:
    from tests.conftest import Agenda, Api


# -- a scene every case plays in -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One command request; every one is sent with the organiser token."""

    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Scene:
    """Two approved participants (``p1``, ``p2``), two awaiting review (``s1``, ``s2``) and
    two workshop sessions that do not overlap, ws-a (09:00-10:30) and ws-c (14:00-15:30),
    in a room of two places."""

    api: Api
    p1: str
    p2: str
    s1: str
    s2: str

    async def send(self, call: Call, key: str | None, *, respelled: bool = False) -> httpx.Response:
        headers = dict(self.api.organiser)
        if key is not None:
            headers["Idempotency-Key"] = key
        if call.body is None:
            return await self.api.client.request(call.method, call.path, headers=headers)
        if not respelled:
            return await self.api.client.request(
                call.method, call.path, json=call.body, headers=headers
            )
        # The same data spelled otherwise: keys in reverse order, odd whitespace.
        reordered = dict(reversed(list(call.body.items())))
        content = json.dumps(reordered, indent=3, separators=(" ,", " :  ")).encode()
        headers["Content-Type"] = "application/json"
        return await self.api.client.request(
            call.method, call.path, content=content, headers=headers
        )

    async def ok(self, call: Call) -> dict[str, Any]:
        """Send a call under a key of its own; it must succeed."""
        response = await self.send(call, new_key())
        assert response.status_code in (200, 201), (call, response.text)
        answer: dict[str, Any] = response.json()
        return answer

    async def settled(self) -> int:
        """REGISTRATION's last sequence once the reactor has handled all of it (a withdrawal
        or a rejection sends it releasing places), so nothing appends behind the test."""
        last = await last_sequence(self.api)
        await self.api.service.reactor.wait_for(last, stream="REGISTRATION")
        return await last_sequence(self.api)


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


async def last_sequence(api: Api) -> int:
    info = await api.service.nc.jetstream().stream_info("REGISTRATION")
    return int(info.state.last_seq)


async def workshops(api: Api, agenda: Agenda, capacity: int = 2) -> None:
    await agenda.room("room-a", capacity)
    await agenda.workshop("ws-a", "room-a", agenda.at(9), agenda.at(10, 30))
    await agenda.workshop("ws-c", "room-a", agenda.at(14), agenda.at(15, 30))
    await api.service.reactor.wait_for(agenda.sequence)


@pytest.fixture
async def scene(api: Api, agenda: Agenda) -> Scene:
    await workshops(api, agenda)
    p1, _ = await api.approved()
    p2, _ = await api.approved()
    s1 = (await api.register())["ids"]["participant_id"]
    s2 = (await api.register())["ids"]["participant_id"]
    return Scene(api, p1, p2, s1, s2)


Make = Callable[[Scene], Call]
Prepare = Callable[[Scene], Awaitable[None]]


async def nothing(_: Scene) -> None:
    return None


async def both_checked_in(scene: Scene) -> None:
    for pid in (scene.p1, scene.p2):
        await scene.ok(Call("POST", f"/participants/{pid}/check-in", {"gate": "North"}))


async def p1_checked_in(scene: Scene) -> None:
    at = "2025-06-24T08:30:00+05:00"
    await scene.ok(Call("POST", f"/participants/{scene.p1}/check-in", {"gate": "North", "at": at}))


async def p1_in_ws_a(scene: Scene) -> None:
    await scene.ok(enrol(scene.p1, "ws-a"))


async def enrolled_around(scene: Scene) -> None:
    """p1 in ws-a and ws-c, p2 in ws-a."""
    for pid, session_id in ((scene.p1, "ws-a"), (scene.p1, "ws-c"), (scene.p2, "ws-a")):
        await scene.ok(enrol(pid, session_id))


def enrol(pid: str, session_id: str) -> Call:
    return Call("POST", f"/participants/{pid}/enrolments", {"session_id": session_id})


def leave(pid: str, session_id: str) -> Call:
    return Call("DELETE", f"/participants/{pid}/enrolments/{session_id}")


def person(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "email": f"{name.lower()}@example.org",
        "category": "delegate",
        "delegation": "UZB",
    }


# -- a key sent again with another request -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reuse:
    first: Make
    other: Make
    alone: int
    """What ``other`` answers under a key of its own after ``first``: that it would have done
    something (or been refused for a reason of its own) shows the 422 is the key's."""
    prepare: Prepare = nothing


REUSED_ON_ONE_ENDPOINT = [
    pytest.param(
        Reuse(
            lambda s: Call("POST", "/participants", person("Ana")),
            lambda s: Call("POST", "/participants", person("Bob")),
            201,
        ),
        id="register-another-person",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("PATCH", f"/participants/{s.p1}", {"organisation": "Ministry A"}),
            lambda s: Call("PATCH", f"/participants/{s.p1}", {"organisation": "Ministry B"}),
            200,
        ),
        id="amend-another-body",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("PATCH", f"/participants/{s.p1}", {"title": "Adviser"}),
            lambda s: Call("PATCH", f"/participants/{s.p2}", {"title": "Adviser"}),
            200,
        ),
        id="amend-another-participant",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.s1}/approve"),
            lambda s: Call("POST", f"/participants/{s.s2}/approve"),
            200,
        ),
        id="approve-another-participant",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.s1}/reject", {"reason": "not invited"}),
            lambda s: Call("POST", f"/participants/{s.s1}/reject", {"reason": "twice"}),
            409,  # already rejected
        ),
        id="reject-another-reason",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.s1}/reject", {"reason": "not invited"}),
            lambda s: Call("POST", f"/participants/{s.s2}/reject", {"reason": "not invited"}),
            200,
        ),
        id="reject-another-participant",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.p1}/withdraw", {"reason": "travel"}),
            lambda s: Call("POST", f"/participants/{s.p1}/withdraw", {"reason": "illness"}),
            409,  # already withdrawn
        ),
        id="withdraw-another-reason",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.p1}/withdraw"),
            lambda s: Call("POST", f"/participants/{s.p2}/withdraw"),
            200,
        ),
        id="withdraw-another-participant",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.p1}/check-in", {"gate": "North"}),
            lambda s: Call("POST", f"/participants/{s.p1}/check-in", {"gate": "South"}),
            409,  # already checked in
        ),
        id="check-in-another-gate",
    ),
    pytest.param(
        Reuse(
            lambda s: Call(
                "POST",
                f"/participants/{s.p1}/check-in",
                {"gate": "North", "at": "2025-06-24T09:00:00+05:00"},
            ),
            lambda s: Call(
                "POST",
                f"/participants/{s.p1}/check-in",
                {"gate": "North", "at": "2025-06-24T09:05:00+05:00"},
            ),
            409,
        ),
        id="check-in-another-time",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.p1}/check-in", {"gate": "North"}),
            lambda s: Call("POST", f"/participants/{s.p2}/check-in", {"gate": "North"}),
            200,
        ),
        id="check-in-another-participant",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.p1}/check-out", {"gate": "North"}),
            lambda s: Call("POST", f"/participants/{s.p1}/check-out", {"gate": "South"}),
            409,  # not checked in any more
            both_checked_in,
        ),
        id="check-out-another-gate",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.p1}/check-out", {"gate": "North"}),
            lambda s: Call("POST", f"/participants/{s.p2}/check-out", {"gate": "North"}),
            200,
            both_checked_in,
        ),
        id="check-out-another-participant",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", "/check-ins", {"badge": badge_number(s.p1), "gate": "North"}),
            lambda s: Call("POST", "/check-ins", {"badge": badge_number(s.p2), "gate": "North"}),
            200,
        ),
        id="badge-check-in-another-badge",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", "/check-ins", {"badge": badge_number(s.p1), "gate": "North"}),
            lambda s: Call("POST", "/check-ins", {"badge": badge_number(s.p1), "gate": "South"}),
            409,
        ),
        id="badge-check-in-another-gate",
    ),
    pytest.param(
        Reuse(lambda s: enrol(s.p1, "ws-a"), lambda s: enrol(s.p1, "ws-c"), 200),
        id="enrol-another-session",
    ),
    pytest.param(
        Reuse(lambda s: enrol(s.p1, "ws-a"), lambda s: enrol(s.p2, "ws-a"), 200),
        id="enrol-another-participant",
    ),
    pytest.param(
        Reuse(lambda s: leave(s.p1, "ws-a"), lambda s: leave(s.p1, "ws-c"), 200, enrolled_around),
        id="leave-another-session",
    ),
    pytest.param(
        Reuse(lambda s: leave(s.p1, "ws-a"), lambda s: leave(s.p2, "ws-a"), 200, enrolled_around),
        id="leave-another-participant",
    ),
]

REUSED_ACROSS_ENDPOINTS = [
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.s1}/approve"),
            lambda s: Call("POST", f"/participants/{s.s1}/check-in", {"gate": "North"}),
            200,
        ),
        id="approve-then-check-in",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.p1}/check-in", {"gate": "North"}),
            lambda s: Call("POST", f"/participants/{s.p1}/check-out", {"gate": "North"}),
            200,
        ),
        id="check-in-then-check-out",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", "/check-ins", {"badge": badge_number(s.p1), "gate": "North"}),
            lambda s: Call("POST", f"/participants/{s.p1}/check-out", {"gate": "North"}),
            200,
        ),
        id="badge-check-in-then-check-out",
    ),
    pytest.param(
        Reuse(lambda s: enrol(s.p1, "ws-a"), lambda s: leave(s.p1, "ws-a"), 200),
        id="enrol-then-leave",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("PATCH", f"/participants/{s.p1}", {"title": "Adviser"}),
            lambda s: Call("POST", f"/participants/{s.p1}/withdraw"),
            200,
        ),
        id="amend-then-withdraw",
    ),
    pytest.param(
        Reuse(
            lambda s: Call("POST", f"/participants/{s.s1}/reject", {"reason": "not invited"}),
            lambda s: Call("POST", f"/participants/{s.s1}/approve"),
            200,
        ),
        id="reject-then-approve",
    ),
]


async def assert_refused_as_reused(scene: Scene, case: Reuse) -> None:
    await case.prepare(scene)
    key = new_key()
    first = await scene.send(case.first(scene), key)
    assert first.status_code in (200, 201), first.text
    before = await scene.settled()

    other = case.other(scene)
    refused = await scene.send(other, key)

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "IdempotencyKeyReused"
    assert key in refused.json()["reason"]
    assert await scene.settled() == before
    alone = await scene.send(other, new_key())
    assert alone.status_code == case.alone, alone.text


@pytest.mark.parametrize("case", REUSED_ON_ONE_ENDPOINT)
async def test_a_key_sent_again_with_another_request_is_refused_and_appends_nothing(
    scene: Scene, case: Reuse
) -> None:
    await assert_refused_as_reused(scene, case)


@pytest.mark.parametrize("case", REUSED_ACROSS_ENDPOINTS)
async def test_a_key_sent_again_on_another_endpoint_for_the_same_participant_is_refused(
    scene: Scene, case: Reuse
) -> None:
    await assert_refused_as_reused(scene, case)


async def test_a_replica_that_never_saw_the_key_refuses_it_on_the_same_participant(
    scene: Scene,
) -> None:
    key = new_key()
    approved = await scene.send(Call("POST", f"/participants/{scene.s1}/approve"), key)
    assert approved.status_code == 200, approved.text
    before = await scene.settled()
    # Another process has no memory of recent keys: the participant's history binds it.
    replica = Registration(scene.api.service.store)
    caller = Caller(actor="organiser", key=key, digest="a-check-in-request")
    with pytest.raises(IdempotencyKeyReused, match=key):
        await replica.check_in(scene.s1, "North", datetime.now(UTC), caller)
    assert await scene.settled() == before


# -- the same request again ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retry:
    call: Make
    status: int
    prepare: Prepare = nothing


RETRIED = [
    pytest.param(
        Retry(lambda s: Call("POST", "/participants", person("Ana") | {"title": "Dr"}), 201),
        id="register",
    ),
    pytest.param(
        Retry(
            lambda s: Call(
                "PATCH", f"/participants/{s.p1}", {"organisation": "Ministry A", "title": "Dr"}
            ),
            200,
        ),
        id="amend",
    ),
    pytest.param(Retry(lambda s: Call("POST", f"/participants/{s.s1}/approve"), 200), id="approve"),
    pytest.param(
        Retry(
            lambda s: Call("POST", f"/participants/{s.s1}/reject", {"reason": "not invited"}), 200
        ),
        id="reject",
    ),
    pytest.param(
        Retry(
            lambda s: Call("POST", f"/participants/{s.p1}/withdraw", {"reason": "travel"}),
            200,
            p1_in_ws_a,  # the answer names the place given up too
        ),
        id="withdraw-holding-a-place",
    ),
    pytest.param(
        Retry(lambda s: Call("POST", f"/participants/{s.p1}/withdraw"), 200),
        id="withdraw-without-a-body",
    ),
    pytest.param(
        Retry(
            lambda s: Call(
                "POST",
                f"/participants/{s.p1}/check-in",
                {"gate": "North", "at": "2025-06-24T09:00:00+05:00"},
            ),
            200,
        ),
        id="check-in",
    ),
    pytest.param(
        Retry(
            lambda s: Call(
                "POST",
                f"/participants/{s.p1}/check-out",
                {"gate": "South", "at": "2025-06-24T18:00:00+05:00"},
            ),
            200,
            p1_checked_in,
        ),
        id="check-out",
    ),
    pytest.param(
        Retry(
            lambda s: Call("POST", "/check-ins", {"badge": badge_number(s.p1), "gate": "North"}),
            200,
        ),
        id="badge-check-in",
    ),
    pytest.param(Retry(lambda s: enrol(s.p1, "ws-a"), 200), id="enrol"),
    pytest.param(Retry(lambda s: leave(s.p1, "ws-a"), 200, p1_in_ws_a), id="leave"),
]


def as_retried(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["duplicate"] is False, answer
    return answer | {"duplicate": True}


@pytest.mark.parametrize("case", RETRIED)
async def test_a_true_retry_answers_as_the_first_call_did_and_appends_nothing(
    scene: Scene, case: Retry
) -> None:
    await case.prepare(scene)
    call, key = case.call(scene), new_key()
    first = await scene.send(call, key)
    assert first.status_code == case.status, first.text
    assert first.json()["events"], first.json()
    before = await scene.settled()

    spellings = [False, True, False] if call.body is not None else [False, False]
    for respelled in spellings:
        again = await scene.send(call, key, respelled=respelled)
        assert again.status_code == case.status, again.text
        assert again.json() == as_retried(first.json()), respelled
    assert await scene.settled() == before


async def test_leaving_retried_five_times_with_one_key_answers_200_each_time_with_the_first_events(
    scene: Scene,
) -> None:
    await p1_in_ws_a(scene)
    key = new_key()
    first = await scene.send(leave(scene.p1, "ws-a"), key)
    assert first.status_code == 200, first.text
    assert "agora.registration.enrolment.unenrolled.v1" in first.json()["events"]
    before = await scene.settled()
    for _ in range(5):
        again = await scene.send(leave(scene.p1, "ws-a"), key)
        assert again.status_code == 200, again.text
        assert again.json() == as_retried(first.json())
    assert await scene.settled() == before


async def test_leaving_retried_after_enrolling_again_keeps_the_new_place(scene: Scene) -> None:
    await p1_in_ws_a(scene)
    key = new_key()
    first = await scene.send(leave(scene.p1, "ws-a"), key)
    assert first.status_code == 200, first.text
    back = await scene.ok(enrol(scene.p1, "ws-a"))
    before = await scene.settled()

    again = await scene.send(leave(scene.p1, "ws-a"), key)

    assert again.status_code == 200, again.text
    assert again.json() == as_retried(first.json())
    assert await scene.settled() == before
    record = await scene.api.client.get(
        f"/participants/{scene.p1}",
        params={"after": back["sequence"]},
        headers=scene.api.organiser,
    )
    assert [(p["session_id"], p["status"]) for p in record.json()["places"]] == [
        ("ws-a", "enrolled")
    ]


async def test_an_enrolment_retried_after_the_session_filled_up_still_answers_the_original(
    scene: Scene,
) -> None:
    key = new_key()
    first = await scene.send(enrol(scene.p1, "ws-a"), key)
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["position"]) == ("enrolled", None)
    await scene.ok(enrol(scene.p2, "ws-a"))  # the second of two places
    latecomer, _ = await scene.api.approved()
    waiting = await scene.ok(enrol(latecomer, "ws-a"))
    assert (waiting["status"], waiting["position"]) == ("waitlisted", 1)
    before = await scene.settled()

    again = await scene.send(enrol(scene.p1, "ws-a"), key)

    assert again.status_code == 200, again.text
    assert again.json() == as_retried(first.json())
    assert await scene.settled() == before


async def test_a_waitlisted_enrolment_retried_after_its_promotion_answers_as_the_first_call(
    scene: Scene,
) -> None:
    await scene.ok(enrol(scene.p1, "ws-a"))
    await scene.ok(enrol(scene.p2, "ws-a"))
    latecomer, _ = await scene.api.approved()
    key = new_key()
    first = await scene.send(enrol(latecomer, "ws-a"), key)
    assert (first.json()["status"], first.json()["position"]) == ("waitlisted", 1)
    await scene.ok(leave(scene.p1, "ws-a"))  # the latecomer moves up
    before = await scene.settled()

    again = await scene.send(enrol(latecomer, "ws-a"), key)

    assert again.status_code == 200, again.text
    assert await scene.settled() == before
    assert again.json() == as_retried(first.json())


async def test_a_badge_check_in_retried_after_the_check_out_answers_the_first_check_in(
    scene: Scene,
) -> None:
    scan = Call("POST", "/check-ins", {"badge": badge_number(scene.p1), "gate": "North"})
    key = new_key()
    first = await scene.send(scan, key)
    assert first.status_code == 200, first.text
    assert first.json()["ids"] == {"participant_id": scene.p1}
    out = await scene.ok(Call("POST", f"/participants/{scene.p1}/check-out", {"gate": "North"}))
    before = await scene.settled()

    again = await scene.send(scan, key)

    assert again.status_code == 200, again.text
    assert again.json() == as_retried(first.json())
    assert await scene.settled() == before
    record = await scene.api.client.get(
        f"/participants/{scene.p1}", params={"after": out["sequence"]}, headers=scene.api.organiser
    )
    assert [p["direction"] for p in record.json()["passages"]] == ["in", "out"]
    assert record.json()["inside"] is False


async def test_a_registration_retried_returns_the_same_participant_id_and_token(
    scene: Scene,
) -> None:
    form = Call("POST", "/participants", person("Ana") | {"organisation": "UNDP"})
    key = new_key()
    first = await scene.send(form, key)
    assert first.status_code == 201, first.text
    before = await scene.settled()

    again = await scene.send(form, key, respelled=True)

    assert again.status_code == 201, again.text
    assert again.json()["ids"] == first.json()["ids"]
    assert again.json()["participant_token"] == first.json()["participant_token"]
    assert again.json() == as_retried(first.json())
    assert await scene.settled() == before


async def test_a_check_in_without_a_time_retried_is_a_duplicate_not_a_second_check_in(
    scene: Scene,
) -> None:
    gate = Call("POST", f"/participants/{scene.p1}/check-in", {"gate": "North"})
    key = new_key()
    first = await scene.send(gate, key)
    assert first.status_code == 200, first.text
    before = await scene.settled()

    again = await scene.send(gate, key)  # the server's "now" has moved on

    assert again.status_code == 200, again.text
    assert again.json() == as_retried(first.json())
    assert await scene.settled() == before
    record = await scene.api.client.get(
        f"/participants/{scene.p1}",
        params={"after": first.json()["sequence"]},
        headers=scene.api.organiser,
    )
    assert [p["direction"] for p in record.json()["passages"]] == ["in"]
