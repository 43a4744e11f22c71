"""The rules of registration, given/when/then on the pure deciders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    RoomAdded,
    RoomCapacityChanged,
    SessionCancelled,
    SessionDetailsChanged,
    SessionKind,
    SessionMoved,
    SessionScheduled,
)
from agora_events.contracts.registration import (
    AccreditationApproved,
    AccreditationRejected,
    Badge,
    BadgeIssued,
    CheckedIn,
    CheckedOut,
    ClaimRef,
    ClaimRescheduled,
    ContactDetailsAmended,
    Enrolled,
    EnrolmentClosed,
    ParticipantReclassified,
    ParticipantRegistered,
    ParticipantWithdrew,
    PlaceClaimed,
    PlaceRef,
    PlaceReleased,
    PromotedFromWaitlist,
    SessionTermsRecorded,
    Unenrolled,
    Waitlisted,
)
from agora_events.decider import InvalidCommand, InvariantViolated, NotFound
from agora_events.testing import ForeignEvent, Scenario, given
from agora_registration.domain import (
    Amend,
    Approve,
    CheckIn,
    CheckOut,
    ClaimPlace,
    Enrol,
    EnrolmentCommand,
    EnrolmentEvent,
    Participant,
    ParticipantCommand,
    ParticipantEvent,
    Register,
    Reject,
    ReleasePlace,
    RescheduleClaim,
    SessionEnrolment,
    SessionTerms,
    SyncSession,
    Unenrol,
    Window,
    Withdraw,
    agenda_sessions,
    badge_number,
    enrolment_decider,
    participant_decider,
    participant_id_from_badge,
    participant_id_from_bits,
    room_capacities,
    sessions_in_room,
    sync_command,
)

SAMARKAND = timezone(timedelta(hours=5))
ANA = "ana00001"
BO = "b0000002"
CY = "c0000003"
WS = "ws5-s1"


def at(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=SAMARKAND)


MORNING = Window(at(9), at(10, 30))
LATE_MORNING = Window(at(10), at(12))
AFTERNOON = Window(at(14), at(15, 30))


def registered(pid: str = ANA, **overrides: object) -> ParticipantRegistered:
    fields: dict[str, object] = {
        "participant_id": pid,
        "name": "Ana Example",
        "email": "ana@example.org",
        "organisation": "Ministry of Public Service",
        "category": "minister",
        "delegation": "UZB",
    }
    return ParticipantRegistered.model_validate(fields | overrides)


def approved(pid: str = ANA, issue: int = 1) -> list[ParticipantEvent]:
    badge = Badge(
        badge_number=badge_number(pid), issue=issue, category="minister", delegation="UZB"
    )
    return [AccreditationApproved(participant_id=pid, badge=badge)]


def approved_as_recorded_before(pid: str = ANA, issue: int = 1) -> list[ParticipantEvent]:
    """An approval as it was recorded before it carried the badge: two events."""
    return [
        AccreditationApproved(participant_id=pid),
        BadgeIssued(
            participant_id=pid,
            badge_number=badge_number(pid),
            issue=issue,
            category="minister",
            delegation="UZB",
        ),
    ]


def claimed(session: str, window: Window, claim: int = 1, pid: str = ANA) -> PlaceClaimed:
    return PlaceClaimed(
        participant_id=pid,
        session_id=session,
        claim=claim,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
    )


def terms(
    capacity: int = 2, window: Window = MORNING, kind: SessionKind = "workshop_session"
) -> SessionTermsRecorded:
    return SessionTermsRecorded(
        session_id=WS,
        edition_id="unpsf-2025",
        kind=kind,
        title="Workshop 5, session 1",
        room_id="workshop-room-5",
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        capacity=capacity,
    )


def session_terms(capacity: int = 2, window: Window = MORNING) -> SessionTerms:
    return SessionTerms(
        edition_id="unpsf-2025",
        kind="workshop_session",
        title="Workshop 5, session 1",
        room_id="workshop-room-5",
        window=window,
        capacity=capacity,
    )


ParticipantScenario = Scenario[Participant, ParticipantCommand, DomainEvent]
SessionScenario = Scenario[SessionEnrolment, EnrolmentCommand, DomainEvent]


def participant(*history: ParticipantEvent) -> ParticipantScenario:
    return given(participant_decider, *history)


def session(*history: EnrolmentEvent) -> SessionScenario:
    return given(enrolment_decider, *history)


# -- registering ---------------------------------------------------------------------------


def test_registers_a_minister_of_a_member_state_for_review() -> None:
    participant().when(
        Register(ANA, " Ana Example ", "ana@example.org", "minister", "uzb", "Ministry")
    ).then(
        ParticipantRegistered(
            participant_id=ANA,
            name="Ana Example",
            email="ana@example.org",
            organisation="Ministry",
            category="minister",
            delegation="UZB",
        )
    )


def test_registers_un_staff_without_a_delegation() -> None:
    events = participant().when(Register(ANA, "Ana", "ana@un.org", "un_staff")).then_yields()
    assert events[0].delegation is None  # type: ignore[attr-defined]


def test_accepts_an_observer_state_as_delegation() -> None:
    events = (
        participant().when(Register(ANA, "Ana", "a@example.org", "delegate", "VAT")).then_yields()
    )
    assert events[0].delegation == "VAT"  # type: ignore[attr-defined]


def test_refuses_an_unknown_country_code_and_suggests_close_names() -> None:
    participant().when(Register(ANA, "Ana", "a@example.org", "minister", "UZK")).then_rejects(
        InvalidCommand, "did you mean UZB (Uzbekistan)"
    )


def test_refuses_a_country_name_in_place_of_its_code_and_names_the_code() -> None:
    participant().when(
        Register(ANA, "Ana", "a@example.org", "minister", "Uzbekistan")
    ).then_rejects(InvalidCommand, "UZB")


def test_refuses_a_minister_without_a_delegation() -> None:
    participant().when(Register(ANA, "Ana", "a@example.org", "minister")).then_rejects(
        InvalidCommand, "represents a State"
    )


def test_refuses_an_unknown_category() -> None:
    participant().when(Register(ANA, "Ana", "a@example.org", "king", "UZB")).then_rejects(
        InvalidCommand, "unknown category 'king'"
    )


def test_refuses_an_email_without_a_domain() -> None:
    participant().when(Register(ANA, "Ana", "ana@", "press")).then_rejects(
        InvalidCommand, "not an email address"
    )


def test_refuses_an_empty_name() -> None:
    participant().when(Register(ANA, "  ", "a@example.org", "press")).then_rejects(
        InvalidCommand, "name"
    )


def test_refuses_to_register_the_same_participant_twice() -> None:
    participant(registered()).when(Register(ANA, "Ana", "a@example.org", "press")).then_rejects(
        InvariantViolated, "already registered"
    )


def test_refuses_commands_for_an_unknown_participant() -> None:
    participant().when(Approve(ANA)).then_rejects(NotFound, f"no participant {ANA}")


# -- accreditation -------------------------------------------------------------------------


def test_approval_issues_a_badge_numbered_after_the_participant() -> None:
    participant(registered()).when(Approve(ANA)).then(*approved())


def test_refuses_to_approve_twice() -> None:
    participant(registered(), *approved()).when(Approve(ANA)).then_rejects(
        InvariantViolated, "already approved"
    )


def test_an_organiser_may_overturn_a_rejection() -> None:
    history: list[ParticipantEvent] = [
        registered(),
        AccreditationRejected(participant_id=ANA, reason="no invitation"),
    ]
    participant(*history).when(Approve(ANA)).then(*approved())


def test_rejection_needs_a_reason() -> None:
    participant(registered()).when(Reject(ANA, " ")).then_rejects(InvalidCommand, "reason")


def test_revoking_an_approval_gives_up_the_places_held() -> None:
    history = [registered(), *approved(), claimed(WS, MORNING)]
    participant(*history).when(Reject(ANA, "credentials withdrawn by the mission")).then(
        AccreditationRejected(
            participant_id=ANA,
            reason="credentials withdrawn by the mission",
            released=(ClaimRef(session_id=WS, claim=1),),
        )
    )


def test_withdrawal_gives_up_the_places_held() -> None:
    history = [registered(), *approved(), claimed(WS, MORNING), claimed("ws6-s2", AFTERNOON, 2)]
    participant(*history).when(Withdraw(ANA, "travel cancelled")).then(
        ParticipantWithdrew(
            participant_id=ANA,
            reason="travel cancelled",
            released=(ClaimRef(session_id=WS, claim=1), ClaimRef(session_id="ws6-s2", claim=2)),
        )
    )


def test_refuses_a_second_withdrawal() -> None:
    participant(registered(), ParticipantWithdrew(participant_id=ANA)).when(
        Withdraw(ANA)
    ).then_rejects(InvariantViolated, "already withdrawn")


def test_amending_contact_details_keeps_the_approval() -> None:
    history = [registered(), *approved()]
    state = (
        participant(*history)
        .when(Amend(ANA, email="ana.new@example.org", organisation="Cabinet Office"))
        .then_state()
    )
    assert state.status == "approved"
    assert state.email == "ana.new@example.org"


def test_amending_records_only_what_changed() -> None:
    participant(registered()).when(
        Amend(ANA, name="Ana Example", email="ana@example.org", title="Minister")
    ).then(ContactDetailsAmended(participant_id=ANA, title="Minister"))


def test_amending_nothing_new_changes_nothing() -> None:
    participant(registered()).when(Amend(ANA, name="Ana Example")).then()


def test_changing_the_category_sends_an_approved_participant_back_to_review() -> None:
    outcome = participant(registered(), *approved()).when(Amend(ANA, category="head_of_delegation"))
    outcome.then(
        ParticipantReclassified(
            participant_id=ANA,
            category="head_of_delegation",
            delegation="UZB",
            previous_status="approved",
        )
    )
    assert outcome.then_state().status == "submitted"


def test_changing_the_delegation_sends_it_back_to_review() -> None:
    state = participant(registered(), *approved()).when(Amend(ANA, delegation="kaz")).then_state()
    assert (state.status, state.delegation) == ("submitted", "KAZ")


def test_re_approval_reissues_the_same_badge_number() -> None:
    history = [
        registered(),
        *approved(),
        ParticipantReclassified(
            participant_id=ANA, category="minister", delegation="UZB", previous_status="approved"
        ),
    ]
    (event,) = participant(*history).when(Approve(ANA)).then_yields()
    assert isinstance(event, AccreditationApproved)
    assert event.badge is not None
    assert (event.badge.badge_number, event.badge.issue) == (badge_number(ANA), 2)


def test_re_approval_counts_the_badges_of_approvals_recorded_in_two_events() -> None:
    history = [
        registered(),
        *approved_as_recorded_before(),
        ParticipantReclassified(
            participant_id=ANA, category="minister", delegation="UZB", previous_status="approved"
        ),
    ]
    participant(*history).when(Approve(ANA)).then(*approved(issue=2))


def test_refuses_to_amend_a_withdrawn_participant() -> None:
    participant(registered(), ParticipantWithdrew(participant_id=ANA)).when(
        Amend(ANA, name="Someone")
    ).then_rejects(InvariantViolated, "withdrawn")


# -- badges --------------------------------------------------------------------------------


def test_badge_numbers_round_trip_to_the_participant() -> None:
    pid = participant_id_from_bits(0xA5A5A5A5A5)
    assert participant_id_from_badge(badge_number(pid)) == pid
    assert participant_id_from_badge(badge_number(pid).replace("-", "").lower()) == pid


def test_distinct_participants_get_distinct_badge_numbers() -> None:
    ids = {participant_id_from_bits(n * 7919) for n in range(5000)}
    assert len({badge_number(pid) for pid in ids}) == len(ids)


def test_refuses_a_badge_number_with_a_typo() -> None:
    number = badge_number(ANA)
    slipped = ("1" if number[0] != "1" else "2") + number[1:]
    with pytest.raises(InvalidCommand, match="typo"):
        participant_id_from_badge(slipped)


# -- check-in ------------------------------------------------------------------------------


def test_checks_in_an_approved_participant() -> None:
    participant(registered(), *approved()).when(CheckIn(ANA, "Gate A", at(8, 40))).then(
        CheckedIn(participant_id=ANA, gate="Gate A", at=at(8, 40))
    )


def test_refuses_check_in_of_a_participant_awaiting_review() -> None:
    participant(registered()).when(CheckIn(ANA, "Gate A", at(8))).then_rejects(
        InvariantViolated, "awaits an organiser's review"
    )


def test_refuses_check_in_of_a_withdrawn_participant() -> None:
    history = [registered(), *approved(), ParticipantWithdrew(participant_id=ANA)]
    participant(*history).when(CheckIn(ANA, "Gate A", at(8))).then_rejects(
        InvariantViolated, "they withdrew"
    )


def test_refuses_check_in_of_a_rejected_participant_and_gives_the_reason() -> None:
    history: list[ParticipantEvent] = [
        registered(),
        AccreditationRejected(participant_id=ANA, reason="no invitation"),
    ]
    participant(*history).when(CheckIn(ANA, "Gate A", at(8))).then_rejects(
        InvariantViolated, "rejected (no invitation)"
    )


def test_refuses_a_second_check_in_without_a_check_out() -> None:
    history = [registered(), *approved(), CheckedIn(participant_id=ANA, gate="A", at=at(8))]
    participant(*history).when(CheckIn(ANA, "B", at(9))).then_rejects(
        InvariantViolated, "already checked in (gate A"
    )


def test_checks_in_again_after_checking_out() -> None:
    history = [
        registered(),
        *approved(),
        CheckedIn(participant_id=ANA, gate="A", at=at(8)),
        CheckedOut(participant_id=ANA, gate="A", at=at(12)),
    ]
    participant(*history).when(CheckIn(ANA, "B", at(13))).then(
        CheckedIn(participant_id=ANA, gate="B", at=at(13))
    )


def test_refuses_check_out_of_someone_not_inside() -> None:
    participant(registered(), *approved()).when(CheckOut(ANA, "A", at(12))).then_rejects(
        InvariantViolated, "not checked in"
    )


def test_refuses_a_check_out_before_the_check_in() -> None:
    history = [registered(), *approved(), CheckedIn(participant_id=ANA, gate="A", at=at(8))]
    participant(*history).when(CheckOut(ANA, "A", at(7))).then_rejects(InvalidCommand, "before")


def test_refuses_a_check_in_time_without_an_offset() -> None:
    participant(registered(), *approved()).when(
        CheckIn(ANA, "A", datetime(2025, 6, 24, 8))
    ).then_rejects(InvalidCommand, "UTC offset")


def test_refuses_check_in_without_a_gate() -> None:
    participant(registered(), *approved()).when(CheckIn(ANA, " ", at(8))).then_rejects(
        InvalidCommand, "gate"
    )


# -- claims (the participant's side of enrolment) ------------------------------------------


def test_claims_the_time_of_a_session() -> None:
    participant(registered(), *approved()).when(ClaimPlace(ANA, WS, MORNING)).then(
        claimed(WS, MORNING)
    )


def test_refuses_enrolment_of_a_participant_awaiting_review() -> None:
    participant(registered()).when(ClaimPlace(ANA, WS, MORNING)).then_rejects(
        InvariantViolated, "cannot enrol in a workshop: their accreditation awaits"
    )


def test_refuses_enrolling_in_two_sessions_that_overlap() -> None:
    history = [registered(), *approved(), claimed(WS, MORNING)]
    participant(*history).when(ClaimPlace(ANA, "ws6-s1", LATE_MORNING)).then_rejects(
        InvariantViolated, f"overlaps session {WS}"
    )


def test_sessions_that_merely_touch_do_not_overlap() -> None:
    history = [registered(), *approved(), claimed(WS, MORNING)]
    participant(*history).when(ClaimPlace(ANA, "ws6-s1", Window(at(10, 30), at(11)))).then(
        claimed("ws6-s1", Window(at(10, 30), at(11)), claim=2)
    )


def test_claiming_a_held_session_again_changes_nothing() -> None:
    history = [registered(), *approved(), claimed(WS, MORNING)]
    participant(*history).when(ClaimPlace(ANA, WS, MORNING)).then()


def test_claim_numbers_are_never_reused() -> None:
    history = [
        registered(),
        *approved(),
        claimed(WS, MORNING),
        PlaceReleased(participant_id=ANA, session_id=WS, claim=1),
    ]
    participant(*history).when(ClaimPlace(ANA, WS, MORNING)).then(claimed(WS, MORNING, 2))


def test_a_released_place_frees_its_time() -> None:
    history = [
        registered(),
        *approved(),
        claimed(WS, MORNING),
        PlaceReleased(participant_id=ANA, session_id=WS, claim=1),
    ]
    participant(*history).when(ClaimPlace(ANA, "ws6-s1", LATE_MORNING)).then(
        claimed("ws6-s1", LATE_MORNING, 2)
    )


def test_a_release_for_an_old_claim_leaves_the_new_one() -> None:
    history = [
        registered(),
        *approved(),
        claimed(WS, MORNING),
        PlaceReleased(participant_id=ANA, session_id=WS, claim=1),
        claimed(WS, MORNING, 2),
    ]
    participant(*history).when(ReleasePlace(ANA, WS, 1)).then()


def test_a_moved_session_moves_the_claim() -> None:
    history = [registered(), *approved(), claimed(WS, MORNING)]
    participant(*history).when(RescheduleClaim(ANA, WS, 1, AFTERNOON)).then(
        ClaimRescheduled(
            participant_id=ANA,
            session_id=WS,
            claim=1,
            starts_at=AFTERNOON.starts_at,
            ends_at=AFTERNOON.ends_at,
        )
    )


# -- the session's roster and waitlist -----------------------------------------------------


def test_enrols_while_places_are_free() -> None:
    session(terms()).when(Enrol(WS, ANA, 1)).then(
        Enrolled(session_id=WS, participant_id=ANA, claim=1)
    )


def test_a_full_session_puts_newcomers_on_the_waitlist_in_order() -> None:
    history: list[EnrolmentEvent] = [
        terms(capacity=1),
        Enrolled(session_id=WS, participant_id=ANA, claim=1),
        Waitlisted(session_id=WS, participant_id=BO, claim=1, position=1),
    ]
    session(*history).when(Enrol(WS, CY, 3)).then(
        Waitlisted(session_id=WS, participant_id=CY, claim=3, position=2)
    )


def test_refuses_double_enrolment() -> None:
    history: list[EnrolmentEvent] = [terms(), Enrolled(session_id=WS, participant_id=ANA, claim=1)]
    session(*history).when(Enrol(WS, ANA, 1)).then_rejects(InvariantViolated, "already enrolled")


def test_refuses_to_waitlist_someone_twice_and_tells_their_position() -> None:
    history: list[EnrolmentEvent] = [
        terms(capacity=1),
        Enrolled(session_id=WS, participant_id=ANA, claim=1),
        Waitlisted(session_id=WS, participant_id=BO, claim=1, position=1),
    ]
    session(*history).when(Enrol(WS, BO, 1)).then_rejects(InvariantViolated, "position 1")


def test_refuses_enrolment_in_a_session_the_agenda_never_announced() -> None:
    session().when(Enrol(WS, ANA, 1)).then_rejects(NotFound, "has not heard of it")


def test_refuses_enrolment_in_a_cancelled_session() -> None:
    history: list[EnrolmentEvent] = [terms(), EnrolmentClosed(session_id=WS, reason="speaker ill")]
    session(*history).when(Enrol(WS, ANA, 1)).then_rejects(InvariantViolated, "speaker ill")


def test_refuses_enrolment_in_a_session_that_is_no_longer_a_workshop() -> None:
    session(terms(kind="plenary")).when(Enrol(WS, ANA, 1)).then_rejects(
        InvariantViolated, "only workshop sessions"
    )


def test_leaving_gives_the_place_to_the_first_on_the_waitlist() -> None:
    history: list[EnrolmentEvent] = [
        terms(capacity=1),
        Enrolled(session_id=WS, participant_id=ANA, claim=1),
        Waitlisted(session_id=WS, participant_id=BO, claim=4, position=1),
        Waitlisted(session_id=WS, participant_id=CY, claim=2, position=2),
    ]
    session(*history).when(Unenrol(WS, ANA, 1, "withdrew")).then(
        Unenrolled(session_id=WS, participant_id=ANA, claim=1, reason="withdrew"),
        PromotedFromWaitlist(session_id=WS, participant_id=BO, claim=4),
    )


def test_leaving_the_waitlist_promotes_nobody() -> None:
    history: list[EnrolmentEvent] = [
        terms(capacity=1),
        Enrolled(session_id=WS, participant_id=ANA, claim=1),
        Waitlisted(session_id=WS, participant_id=BO, claim=1, position=1),
    ]
    session(*history).when(Unenrol(WS, BO, 1)).then(
        Unenrolled(session_id=WS, participant_id=BO, claim=1, from_waitlist=True)
    )


def test_a_late_release_of_an_old_claim_keeps_the_newer_place() -> None:
    history: list[EnrolmentEvent] = [terms(), Enrolled(session_id=WS, participant_id=ANA, claim=2)]
    session(*history).when(Unenrol(WS, ANA, 1)).then()


def test_leaving_twice_changes_nothing_the_second_time() -> None:
    history: list[EnrolmentEvent] = [
        terms(),
        Enrolled(session_id=WS, participant_id=ANA, claim=1),
        Unenrolled(session_id=WS, participant_id=ANA, claim=1),
    ]
    session(*history).when(Unenrol(WS, ANA, 1)).then()


def test_a_larger_capacity_promotes_the_waitlist_in_order() -> None:
    history: list[EnrolmentEvent] = [
        terms(capacity=1),
        Enrolled(session_id=WS, participant_id=ANA, claim=1),
        Waitlisted(session_id=WS, participant_id=BO, claim=1, position=1),
        Waitlisted(session_id=WS, participant_id=CY, claim=1, position=2),
    ]
    session(*history).when(SyncSession(WS, session_terms(capacity=2))).then(
        terms(capacity=2),
        PromotedFromWaitlist(session_id=WS, participant_id=BO, claim=1),
    )


def test_a_smaller_capacity_keeps_everyone_enrolled_and_fills_no_more() -> None:
    history: list[EnrolmentEvent] = [
        terms(capacity=2),
        Enrolled(session_id=WS, participant_id=ANA, claim=1),
        Enrolled(session_id=WS, participant_id=BO, claim=1),
    ]
    outcome = session(*history).when(SyncSession(WS, session_terms(capacity=1)))
    assert outcome.then_yields() == [terms(capacity=1)]
    state = outcome.then_state()
    assert len(state.roster) == 2
    after_leaving = session(*history, terms(capacity=1)).when(Unenrol(WS, ANA, 1)).then_yields()
    assert not any(isinstance(e, PromotedFromWaitlist) for e in after_leaving)


def test_unchanged_terms_record_nothing() -> None:
    session(terms()).when(SyncSession(WS, session_terms())).then()


def test_ignores_sessions_that_are_not_workshops() -> None:
    plenary = SessionTerms("unpsf-2025", "plenary", "Plenary I", "plenary-hall", MORNING, 900)
    session().when(SyncSession(WS, plenary)).then()


def test_cancellation_closes_the_session_and_releases_everyone() -> None:
    history: list[EnrolmentEvent] = [
        terms(capacity=1),
        Enrolled(session_id=WS, participant_id=ANA, claim=1),
        Waitlisted(session_id=WS, participant_id=BO, claim=3, position=1),
    ]
    session(*history).when(SyncSession(WS, session_terms(), cancelled="room flooded")).then(
        EnrolmentClosed(
            session_id=WS,
            reason="room flooded",
            released=(
                PlaceRef(participant_id=ANA, claim=1),
                PlaceRef(participant_id=BO, claim=3),
            ),
        )
    )


def test_a_participant_event_is_not_enrolment_history() -> None:
    with pytest.raises(ForeignEvent, match="ParticipantRegistered"):
        given(enrolment_decider, registered())


# -- reading the agenda --------------------------------------------------------------------


def scheduled(sid: str = WS, room: str = "r5", capacity: int | None = None) -> SessionScheduled:
    return SessionScheduled(
        session_id=sid,
        edition_id="unpsf-2025",
        kind="workshop_session",
        title="Workshop 5, session 1",
        room_id=room,
        starts_at=MORNING.starts_at,
        ends_at=MORNING.ends_at,
        capacity=capacity,
    )


def test_a_session_takes_its_rooms_capacity_unless_it_sets_its_own() -> None:
    rooms = room_capacities([RoomAdded(room_id="r5", edition_id="e", name="R5", capacity=120)])
    own = agenda_sessions([scheduled(capacity=40)])[WS]
    inherited = agenda_sessions([scheduled()])[WS]
    assert sync_command(own, rooms).terms.capacity == 40  # type: ignore[union-attr]
    assert sync_command(inherited, rooms).terms.capacity == 120  # type: ignore[union-attr]


def test_follows_moves_capacity_changes_and_cancellations() -> None:
    history = [
        scheduled(capacity=40),
        SessionMoved(
            session_id=WS,
            edition_id="unpsf-2025",
            old_room_id="r5",
            new_room_id="r6",
            old_starts_at=MORNING.starts_at,
            old_ends_at=MORNING.ends_at,
            new_starts_at=AFTERNOON.starts_at,
            new_ends_at=AFTERNOON.ends_at,
        ),
        SessionDetailsChanged(session_id=WS, edition_id="unpsf-2025", capacity_cleared=True),
    ]
    rooms = room_capacities(
        [
            RoomAdded(room_id="r6", edition_id="e", name="R6", capacity=60),
            RoomCapacityChanged(room_id="r6", edition_id="e", old_capacity=60, new_capacity=80),
        ]
    )
    command = sync_command(agenda_sessions(history)[WS], rooms)
    assert command is not None
    assert (command.terms.room_id, command.terms.window, command.terms.capacity) == (
        "r6",
        AFTERNOON,
        80,
    )
    cancelled = agenda_sessions(
        [*history, SessionCancelled(session_id=WS, edition_id="unpsf-2025", reason="storm")]
    )
    assert sync_command(cancelled[WS], rooms).cancelled == "storm"  # type: ignore[union-attr]


def test_finds_the_sessions_held_in_a_room() -> None:
    sessions = agenda_sessions([scheduled("a", "r5"), scheduled("b", "r6"), scheduled("c", "r5")])
    assert sessions_in_room(sessions, "r5") == ["a", "c"]
