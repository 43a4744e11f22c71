"""The agenda's rules, given/when/then on the pure decider."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from agora_agenda.domain import (
    AddRoom,
    AssignPerson,
    CancelSession,
    ChangeEditionDetails,
    ChangeRoomCapacity,
    ChangeSessionDetails,
    MoveSession,
    Person,
    PlanEdition,
    PublishSchedule,
    RemovePerson,
    ScheduleSession,
    SessionSnapshot,
    agenda_decider,
    diff,
)
from agora_events.catalogue import catalogue
from agora_events.contracts.agenda import (
    PersonAssigned,
    PersonRemoved,
    SchedulePublished,
    SessionCancelled,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.decider import InvalidCommand, InvariantViolated, NotFound
from agora_events.testing import given

PUBLISHED_AT = datetime(2025, 6, 20, 12, 0, tzinfo=UTC)


# -- a room holds one session at a time ------------------------------------------------------


def test_schedules_a_workshop_session_with_its_panel(build):
    command = build.workshop(people=[build.robyn])
    events = given(agenda_decider, *build.history()).when(command).then_yields()
    scheduled, assigned = events
    assert isinstance(scheduled, SessionScheduled)
    assert scheduled.subject == "agenda.session.ws5-s1.scheduled"
    assert scheduled.starts_at.isoformat() == "2025-06-23T14:30:00+05:00"
    assert assigned == PersonAssigned(
        session_id="ws5-s1",
        edition_id="e25",
        person_id="robyn-bennett",
        name="Robyn Bennett",
        title="Advisor",
        role="moderator",
    )


def test_refuses_a_session_in_a_room_already_taken(build):
    history = build.history(build.workshop("ws5-s1", title="Futures literacy"))
    clash = build.workshop("ws7-s1", start="15:00", end="16:30", workshop=build.ws7)
    rejection = given(agenda_decider, *history).when(clash).then_rejects(InvariantViolated)
    assert rejection.reason == (
        "room 'Workshop Room 5' is taken by 'Workshop 5: Futures literacy' "
        "14:30\u201316:00 on 2025-06-23 (session ws5-s1)"
    )


def test_a_session_may_start_in_a_room_the_moment_the_previous_one_ends(build):
    history = build.history(build.workshop("ws5-s1", start="14:30", end="16:00"))
    after = build.workshop("ws5-s2", start="16:00", end="17:30")
    assert len(given(agenda_decider, *history).when(after).then_yields()) == 1


def test_refuses_a_move_into_a_room_already_taken(build):
    history = build.history(
        build.workshop("ws5-s1"), build.workshop("ws7-s1", room_id="ws-room-7", workshop=build.ws7)
    )
    given(agenda_decider, *history).when(MoveSession("ws7-s1", room_id="ws-room-5")).then_rejects(
        InvariantViolated, "room 'Workshop Room 5' is taken by 'Workshop 5: Futures literacy'"
    )


def test_a_cancelled_session_frees_its_room(build):
    history = build.history(build.workshop("ws5-s1"), CancelSession("ws5-s1", "speaker ill"))
    replacement = build.workshop("ws5-s1b", title="Replacement")
    assert len(given(agenda_decider, *history).when(replacement).then_yields()) == 1


def test_refuses_a_room_of_another_edition(build):
    other = PlanEdition(
        "e24", "Forum 2024", "Incheon", "KOR", date(2024, 6, 24), date(2024, 6, 26), "Asia/Seoul"
    )
    history = build.history(other, AddRoom("room-101", "e24", "Room 101", 80))
    given(agenda_decider, *history).when(build.workshop(room_id="room-101")).then_rejects(
        InvariantViolated, "belongs to edition 'e24'"
    )


# -- a speaker is in one session at a time ---------------------------------------------------


def test_refuses_a_speaker_in_two_sessions_at_once(build):
    history = build.history(build.workshop("ws5-s1", people=[build.sherzod]))
    plenary = ScheduleSession(
        session_id="plenary",
        edition_id="e25",
        kind="plenary",
        title="Plenary: AI",
        room_id="hall",
        starts_at=build.at(23, "15:00"),
        ends_at=build.at(23, "16:00"),
        people=(build.sherzod,),
    )
    given(agenda_decider, *history).when(plenary).then_rejects(
        InvariantViolated,
        "Sherzod Shermatov (sherzod-shermatov) is already in 'Workshop 5: Futures literacy' "
        "14:30\u201316:00 on 2025-06-23",
    )


def test_refuses_to_assign_a_speaker_who_is_elsewhere_at_that_time(build):
    history = build.history(
        build.workshop("ws5-s1", people=[build.robyn]),
        build.workshop("ws7-s1", room_id="ws-room-7", workshop=build.ws7),
    )
    given(agenda_decider, *history).when(AssignPerson("ws7-s1", build.robyn)).then_rejects(
        InvariantViolated, "Robyn Bennett (robyn-bennett) is already in"
    )


def test_refuses_a_move_that_puts_a_speaker_in_two_places(build):
    history = build.history(
        build.workshop("ws5-s1", people=[build.robyn]),
        build.workshop(
            "ws7-s1", room_id="ws-room-7", workshop=build.ws7, start="16:30", end="18:00"
        ),
        AssignPerson("ws7-s1", build.robyn),
    )
    given(agenda_decider, *history).when(
        MoveSession("ws7-s1", starts_at=build.at(23, "15:30"))
    ).then_rejects(InvariantViolated, "Robyn Bennett")


def test_a_speaker_may_chair_back_to_back_sessions(build):
    history = build.history(build.workshop("ws5-s1", people=[build.robyn]))
    next_one = build.workshop(
        "ws7-s1",
        room_id="ws-room-7",
        workshop=build.ws7,
        start="16:00",
        end="17:00",
        people=[build.robyn],
    )
    assert len(given(agenda_decider, *history).when(next_one).then_yields()) == 2


def test_refuses_one_person_twice_on_a_panel(build):
    twice = build.workshop(people=[build.robyn, build.robyn])
    given(agenda_decider, *build.history()).when(twice).then_rejects(InvalidCommand, "listed twice")


# -- a session lies within its edition's dates, in the edition's time zone -------------------


def test_refuses_a_session_after_the_editions_last_day(build):
    late = build.workshop(day=26)
    given(agenda_decider, *build.history()).when(late).then_rejects(
        InvariantViolated, "outside 'Forum 2025' (2025-06-23 to 2025-06-25, Asia/Samarkand)"
    )


def test_judges_the_editions_dates_in_its_own_time_zone(build):
    # 01:00 in Samarkand on the first day is still 22 June in UTC: inside the edition.
    early = build.workshop(day=23, start="01:00", end="02:00")
    assert early.starts_at.astimezone(UTC).date() == date(2025, 6, 22)
    assert len(given(agenda_decider, *build.history()).when(early).then_yields()) == 1
    # 23:30 in Samarkand on the day before is already 22 June 18:30 UTC: outside.
    eve = build.workshop(day=22, start="23:00", end="23:30")
    given(agenda_decider, *build.history()).when(eve).then_rejects(InvariantViolated, "outside")


def test_refuses_a_move_beyond_the_editions_dates(build):
    history = build.history(build.workshop())
    given(agenda_decider, *history).when(
        MoveSession("ws5-s1", starts_at=build.at(25, "23:00"))
    ).then_rejects(InvariantViolated, "outside 'Forum 2025'")


def test_refuses_shortening_an_edition_that_would_strand_its_sessions(build):
    history = build.history(build.workshop(day=25))
    given(agenda_decider, *history).when(
        ChangeEditionDetails("e25", end_date=date(2025, 6, 24))
    ).then_rejects(InvariantViolated, "'Workshop 5: Futures literacy' would run")


# -- a session ends after it starts ----------------------------------------------------------


def test_refuses_a_session_that_ends_before_it_starts(build):
    backwards = build.workshop(start="16:00", end="14:30")
    given(agenda_decider, *build.history()).when(backwards).then_rejects(
        InvalidCommand, "must end after it starts"
    )


def test_refuses_a_new_end_before_the_sessions_start(build):
    history = build.history(build.workshop())
    given(agenda_decider, *history).when(
        MoveSession("ws5-s1", ends_at=build.at(23, "14:00"))
    ).then_rejects(InvariantViolated, "before it starts at 14:30")


def test_refuses_a_time_without_an_offset(build):
    naive = replace(build.workshop(), starts_at=datetime(2025, 6, 23, 14, 30))
    given(agenda_decider, *build.history()).when(naive).then_rejects(
        InvalidCommand, "no UTC offset"
    )


# -- moves, changes and cancellations --------------------------------------------------------


def test_a_move_carries_the_old_and_the_new_time_and_room(build):
    history = build.history(build.workshop())
    move = MoveSession(
        "ws5-s1",
        starts_at=build.at(24, "11:30"),
        ends_at=build.at(24, "13:00"),
        room_id="ws-room-7",
    )
    given(agenda_decider, *history).when(move).then(
        SessionMoved(
            session_id="ws5-s1",
            edition_id="e25",
            old_room_id="ws-room-5",
            new_room_id="ws-room-7",
            old_starts_at=build.at(23, "14:30"),
            old_ends_at=build.at(23, "16:00"),
            new_starts_at=build.at(24, "11:30"),
            new_ends_at=build.at(24, "13:00"),
        )
    )


def test_a_new_start_alone_keeps_the_sessions_length(build):
    history = build.history(build.workshop(start="14:30", end="16:00"))
    [moved] = (
        given(agenda_decider, *history)
        .when(MoveSession("ws5-s1", starts_at=build.at(24, "09:30")))
        .then_yields()
    )
    assert isinstance(moved, SessionMoved)
    assert moved.new_ends_at == build.at(24, "11:00")


def test_moving_a_session_to_where_it_is_changes_nothing(build):
    history = build.history(build.workshop())
    given(agenda_decider, *history).when(
        MoveSession("ws5-s1", starts_at=build.at(23, "14:30"), room_id="ws-room-5")
    ).then()


def test_refuses_to_move_a_cancelled_session(build):
    history = build.history(build.workshop(), CancelSession("ws5-s1", "room flooded"))
    given(agenda_decider, *history).when(MoveSession("ws5-s1", room_id="ws-room-7")).then_rejects(
        InvariantViolated, "is cancelled and cannot be moved"
    )


def test_refuses_to_move_a_session_that_does_not_exist(build):
    given(agenda_decider, *build.history()).when(
        MoveSession("nowhere", room_id="ws-room-7")
    ).then_rejects(NotFound, "no session 'nowhere'")


def test_refuses_a_room_that_does_not_exist(build):
    history = build.history(build.workshop())
    given(agenda_decider, *history).when(MoveSession("ws5-s1", room_id="attic")).then_rejects(
        NotFound, "no room 'attic'"
    )


def test_refuses_a_session_for_an_edition_never_planned(build):
    given(agenda_decider).when(build.workshop()).then_rejects(NotFound, "no edition 'e25'")


def test_changing_details_names_only_what_changed(build):
    history = build.history(build.workshop())
    given(agenda_decider, *history).when(
        ChangeSessionDetails("ws5-s1", title="Futures literacy lab", kind="workshop_session")
    ).then(
        SessionDetailsChanged(session_id="ws5-s1", edition_id="e25", title="Futures literacy lab")
    )


def test_cancelling_a_cancelled_session_changes_nothing(build):
    history = build.history(build.workshop(), CancelSession("ws5-s1", "room flooded"))
    given(agenda_decider, *history).when(CancelSession("ws5-s1", "again")).then()


def test_cancelling_records_the_reason(build):
    given(agenda_decider, *build.history(build.workshop())).when(
        CancelSession("ws5-s1", "room flooded")
    ).then(SessionCancelled(session_id="ws5-s1", edition_id="e25", reason="room flooded"))


def test_reassigning_a_person_updates_their_role_and_assigning_again_changes_nothing(build):
    history = build.history(build.workshop(people=[build.robyn]))
    same = AssignPerson("ws5-s1", build.robyn)
    given(agenda_decider, *history).when(same).then()
    chair = Person("robyn-bennett", "Robyn Bennett", "chair", "Advisor")
    state = given(agenda_decider, *history).when(AssignPerson("ws5-s1", chair)).then_state()
    assert [p.role for p in state.sessions["ws5-s1"].people] == ["chair"]


def test_removing_someone_not_on_the_panel_is_refused(build):
    history = build.history(build.workshop(people=[build.robyn]))
    given(agenda_decider, *history).when(RemovePerson("ws5-s1", "nobody")).then_rejects(
        NotFound, "'nobody' is not on the panel"
    )
    given(agenda_decider, *history).when(RemovePerson("ws5-s1", "robyn-bennett")).then(
        PersonRemoved(session_id="ws5-s1", edition_id="e25", person_id="robyn-bennett")
    )


# -- capacities ------------------------------------------------------------------------------


def test_refuses_a_session_capacity_above_its_rooms(build):
    given(agenda_decider, *build.history()).when(build.workshop(capacity=120)).then_rejects(
        InvariantViolated, "wants 120 seats but room 'Workshop Room 5' holds 80"
    )


def test_refuses_shrinking_a_room_below_a_sessions_capacity(build):
    history = build.history(build.workshop(capacity=60))
    given(agenda_decider, *history).when(ChangeRoomCapacity("ws-room-5", 40)).then_rejects(
        InvariantViolated, "wants 60 seats"
    )


# -- published versions ----------------------------------------------------------------------


def test_the_first_version_lists_every_session_as_new(build):
    history = build.history(
        build.workshop("ws5-s1"),
        build.workshop(
            "ws7-s1", room_id="ws-room-7", workshop=build.ws7, start="09:00", end="10:00"
        ),
    )
    given(agenda_decider, *history).when(PublishSchedule("e25", "Draft", PUBLISHED_AT)).then(
        SchedulePublished(
            edition_id="e25",
            version=1,
            label="Draft",
            published_at=PUBLISHED_AT,
            new=("ws7-s1", "ws5-s1"),
        )
    )


def test_publishing_lists_new_moved_cancelled_and_changed_sessions(build):
    history = build.history(
        build.workshop("ws5-s1"),
        build.workshop("ws5-s2", start="16:30", end="18:00"),
        build.workshop("ws5-s3", day=24, start="11:30", end="13:00"),
        PublishSchedule("e25", "Draft", PUBLISHED_AT),
        MoveSession("ws5-s1", room_id="ws-room-7"),
        CancelSession("ws5-s2", "merged into session 1"),
        AssignPerson("ws5-s3", build.robyn),
        build.workshop("ws5-s4", day=25, start="09:30", end="11:00"),
    )
    [published] = (
        given(agenda_decider, *history)
        .when(PublishSchedule("e25", "Final", PUBLISHED_AT))
        .then_yields()
    )
    assert isinstance(published, SchedulePublished)
    assert (published.version, published.label) == (2, "Final")
    assert published.new == ("ws5-s4",)
    assert published.moved == ("ws5-s1",)
    assert published.cancelled == ("ws5-s2",)
    assert published.changed == ("ws5-s3",)


def test_refuses_to_publish_when_nothing_changed(build):
    history = build.history(build.workshop(), PublishSchedule("e25", "Draft", PUBLISHED_AT))
    given(agenda_decider, *history).when(
        PublishSchedule("e25", "Draft 2", PUBLISHED_AT)
    ).then_rejects(InvariantViolated, "nothing changed since version 1 ('Draft')")


def test_refuses_to_reuse_a_version_label(build):
    history = build.history(build.workshop(), PublishSchedule("e25", "Draft", PUBLISHED_AT))
    history += build.events_of(
        MoveSession("ws5-s1", room_id="ws-room-7"), state=agenda_decider.fold(history)
    )
    given(agenda_decider, *history).when(
        PublishSchedule("e25", "Draft", PUBLISHED_AT)
    ).then_rejects(InvariantViolated, "labelled 'Draft'")


def test_a_session_both_moved_and_retitled_is_listed_as_both():
    before = SessionSnapshot("s", "Old", "plenary", None, "hall", _t(9), _t(10), None)
    after = SessionSnapshot("s", "New", "plenary", None, "annex", _t(9), _t(10), None)
    changes = diff({"s": before}, {"s": after})
    assert (changes.moved, changes.changed, changes.new, changes.cancelled) == (
        ("s",),
        ("s",),
        (),
        (),
    )


# -- the aggregate's events ------------------------------------------------------------------


def test_the_agenda_records_every_event_of_the_agenda_context():
    # mypy checks that evolve handles every member of AgendaEvent; this checks that the union
    # lists every event the agenda context publishes.
    published = {model for model in catalogue.models() if model.meta.context == "agenda"}
    assert set(agenda_decider.events) == published


def _t(hour: int) -> datetime:
    return datetime(2025, 6, 23, hour, tzinfo=UTC)
