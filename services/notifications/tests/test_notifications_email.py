"""Each rule's mail arrives once, in the participant's language, with a parseable .ics for
session changes; a digest of several changes to one session is one mail."""

from __future__ import annotations

import ssl
from datetime import datetime, timedelta, timezone
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING

import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword
from icalendar import Calendar

from agora_events.contracts.agenda import PersonAssigned
from agora_events.contracts.declarations import DeclarationSigned, SignatureWithdrawn
from agora_events.contracts.registration import (
    AccreditationApproved,
    AccreditationRejected,
    Badge,
    BadgeIssued,
    PromotedFromWaitlist,
    Waitlisted,
)

if TYPE_CHECKING:
    from tests.conftest import Clock, Inbox, ServiceStarter, Upstream

SHA = "0" * 64
SAMARKAND = timezone(timedelta(hours=5))


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 6, 24, hour, minute, tzinfo=SAMARKAND)


def text_of(message: Message) -> str:
    part = message.get_body(preferencelist=("plain",)) if hasattr(message, "get_body") else None
    source = part or message
    if source.is_multipart():
        source = next(p for p in source.walk() if p.get_content_type() == "text/plain")
    payload = source.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(source.get_content_charset() or "utf-8")


def calendar_of(message: Message) -> Calendar:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one iCalendar attachment"
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return Calendar.from_ical(payload)


async def test_a_registration_is_acknowledged_once_in_english_by_default(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service() as service:
        participant = await upstream.participant()
        [mail] = await inbox.wait_for(1, "participant.1@example.org")
        assert mail["Subject"] == "Your registration was received"
        assert "Dear Participant 1" in text_of(mail)
        assert mail["Content-Language"] == "en"
        [notice] = await service.settled(1, recipient=participant)
        assert mail["Message-ID"] == f"<{notice.notice_id}@notifications.agora>"
        assert notice.status == "delivered"
    assert len(inbox.messages) == 1


async def test_a_french_speaking_participant_is_written_to_in_french(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service():
        participant = await upstream.participant(language="fr-FR")
        await upstream.append(
            AccreditationApproved(
                participant_id=participant,
                badge=Badge(badge_number="B-0042", issue=1, category="delegate", delegation="UZB"),
            )
        )
        mails = await inbox.wait_for(2, "participant.1@example.org")
    subjects = sorted(m["Subject"] for m in mails)
    assert subjects == ["Votre accréditation est approuvée", "Votre inscription a été reçue"]
    approved = next(m for m in mails if "approuvée" in m["Subject"])
    assert "B-0042" in text_of(approved)
    assert approved["Content-Language"] == "fr"


async def test_an_approval_recorded_before_badges_travelled_with_it_is_told_with_the_badge_issued(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service() as service:
        participant = await upstream.participant()
        await upstream.append(
            AccreditationApproved(participant_id=participant),
            BadgeIssued(
                participant_id=participant,
                badge_number="B-0007",
                issue=1,
                category="delegate",
                delegation="UZB",
            ),
        )
        await service.settled(2, recipient=participant)
    approvals = [m for m in inbox.messages if m["Subject"] == "Your accreditation is approved"]
    assert len(approvals) == 1
    assert "B-0007" in text_of(approvals[0])


async def test_a_rejection_gives_its_reason(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service():
        participant = await upstream.participant()
        await upstream.append(
            AccreditationRejected(participant_id=participant, reason="no nomination letter")
        )
        mails = await inbox.wait_for(2, "participant.1@example.org")
    rejected = next(m for m in mails if "not approved" in m["Subject"])
    assert "Reason: no nomination letter" in text_of(rejected)


async def test_the_waitlisted_hear_their_position_and_the_promoted_their_place(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service() as service:
        await upstream.edition()
        await upstream.session("ws5-s1")
        participant = await upstream.participant()
        await upstream.claim(participant, "ws5-s1")
        await upstream.append(
            Waitlisted(session_id="ws5-s1", participant_id=participant, claim=1, position=3)
        )
        await upstream.append(
            PromotedFromWaitlist(session_id="ws5-s1", participant_id=participant, claim=1)
        )
        await service.settled(3, recipient=participant)
    subjects = {m["Subject"]: m for m in inbox.to("participant.1@example.org")}
    waitlisted = subjects["You are on the waitlist: Foresight in Public Service"]
    assert "number 3 on its waitlist" in text_of(waitlisted)
    promoted = subjects["You have a place: Foresight in Public Service"]
    assert "2025-06-24 14:30\u201316:00 (Asia/Samarkand)" in text_of(promoted)
    assert "Hall A" in text_of(promoted)


async def test_a_moved_session_sends_an_invitation_with_the_agenda_uid_and_a_higher_sequence(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service() as service:
        await upstream.edition()
        await upstream.session("ws5-s1")
        participant = await upstream.participant()
        await upstream.claim(participant, "ws5-s1")
        await service.settled(1, recipient=participant)
        first = await upstream.move("ws5-s1", ("hall-a", at(14, 30)), ("hall-b", at(16, 30)))
        assert first
        await service.settled(2, recipient=participant)
        await upstream.move("ws5-s1", ("hall-b", at(16, 30)), ("hall-b", at(17)))
        await service.settled(3, recipient=participant)
    moved = [m for m in inbox.messages if m["Subject"] == "Changed: Foresight in Public Service"]
    assert len(moved) == 2
    events = [calendar_of(m) for m in moved]
    for calendar in events:
        assert str(calendar["method"]) == "REQUEST"
    sessions = [next(iter(c.walk("VEVENT"))) for c in events]
    assert {str(s["uid"]) for s in sessions} == {"ws5-s1@agenda.agora"}
    assert [s.decoded("sequence") for s in sessions] == [1, 2]
    assert sessions[1].decoded("dtstart") == at(17)
    assert "Hall B" in str(sessions[1]["location"])
    body = text_of(moved[0])
    assert "moved from 2025-06-24 14:30\u201316:00 (Asia/Samarkand) (Hall A)" in body


async def test_a_cancelled_session_sends_a_cancellation_for_the_same_uid(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service() as service:
        await upstream.edition()
        await upstream.session("ws5-s1")
        participant = await upstream.participant(language="fr")
        await upstream.claim(participant, "ws5-s1")
        await upstream.cancel("ws5-s1", "la salle est fermée")
        await service.settled(2, recipient=participant)
    [cancelled] = [m for m in inbox.messages if m["Subject"].startswith("Annulé")]
    calendar = calendar_of(cancelled)
    assert str(calendar["method"]) == "CANCEL"
    [session] = list(calendar.walk("VEVENT"))
    assert str(session["uid"]) == "ws5-s1@agenda.agora"
    assert session.decoded("sequence") == 1
    assert "annulé : la salle est fermée" in text_of(cancelled)


async def test_three_moves_within_the_window_become_one_mail_with_the_final_state(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox, clock: Clock
) -> None:
    async with start_service(digest_window=600) as service:
        await upstream.edition()
        await upstream.session("ws5-s1")
        participant = await upstream.participant()
        await upstream.claim(participant, "ws5-s1")
        await service.settled(1, recipient=participant)
        clock.hold()
        await upstream.move("ws5-s1", ("hall-a", at(14, 30)), ("hall-b", at(15)))
        await upstream.move("ws5-s1", ("hall-b", at(15)), ("hall-b", at(16)))
        await upstream.move("ws5-s1", ("hall-b", at(16)), ("hall-a", at(17)))
        await service.wait_for_notices(3, rule="session.moved")
        clock.advance(700)
        service.tick()
        notices = await service.settled(3, rule="session.moved")
    assert {n.status for n in notices} == {"delivered"}
    moved = [m for m in inbox.messages if m["Subject"].startswith("Changed")]
    assert len(moved) == 1
    body = text_of(moved[0])
    assert body.count("- moved from") == 3
    assert "When: 2025-06-24 17:00\u201318:30 (Asia/Samarkand)" in body
    [session] = list(calendar_of(moved[0]).walk("VEVENT"))
    assert session.decoded("sequence") == 3
    assert moved[0]["Message-ID"] == f"<{notices[0].notice_id}@notifications.agora>"


async def test_organisers_hear_of_a_signature_and_of_its_withdrawal(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service():
        await upstream.append(
            DeclarationSigned(
                state="UZB",
                declaration_id="samarkand-2025",
                participant_id="p0000009",
                signatory_name="A. Minister",
                capacity="minister",
                language="en",
                text_sha256=SHA,
                signed_at=at(10),
            )
        )
        await upstream.append(
            SignatureWithdrawn(
                state="UZB",
                declaration_id="samarkand-2025",
                signed_at=at(10),
                withdrawn_at=at(12),
                reason="signed in error",
            )
        )
        mails = await inbox.wait_for(2, "organisers@forum.example")
    subjects = sorted(m["Subject"] for m in mails)
    assert subjects == [
        "UZB signed samarkand-2025",
        "UZB withdrew its signature of samarkand-2025",
    ]


async def test_a_speaker_assigned_to_a_moved_session_hears_of_it_too(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    async with start_service() as service:
        await upstream.edition()
        await upstream.session("plenary-1")
        speaker = await upstream.participant()
        await upstream.append(
            PersonAssigned(
                session_id="plenary-1",
                edition_id="unpsf-2025",
                person_id=speaker,
                name="Participant 1",
                role="speaker",
            )
        )
        await upstream.move("plenary-1", ("hall-a", at(14, 30)), ("hall-a", at(15)))
        await service.settled(2, recipient=speaker)
    moved = [m for m in inbox.to("participant.1@example.org") if m["Subject"].startswith("Changed")]
    assert len(moved) == 1
    [session] = list(calendar_of(moved[0]).walk("VEVENT"))
    # Assigning the speaker was a change to the session too, as the agenda counts them.
    assert session.decoded("sequence") == 2


async def test_mail_goes_through_a_relay_that_requires_starttls_and_a_login(
    start_service: ServiceStarter, upstream: Upstream, tmp_path: Path, smtp_server: type[Inbox]
) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_tls)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    logins: list[bytes] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, auth: object
    ) -> AuthResult:
        assert isinstance(auth, LoginPassword)
        logins.append(auth.login)
        return AuthResult(success=auth.login == b"agora" and auth.password == b"relay-secret")

    relay = smtp_server()
    relay.start(
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    try:
        async with start_service(
            smtp_port=relay.port,
            smtp_starttls=True,
            smtp_username="agora",
            smtp_password="relay-secret",
            smtp_ca_file=str(ca_file),
        ):
            await upstream.participant()
            [mail] = await relay.wait_for(1)
    finally:
        relay.stop()
    assert mail["Subject"] == "Your registration was received"
    assert logins == [b"agora"]
