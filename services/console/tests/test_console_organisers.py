"""The organisers' accreditation, workshops and operations pages."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import httpx

from agora_events.audit import export_log
from agora_events.contracts.registration import (
    Enrolled,
    ParticipantRegistered,
    PromotedFromWaitlist,
    SessionTermsRecorded,
    Unenrolled,
    Waitlisted,
)

from .conftest import Console, FakeRegistration, Log, applied, signed_in

SAMARKAND = timezone(timedelta(hours=5))


def registered(participant_id: str, name: str, delegation: str = "UZB") -> ParticipantRegistered:
    return ParticipantRegistered(
        participant_id=participant_id,
        name=name,
        email=f"{participant_id}@example.org",
        category="delegate",
        delegation=delegation,
    )


async def test_the_organiser_pages_ask_for_sign_in(web: httpx.AsyncClient) -> None:
    for path in ("/accreditation", "/workshops", "/operations"):
        answer = await web.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in")


async def test_the_queue_lists_the_submitted_and_an_approval_goes_through_registration(
    console: Console, web: httpx.AsyncClient, log: Log, registration: FakeRegistration
) -> None:
    await log.append(
        registered("aaaa0001", "Ada Example"), registered("aaaa0002", "Bo Other", "KOR")
    )
    await applied(console, "REGISTRATION", await log.append(registered("aaaa0003", "ada  example")))
    await signed_in(web)

    queue = await web.get("/accreditation")
    approved = await web.post("/accreditation/aaaa0001", data={"decision": "approve"})

    assert queue.status_code == 200
    assert "Submitted (3)" in queue.text and "Ada Example" in queue.text
    assert "@example.org" not in queue.text  # no e-mail reaches a page
    assert "Possible duplicates" in queue.text and "aaaa0001</code>" in queue.text
    assert "Republic of Korea</strong> — 0 approved of 1" in queue.text
    assert approved.status_code == 200 and "Ada Example approved." in approved.text
    assert "Submitted (2)" in approved.text and "Approved (1)" in approved.text
    assert registration.calls == ["aaaa0001 approve"]


async def test_a_rejection_needs_a_reason_and_a_refusal_is_shown_inline(
    console: Console, web: httpx.AsyncClient, log: Log, registration: FakeRegistration
) -> None:
    await applied(console, "REGISTRATION", await log.append(registered("bbbb0001", "Cy Late")))
    await signed_in(web)

    no_reason = await web.post("/accreditation/bbbb0001", data={"decision": "reject"})
    rejected = await web.post(
        "/accreditation/bbbb0001", data={"decision": "reject", "reason": "not eligible"}
    )
    registration.refuse_with = "participant bbbb0001 is rejected; approve or withdraw"
    refused = await web.post(
        "/accreditation/bbbb0001", data={"decision": "approve", "status": "rejected"}
    )

    assert no_reason.status_code == 422 and "A rejection needs a reason." in no_reason.text
    assert rejected.status_code == 200 and "Cy Late rejected." in rejected.text
    assert refused.status_code == 409
    assert "Registration refused: participant bbbb0001 is rejected" in refused.text
    assert "not eligible" in refused.text  # the rejection's reason, in the rejected queue
    assert registration.calls == ["bbbb0001 reject", "bbbb0001 approve"]


async def test_workshops_show_places_taken_the_waitlist_and_promotions(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    start = datetime(2025, 6, 24, 14, 30, tzinfo=SAMARKAND)
    sequence = await log.append(
        SessionTermsRecorded(
            session_id="ws5-s1",
            edition_id="unpsf-2025",
            kind="workshop_session",
            title="Foresight and Creativity",
            room_id="ws5",
            starts_at=start,
            ends_at=start + timedelta(hours=1, minutes=30),
            capacity=2,
        ),
        Enrolled(session_id="ws5-s1", participant_id="p1", claim=1),
        Enrolled(session_id="ws5-s1", participant_id="p2", claim=1),
        Waitlisted(session_id="ws5-s1", participant_id="p3", claim=1, position=1),
        Waitlisted(session_id="ws5-s1", participant_id="p4", claim=1, position=2),
        Unenrolled(session_id="ws5-s1", participant_id="p1", claim=1),
        PromotedFromWaitlist(session_id="ws5-s1", participant_id="p3", claim=1),
    )
    await applied(console, "REGISTRATION", sequence)
    await signed_in(web)

    html = (await web.get("/workshops")).text

    assert "Foresight and Creativity" in html
    assert "2 of 2 places taken, 1 waiting" in html
    assert 'aria-valuenow="2"' in html and "width: 100%" in html
    assert "1 promoted from the waitlist" in html


async def test_operations_show_the_streams_and_the_consoles_projections(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "REGISTRATION", await log.append(registered("cccc0001", "Di Ops")))
    await signed_in(web)

    html = (await web.get("/operations")).text

    assert 'data-stream="REGISTRATION"><th scope="row">REGISTRATION</th><td>1</td>' in html
    for projection in ("programme", "declaration", "participants", "workshops"):
        assert f'<th scope="row">{projection}</th>' in html
    assert "None parked." in html
    assert html.count("Does not answer.") == 4  # no other service runs in this test


async def test_operations_show_each_streams_audit_chain_head_as_an_export_computes_it(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "REGISTRATION", await log.append(registered("cccc0002", "Di Chain")))
    await signed_in(web)

    first = (await web.get("/operations")).text
    exported = await export_log(console.nc, "REGISTRATION", io.StringIO())
    await log.append(registered("cccc0003", "Di Later"))
    second = (await web.get("/operations")).text
    grown = await export_log(console.nc, "REGISTRATION", io.StringIO())

    assert f'<code data-head="REGISTRATION">{exported.head}</code>' in first
    assert grown.head != exported.head
    assert f'<code data-head="REGISTRATION">{grown.head}</code>' in second
