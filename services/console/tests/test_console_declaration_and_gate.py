"""The declaration page (its status table as of any instant, CSV) and the gate (green or red,
with the reason, decided on the console's read model, then sent to registration)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx

from agora_console.domain import Holder, Refused, normalise_badge, verdict
from agora_events.contracts.declarations import (
    DeclarationDrafted,
    DeclarationOpenedForSignature,
    DeclarationSigned,
    DeclarationTextSet,
    FixedText,
    Priority,
    SignatureWithdrawn,
)
from agora_events.contracts.registration import (
    AccreditationApproved,
    Badge,
    ParticipantRegistered,
    ParticipantWithdrew,
)

from .conftest import SAMARKAND, Console, FakeRegistration, Log, applied, plan_edition, signed_in

DECLARATION = "samarkand-2025"
HASH = "ab" * 32


async def open_declaration(log: Log) -> int:
    return await log.append(
        DeclarationDrafted(
            declaration_id=DECLARATION,
            title="Samarkand Ministerial Declaration",
            edition_id="unpsf-2025",
            launched_by="UZB",
            priorities=(
                Priority(number=1, title="Digital transformation"),
                Priority(number=2, title="Trust in public institutions"),
            ),
        ),
        DeclarationTextSet(declaration_id=DECLARATION, language="en", text="Text.\n", sha256=HASH),
        DeclarationOpenedForSignature(
            declaration_id=DECLARATION,
            texts=(FixedText(language="en", sha256=HASH),),
            opens_at=datetime(2025, 6, 23, 9, tzinfo=SAMARKAND),
        ),
    )


def signed(state: str, on: datetime, name: str) -> DeclarationSigned:
    return DeclarationSigned(
        declaration_id=DECLARATION,
        state=state,
        participant_id=f"p-{state.lower()}",
        signatory_name=name,
        signatory_title="Minister for Foreign Affairs",
        capacity="minister",
        language="en",
        text_sha256=HASH,
        signed_at=on,
    )


async def test_the_declaration_page_shows_title_priorities_hash_window_and_signatures(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "AGENDA", await plan_edition(log))  # its time zone
    await open_declaration(log)
    sequence = await log.append(
        signed("CHL", datetime(2025, 6, 24, 10, tzinfo=SAMARKAND), "Ana Ministra")
    )
    await applied(console, "DECLARATIONS", sequence)

    html = (await web.get("/declaration", follow_redirects=True)).text

    assert "Samarkand Ministerial Declaration" in html and "Launched by Uzbekistan" in html
    assert "Digital transformation" in html and "Trust in public institutions" in html
    assert (
        HASH in html and "from Monday 23 June 2025, 09:00 (UTC+05:00) with no closing date" in html
    )
    assert "States signed: 1 · withdrawn: 0" in html
    assert "Chile" in html and "Ana Ministra, Minister for Foreign Affairs" in html


async def test_the_status_as_of_an_earlier_day_is_answered_by_the_events_own_times(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "AGENDA", await plan_edition(log))  # days end in Samarkand
    await open_declaration(log)
    first = datetime(2025, 6, 24, 10, tzinfo=SAMARKAND)
    sequence = await log.append(
        signed("CHL", first, "Ana Ministra"),
        signed("KOR", datetime(2025, 6, 25, 11, tzinfo=SAMARKAND), "Kim Minister"),
        SignatureWithdrawn(
            declaration_id=DECLARATION,
            state="CHL",
            signed_at=first,
            withdrawn_at=datetime(2025, 6, 25, 12, tzinfo=SAMARKAND),
            reason="signed in error",
        ),
    )
    await applied(console, "DECLARATIONS", sequence)
    page = f"/declarations/{DECLARATION}"

    on_the_24th = (await web.get(page, params={"as_of": "2025-06-24"})).text
    now = (await web.get(page)).text
    before_kor = (await web.get(page, params={"as_of": "2025-06-25T11:00:00+05:00"})).text

    assert (
        "States signed: 1 · withdrawn: 0" in on_the_24th and "Republic of Korea" not in on_the_24th
    )
    assert "States signed: 1 · withdrawn: 1" in now and "Republic of Korea" in now
    assert "States signed: 2 · withdrawn: 0" in before_kor  # the instant itself counts
    assert 'data-live="declarations"' in now and "data-live" not in on_the_24th


async def test_the_status_downloads_as_csv_as_of_the_day_chosen(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await open_declaration(log)
    sequence = await log.append(
        signed("CHL", datetime(2025, 6, 24, 10, tzinfo=SAMARKAND), "=HYPERLINK(1)")
    )
    await applied(console, "DECLARATIONS", sequence)

    answer = await web.get(
        f"/declarations/{DECLARATION}/status.csv", params={"as_of": "2025-06-24"}
    )
    rows = list(csv.reader(io.StringIO(answer.text)))
    empty = await web.get(f"/declarations/{DECLARATION}/status.csv", params={"as_of": "2025-06-23"})

    assert answer.headers["content-type"].startswith("text/csv")
    assert rows[0][:3] == ["state", "state_name", "signed_at"]
    assert rows[1][:2] == ["CHL", "Chile"] and rows[1][3] == "'=HYPERLINK(1)"
    assert len(list(csv.reader(io.StringIO(empty.text)))) == 1
    assert (
        await web.get(f"/declarations/{DECLARATION}", params={"as_of": "yesterday"})
    ).status_code == 422


async def test_a_draft_declaration_is_not_public(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    sequence = await log.append(
        DeclarationDrafted(
            declaration_id="draft-1", title="Not yet", edition_id="unpsf-2025", launched_by="UZB"
        )
    )
    await applied(console, "DECLARATIONS", sequence)

    assert (await web.get("/declarations/draft-1")).status_code == 404
    assert (await web.get("/declaration")).status_code == 404


# -- the gate ---------------------------------------------------------------------------------


async def accredited(log: Log, participant_id: str, number: str, name: str) -> int:
    return await log.append(
        ParticipantRegistered(
            participant_id=participant_id,
            name=name,
            email=f"{participant_id}@example.org",
            category="delegate",
            delegation="UZB",
        ),
        AccreditationApproved(
            participant_id=participant_id,
            badge=Badge(badge_number=number, issue=1, category="delegate", delegation="UZB"),
        ),
    )


async def test_the_gate_asks_an_organiser_to_sign_in_first(web: httpx.AsyncClient) -> None:
    answer = await web.get("/gate")
    wrong = await web.post("/sign-in", data={"token": "guess", "next": "/gate"})
    refused = await web.post("/gate", data={"badge": "7K2M-9QXD-C"})

    assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in")
    assert wrong.status_code == 401 and "not the organiser token" in wrong.text
    assert refused.status_code == 303


async def test_an_approved_badge_checks_in_green_through_registration_then_is_inside(
    console: Console, web: httpx.AsyncClient, log: Log, registration: FakeRegistration
) -> None:
    await applied(
        console, "REGISTRATION", await accredited(log, "7k2m9qxd", "7K2M-9QXD-C", "Ada Example")
    )
    await signed_in(web)

    first = await web.post("/gate", data={"badge": "7k2m 9qxd c", "direction": "in"})
    again = await web.post("/gate", data={"badge": "7K2M-9QXD-C", "direction": "in"})
    out = await web.post("/gate", data={"badge": "7K2M-9QXD-C", "direction": "out"})

    assert first.status_code == 200 and 'data-ok="true"' in first.text
    assert "Welcome, Ada Example: checked in." in first.text and "Inside now: 1" in first.text
    assert again.status_code == 409 and "Already inside." in again.text
    assert out.status_code == 200 and "Ada Example: checked out." in out.text
    assert registration.calls == ["7k2m9qxd check-in", "7k2m9qxd check-out"]


async def test_a_withdrawn_participants_badge_is_answered_red_with_the_reason(
    console: Console, web: httpx.AsyncClient, log: Log, registration: FakeRegistration
) -> None:
    await accredited(log, "9zzq1abc", "9ZZQ-1ABC-D", "Bo Withdrawn")
    sequence = await log.append(ParticipantWithdrew(participant_id="9zzq1abc"))
    await applied(console, "REGISTRATION", sequence)
    await signed_in(web)

    answer = await web.post("/gate", data={"badge": "9ZZQ-1ABC-D"})
    unknown = await web.post("/gate", data={"badge": "0000-0000-0"})

    assert answer.status_code == 409 and 'data-ok="false"' in answer.text
    assert "Participant withdrawn." in answer.text
    assert "Unknown badge." in unknown.text
    assert registration.calls == []


async def test_a_refusal_by_registration_is_shown_in_its_own_words(
    console: Console, web: httpx.AsyncClient, log: Log, registration: FakeRegistration
) -> None:
    await applied(
        console, "REGISTRATION", await accredited(log, "7k2m9qxe", "7K2M-9QXE-A", "Cy Late")
    )
    await signed_in(web)
    registration.refuse_with = "participant 7k2m9qxe withdrew at 10:02"

    answer = await web.post("/gate", data={"badge": "7K2M-9QXE-A"})

    assert answer.status_code == 409
    assert "Registration refused: participant 7k2m9qxe withdrew at 10:02" in answer.text


def test_the_gate_verdict_names_each_reason_to_refuse() -> None:
    now = datetime.now(UTC)

    def holder(status: str, inside: bool = False) -> Holder:
        return Holder("p1", "P", status, now - timedelta(hours=1) if inside else None)

    assert verdict("12", None, "in") == Refused("not_a_badge")
    assert verdict("7K2M-9QXD-C", None, "in") == Refused("unknown_badge")
    assert verdict("7K2M-9QXD-C", holder("submitted"), "in") == Refused("not_approved")
    assert verdict("7K2M-9QXD-C", holder("rejected"), "in") == Refused("rejected")
    assert verdict("7K2M-9QXD-C", holder("withdrawn"), "in") == Refused("withdrawn")
    assert verdict("7K2M-9QXD-C", holder("approved", inside=True), "in") == Refused(
        "already_inside"
    )
    assert verdict("7K2M-9QXD-C", holder("approved"), "out") == Refused("not_inside")
    assert not isinstance(verdict("7K2M-9QXD-C", holder("withdrawn", inside=True), "out"), Refused)
    assert normalise_badge(" 7k2m-9qxd-c ") == normalise_badge("7K2M9QXDC") == "7K2M9QXDC"
    assert normalise_badge("OIL") == "011"
