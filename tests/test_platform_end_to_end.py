"""The services as separate processes (``agora up``), talking only through events."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agora_events.settings import LOCAL_ORGANISER_TOKEN

from .platform import Platform, eventually

pytestmark = pytest.mark.slow
ORGANISER = {"Authorization": f"Bearer {LOCAL_ORGANISER_TOKEN}"}
PATIENCE = 60.0  # seconds a request may take on a loaded machine before the test gives up


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(tmp_path_factory.mktemp("platform") / "home")
    try:
        yield running.wait_until_ready()
    finally:
        running.kill()


def registration_session(client: httpx.Client, session_id: str) -> dict[str, Any]:
    response = client.get(f"/sessions/{session_id}", headers=ORGANISER)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def test_registration_learns_the_demo_programme_from_agenda_events(platform: Platform) -> None:
    with httpx.Client(timeout=PATIENCE, base_url=platform.services["registration"]) as registration:
        sessions = eventually(
            lambda: registration.get("/sessions").json() or None,
            what="registration lists the dated workshop sessions",
        )
    # 2024's workshop sessions have their times in the programme; 2025's do not (the report
    # gives none), so registration offers none of them until an organiser schedules them.
    assert {s["edition_id"] for s in sessions} == {"unpsf-2024"}
    assert all(s["capacity"] >= 1 for s in sessions)


def test_a_capacity_raised_in_the_agenda_promotes_the_first_waitlisted(platform: Platform) -> None:
    agenda = httpx.Client(timeout=PATIENCE, base_url=platform.services["agenda"], headers=ORGANISER)
    registration = httpx.Client(timeout=PATIENCE, base_url=platform.services["registration"])
    with agenda, registration:
        session = eventually(
            lambda: next(
                (
                    s
                    for s in registration.get("/sessions").json()
                    if s["kind"] == "workshop_session"
                ),
                None,
            ),
            what="a workshop session reaches registration",
        )
        session_id = session["session_id"]
        agenda.patch(f"/sessions/{session_id}", json={"capacity": 2}).raise_for_status()
        eventually(
            lambda: registration_session(registration, session_id)["capacity"] == 2 or None,
            what="the new capacity reaches registration",
        )

        people = []
        for name, country in [("Aziz", "UZB"), ("Aya", "CIV"), ("Deniz", "TUR")]:
            body = {
                "name": name,
                "email": f"{name.lower()}@example.org",
                "category": "delegate",
                "delegation": country,
                "organisation": "Ministry",
            }
            registered = registration.post("/participants", json=body)
            assert registered.status_code == 201, registered.text
            pid = registered.json()["ids"]["participant_id"]
            token = registered.json()["participant_token"]
            registration.post(f"/participants/{pid}/approve", headers=ORGANISER).raise_for_status()
            people.append((pid, {"Authorization": f"Bearer {token}"}))

        statuses = []
        for pid, own in people:
            enrolled = registration.post(
                f"/participants/{pid}/enrolments", json={"session_id": session_id}, headers=own
            )
            assert enrolled.status_code == 200, enrolled.text
            statuses.append(enrolled.json()["status"])
        assert statuses == ["enrolled", "enrolled", "waitlisted"]

        agenda.patch(f"/sessions/{session_id}", json={"capacity": 3}).raise_for_status()
        lists = eventually(
            lambda: (lambda s: s if len(s["roster"]) == 3 else None)(
                registration_session(registration, session_id)
            ),
            what="the waitlisted participant is promoted",
        )
        assert [e["participant_id"] for e in lists["roster"]] == [pid for pid, _ in people]
        assert lists["waitlist"] == []


def test_every_service_exposes_metrics_and_continues_the_callers_trace(
    platform: Platform,
) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for name, url in platform.services.items():
        response = httpx.get(f"{url}/healthz", headers={"traceparent": parent}, timeout=PATIENCE)
        assert response.headers["traceparent"].split("-")[1] == parent.split("-")[1], name
        metrics = httpx.get(f"{url}/metrics", timeout=PATIENCE).text
        assert "agora_commands_total" in metrics, name
    agenda_metrics = httpx.get(f"{platform.services['agenda']}/metrics", timeout=PATIENCE).text
    assert 'agora_commands_total{context="agenda",outcome="accepted"}' in agenda_metrics


def test_a_minister_accredited_in_registration_signs_the_demo_declaration(
    platform: Platform,
) -> None:
    registration = httpx.Client(
        timeout=PATIENCE, base_url=platform.services["registration"], headers=ORGANISER
    )
    declarations = httpx.Client(
        timeout=PATIENCE, base_url=platform.services["declarations"], headers=ORGANISER
    )
    with registration, declarations:
        minister = {"name": "Ana Ministra", "email": "ana@example.org", "category": "minister"}
        created = registration.post("/participants", json=minister | {"delegation": "CHL"})
        participant_id = created.json()["ids"]["participant_id"]
        registration.post(f"/participants/{participant_id}/approve").raise_for_status()
        declaration = declarations.get("/declarations/samarkand-2025")
        assert declaration.status_code == 200, declaration.text
        assert [p["number"] for p in declaration.json()["priorities"]] == list(range(1, 8))
        [text] = declaration.json()["texts"]
        body = {"participant_id": participant_id, "language": "en", "text_sha256": text["sha256"]}

        def signed() -> httpx.Response | None:
            # 409 while declarations has not yet learnt of the approval from registration.
            answer = declarations.post(
                "/declarations/samarkand-2025/states/CHL/signature", json=body
            )
            return answer if answer.status_code != 409 else None

        answer = eventually(signed, within=60, what="declarations lets the minister sign")
        assert answer.status_code == 201, answer.text
        status = declarations.get(
            "/declarations/samarkand-2025/status", params={"after": answer.json()["sequence"]}
        ).json()
        assert [(r["state"], r["signatory_name"]) for r in status["rows"]] == [
            ("CHL", "Ana Ministra")
        ]


def test_sigterm_stops_the_platform_cleanly(platform: Platform) -> None:
    children = platform.tree()
    platform.process.send_signal(signal.SIGTERM)
    assert platform.process.wait(timeout=30) == 0
    for child in children:
        assert not child.is_running() or child.status() == "zombie"
