"""Signing over HTTP against a real nats-server and read model: one signature per State
under a crowd, every refusal with a reason and nothing stored, a participant signing with
their own token, retries, and the status table."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from agora_declarations.application import Declarations
from agora_events.contracts.registration import Category
from agora_events.contracts.states import member_states
from agora_events.decider import InvariantViolated
from agora_events.store import EventStore

from .conftest import SAMARKAND, TEXT, Api, Clock, new_id, open_declaration, standing

pytestmark = pytest.mark.asyncio
# Tests of the rules at the edge need one read model; those of the tables run on both.
sqlite_only = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def last_sequence(store: EventStore) -> int:
    return (await store.read("declarations.>")).last_sequence


def reason(response: httpx.Response) -> str:
    answer: dict[str, Any] = response.json()
    return str(answer["reason"])


async def test_twenty_delegates_of_one_state_signing_at_once_make_exactly_one_signature(
    api: Api,
) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("crowd")
    sha256 = await open_declaration(commands, declaration_id)
    ministers = [
        await standing(commands, delegation="KEN", name=f"Minister {n}") for n in range(20)
    ]

    answers = await asyncio.gather(
        *(api.sign(declaration_id, "KEN", who, sha256) for who in ministers)
    )

    assert sorted(a.status_code for a in answers) == [201] + [409] * 19
    winner = next(a for a in answers if a.status_code == 201)
    status = await api.status(declaration_id, after=winner.json()["sequence"])
    [row] = status["rows"]
    assert row["state"] == "KEN" and row["signatory_name"].startswith("Minister ")
    signed_on = datetime.fromisoformat(row["signed_at"]).astimezone(SAMARKAND)
    for refused in (a for a in answers if a.status_code == 409):
        assert "already signed" in reason(refused)
        assert row["signatory_name"] in reason(refused)
        assert signed_on.isoformat(timespec="minutes") in reason(refused)


async def test_every_member_state_signing_at_once_is_listed_once(api: Api) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("all")
    sha256 = await open_declaration(commands, declaration_id)
    states = [state.alpha3 for state in member_states()]
    assert len(states) == 193
    signatories = {
        s: await standing(commands, delegation=s, category="head_of_delegation") for s in states
    }

    # More requests at once than the service admits: the client honours Retry-After.
    answers = await asyncio.gather(
        *(
            api.sign(declaration_id, s, who, sha256, retry_busy=True)
            for s, who in signatories.items()
        )
    )

    assert [a.status_code for a in answers] == [201] * 193, [
        reason(a) for a in answers if a.status_code != 201
    ][:3]
    status = await api.status(declaration_id, after=max(a.json()["sequence"] for a in answers))
    assert status["signed"] == 193
    assert sorted(row["state"] for row in status["rows"]) == sorted(states)


@sqlite_only
@pytest.mark.parametrize(
    "case",
    [
        "stale hash",
        "before the window",
        "after the window",
        "observer State",
        "rejected",
        "withdrawn",
        "no full powers",
        "another delegation",
        "unknown State",
    ],
)
async def test_refuses_an_unentitled_signature_with_a_reason_and_stores_nothing(
    api: Api, store: EventStore, clock: Clock, case: str
) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("refusal")
    opens_at = clock.now + timedelta(days=1) if case == "before the window" else None
    closes_at = clock.now + timedelta(hours=1) if case == "after the window" else None
    sha256 = await open_declaration(
        commands, declaration_id, opens_at=opens_at, closes_at=closes_at
    )
    category: Category = "minister"
    state, status_, delegation = "GHA", "approved", "GHA"
    match case:
        case "stale hash":
            sha256 = "ab" * 32
        case "after the window":
            clock.advance(hours=2)
        case "observer State":
            state = delegation = "VAT"
        case "rejected" | "withdrawn":
            status_ = case
        case "no full powers":
            category = "delegate"
        case "another delegation":
            delegation = "TGO"
        case "unknown State":
            state = "XYZ"
    who = await standing(commands, delegation=delegation, category=category, status=status_)
    before = await last_sequence(store)

    answer = await api.sign(declaration_id, state, who, sha256)

    expected = {"unknown State": 422}.get(case, 409)
    assert answer.status_code == expected, answer.text
    said = {
        "stale hash": "fixed as",
        "before the window": "cannot be signed yet",
        "after the window": "can no longer be signed",
        "observer State": "observer State",
        "rejected": "accreditation is rejected",
        "withdrawn": "accreditation is withdrawn",
        "no full powers": "no full powers recorded",
        "another delegation": "represents TGO",
        "unknown State": "alpha-3",
    }[case]
    assert said in reason(answer)
    assert await last_sequence(store) == before


@sqlite_only
async def test_a_participant_signs_with_their_own_token_and_not_with_anothers(api: Api) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("own")
    sha256 = await open_declaration(commands, declaration_id)
    minister = await standing(commands, delegation="PER")
    other = await standing(commands, delegation="PER")

    refused = await api.sign(declaration_id, "PER", minister, sha256, headers=api.token_of(other))
    anonymous = await api.sign(declaration_id, "PER", minister, sha256, headers={})
    signed = await api.sign(declaration_id, "PER", minister, sha256, headers=api.token_of(minister))

    assert refused.status_code == 403 and "own token" in reason(refused)
    assert anonymous.status_code == 401
    assert signed.status_code == 201, signed.text
    status = await api.status(declaration_id, after=signed.json()["sequence"])
    assert [row["capacity"] for row in status["rows"]] == ["minister"]


@sqlite_only
async def test_a_retried_signature_answers_the_first_answer_and_a_reused_key_is_refused(
    api: Api,
) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("retry")
    sha256 = await open_declaration(commands, declaration_id)
    minister = await standing(commands, delegation="CHL")
    key = {"Idempotency-Key": new_id("key"), **api.organiser}

    first = await api.sign(declaration_id, "CHL", minister, sha256, headers=key)
    again = await api.sign(declaration_id, "CHL", minister, sha256, headers=key)
    other = await api.sign(declaration_id, "CHL", minister, sha256, language="fr", headers=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json()["duplicate"] is True
    assert again.json()["sequence"] == first.json()["sequence"]
    assert other.status_code == 422 and "Idempotency-Key" in reason(other)


async def test_the_status_table_as_of_an_instant_shows_withdrawals_made_by_then(
    api: Api, clock: Clock
) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("asof")
    sha256 = await open_declaration(commands, declaration_id)
    minister = await standing(commands, delegation="NOR")
    signed = await api.sign(declaration_id, "NOR", minister, sha256)
    signed_at = clock.now
    clock.advance(days=2)
    withdrawn = await api.client.post(
        f"/declarations/{declaration_id}/states/NOR/signature/withdraw",
        json={"reason": "the government withdrew it"},
        headers=api.organiser,
    )
    assert signed.status_code == 201 and withdrawn.status_code == 200, withdrawn.text
    after = withdrawn.json()["sequence"]

    between = await api.status(
        declaration_id, after, as_of=(signed_at + timedelta(days=1)).isoformat()
    )
    now = await api.status(declaration_id, after, as_of=clock.now.isoformat())
    before = await api.status(
        declaration_id, after, as_of=(signed_at - timedelta(seconds=1)).isoformat()
    )

    assert (between["signed"], between["withdrawn"], between["rows"][0]["withdrawn_at"]) == (
        1,
        0,
        None,
    )
    assert (now["signed"], now["withdrawn"]) == (0, 1)
    assert now["rows"][0]["withdrawal_reason"] == "the government withdrew it"
    assert before["rows"] == []


async def test_the_status_table_downloads_as_csv(api: Api) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("csv")
    sha256 = await open_declaration(commands, declaration_id)
    minister = await standing(commands, delegation="CIV", name='=HYPERLINK("x")')
    signed = await api.sign(declaration_id, "CIV", minister, sha256)

    response = await api.client.get(
        f"/declarations/{declaration_id}/status.csv", params={"after": signed.json()["sequence"]}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["state"], r["state_name"], r["capacity"]) for r in rows] == [
        ("CIV", "Côte d'Ivoire", "minister")
    ]
    assert rows[0]["signatory_name"].startswith("'=")  # never run as a formula


@sqlite_only
async def test_refuses_an_as_of_without_an_offset(api: Api) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("naive")
    await open_declaration(commands, declaration_id)
    response = await api.client.get(
        f"/declarations/{declaration_id}/status", params={"as_of": "2025-06-23T10:00:00"}
    )
    assert response.status_code == 422
    assert "as_of" in reason(response)


async def test_a_draft_is_shown_to_organisers_only_and_its_text_cannot_change_once_open(
    api: Api,
) -> None:
    declaration_id = new_id("draft")
    created = await api.client.post(
        "/declarations",
        json={
            "declaration_id": declaration_id,
            "title": "A draft",
            "edition_id": "unpsf-2025",
            "launched_by": "uzb",
            "priorities": [{"number": 1, "title": "Access"}],
        },
        headers=api.organiser,
    )
    text = await api.client.put(
        f"/declarations/{declaration_id}/texts/en", json={"text": TEXT}, headers=api.organiser
    )
    assert created.status_code == 201 and text.status_code == 200, text.text
    after = {"after": text.json()["sequence"]}
    public = await api.client.get(f"/declarations/{declaration_id}", params=after)
    organiser = await api.client.get(
        f"/declarations/{declaration_id}", params=after, headers=api.organiser
    )
    assert public.status_code == 404
    assert organiser.status_code == 200 and organiser.json()["launched_by"] == "UZB"

    opened = await api.client.post(
        f"/declarations/{declaration_id}/open", json={}, headers=api.organiser
    )
    changed = await api.client.put(
        f"/declarations/{declaration_id}/texts/en",
        json={"text": "Other words."},
        headers=api.organiser,
    )
    assert opened.status_code == 200, opened.text
    assert changed.status_code == 409 and "fixed by their hashes" in reason(changed)
    shown = await api.client.get(
        f"/declarations/{declaration_id}", params={"after": opened.json()["sequence"]}
    )
    assert shown.json()["status"] == "open"
    [fixed] = shown.json()["texts"]
    body = await api.client.get(f"/declarations/{declaration_id}/texts/en")
    assert body.json()["sha256"] == fixed["sha256"] and body.json()["text"] == TEXT


async def test_two_processes_signing_for_one_state_at_once_record_one_signature(
    store: EventStore, clock: Clock
) -> None:
    """Two replicas share nothing but the log: the store's expected-sequence guard on the
    State's scope decides, and the loser decides again on the signed State and refuses."""
    first, second = Declarations(store, clock=clock), Declarations(store, clock=clock)
    declaration_id = new_id("replicas")
    sha256 = await open_declaration(first, declaration_id)
    ministers = [await standing(first, delegation="MAR") for _ in range(10)]

    async def attempt(replica: Declarations, participant_id: str) -> str:
        try:
            await replica.sign(
                declaration_id,
                "MAR",
                participant_id=participant_id,
                language="en",
                text_sha256=sha256,
            )
        except InvariantViolated as refused:
            return refused.reason
        return "signed"

    answers = await asyncio.gather(
        *(attempt(first if n % 2 else second, who) for n, who in enumerate(ministers))
    )

    assert answers.count("signed") == 1
    assert all("already signed" in a for a in answers if a != "signed")
    signatures = await store.read("declarations.state.MAR.signed")
    assert len(signatures) == 1


async def test_a_window_extended_after_a_signature_lets_the_next_state_sign_after_the_old_close(
    declarations: Declarations, store: EventStore, clock: Clock
) -> None:
    declaration_id = new_id("extended")
    closes_at = clock.now + timedelta(hours=1)
    sha256 = await open_declaration(declarations, declaration_id, closes_at=closes_at)
    early, late = (
        await standing(declarations, delegation="FJI"),
        await standing(declarations, delegation="TON"),
    )
    await declarations.sign(
        declaration_id, "FJI", participant_id=early, language="en", text_sha256=sha256
    )
    other = Declarations(store, clock=clock)  # another replica extends
    await other.extend_window(declaration_id, closes_at + timedelta(days=1))
    clock.advance(hours=2)

    outcome = await declarations.sign(
        declaration_id, "TON", participant_id=late, language="en", text_sha256=sha256
    )

    assert outcome.signed_at == clock.now
