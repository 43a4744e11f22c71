"""The pure core: notice ids, the retry schedule, the rules and the deciders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agora_events.contracts.agenda import SessionMoved
from agora_events.contracts.notifications import NoticeDecided
from agora_events.contracts.registration import AccreditationApproved, ParticipantRegistered
from agora_events.decider import InvalidCommand, InvariantViolated
from agora_notifications.domain import (
    Audience,
    Decide,
    Person,
    RecordDelivery,
    RecordFailure,
    Requeue,
    RetrySchedule,
    Session,
    Trigger,
    WebhookTarget,
    check_patterns,
    decide_notices,
    language_of,
    notice_decider,
    notice_id,
    subscribes,
)

NOW = datetime(2025, 6, 24, 9, tzinfo=UTC)
ADA = Person("p0000001", "Ada Example", "ada@example.org", "fr-FR")


def trigger(event: object, event_id: str = "e1") -> Trigger:
    assert isinstance(event, ParticipantRegistered | AccreditationApproved | SessionMoved)
    return Trigger(event, event_id, event.meta.type, NOW, {"id": event_id})


def test_one_notice_per_rule_event_and_recipient() -> None:
    first = notice_id("registration.received", "e1", "p0000001")
    assert first == notice_id("registration.received", "e1", "p0000001")
    assert first != notice_id("registration.received", "e2", "p0000001")
    assert first != notice_id("registration.received", "e1", "p0000002")
    assert first != notice_id("webhook", "e1", "p0000001")


def test_the_schedule_doubles_up_to_its_cap_and_gives_up_after_its_attempts() -> None:
    schedule = RetrySchedule(base=5, factor=2, cap=30, attempts=6, jitter=0.2)
    assert [schedule.delay(n, 0.0) for n in range(1, 6)] == [5, 10, 20, 30, 30]
    assert schedule.delay(6, 0.0) is None


def test_jitter_only_shortens_a_wait_by_at_most_its_share() -> None:
    schedule = RetrySchedule(base=10, jitter=0.2)
    assert schedule.delay(1, 0.999) == pytest.approx(8.002)
    assert schedule.delay(1, 0.0) == 10


def test_a_participant_is_written_to_in_their_language_or_else_english() -> None:
    assert language_of("fr-FR") == "fr"
    assert language_of("FR") == "fr"
    assert language_of("de") == "en"
    assert language_of(None) == "en"


def test_an_approval_without_its_badge_decides_no_notice_for_its_badge_follows() -> None:
    approval = AccreditationApproved(participant_id=ADA.participant_id)
    assert decide_notices(trigger(approval), Audience(participant=ADA), timedelta()) == []


def test_a_move_tells_each_holder_after_the_digest_window_under_one_key_per_person() -> None:
    moved = SessionMoved(
        session_id="ws5-s1",
        edition_id="unpsf-2025",
        old_room_id="hall-a",
        new_room_id="hall-b",
        old_starts_at=NOW,
        old_ends_at=NOW + timedelta(hours=1),
        new_starts_at=NOW + timedelta(hours=2),
        new_ends_at=NOW + timedelta(hours=3),
    )
    session = Session(
        "ws5-s1", "Foresight", "Hall B", "Hall A", NOW, NOW, "Asia/Samarkand", "Samarkand", 1
    )
    bob = Person("p0000002", "Bob", "bob@example.org")
    drafts = decide_notices(
        trigger(moved), Audience(session=session, holders=[ADA, bob]), timedelta(minutes=5)
    )
    assert [(d.recipient, d.language, d.digest_key) for d in drafts] == [
        ("p0000001", "fr", "session:ws5-s1:p0000001"),
        ("p0000002", "en", "session:ws5-s1:p0000002"),
    ]
    assert {d.not_before for d in drafts} == {NOW + timedelta(minutes=5)}


def test_endpoints_get_the_events_their_patterns_name() -> None:
    registered = ParticipantRegistered(
        participant_id="p0000001", name="Ada", email="ada@example.org", category="delegate"
    )
    audience = Audience(
        endpoints=[
            WebhookTarget("ep1", ("agora.registration.*",)),
            WebhookTarget("ep2", ("agora.agenda.session.moved.v1",)),
        ]
    )
    drafts = decide_notices(trigger(registered), audience, timedelta())
    assert [(d.rule, d.recipient, d.facts) for d in drafts] == [
        ("webhook", "ep1", {"cloudevent": {"id": "e1"}})
    ]


def test_patterns_are_exact_types_or_prefixes() -> None:
    assert subscribes(("*",), "agora.agenda.session.moved.v1")
    assert not subscribes(("agora.agenda.session.moved.v1",), "agora.agenda.session.moved.v2")
    with pytest.raises(InvalidCommand):
        check_patterns(("agora.*.moved",))
    with pytest.raises(InvalidCommand):
        check_patterns(())


def decision() -> NoticeDecided:
    return NoticeDecided(
        notice_id="n1",
        rule="registration.received",
        trigger_event_id="e1",
        trigger_type="agora.registration.participant.registered.v1",
        recipient="p0000001",
        channel="email",
        address="ada@example.org",
        not_before=NOW,
    )


def test_a_notice_is_decided_once_and_delivered_once() -> None:
    state = notice_decider.fold([decision()])
    assert notice_decider.decide(state, Decide(decision())) == []
    delivered = notice_decider.decide(state, RecordDelivery("n1", 1, "<n1@x>"))
    after = notice_decider.fold(delivered, state)
    assert after.status == "delivered"
    assert notice_decider.decide(after, RecordDelivery("n1", 1, "<n1@x>")) == []
    assert notice_decider.decide(after, RecordFailure("n1", 2, "late", None)) == []


def test_a_failure_without_a_next_attempt_is_a_dead_letter_that_can_be_requeued_once() -> None:
    state = notice_decider.fold([decision()])
    events = notice_decider.decide(state, RecordFailure("n1", 1, "SMTP 550", None))
    dead = notice_decider.fold(events, state)
    assert dead.status == "dead"
    requeued = notice_decider.fold(notice_decider.decide(dead, Requeue("n1")), dead)
    assert (requeued.status, requeued.attempts) == ("pending", 0)
    with pytest.raises(InvariantViolated):
        notice_decider.decide(requeued, Requeue("n1"))
