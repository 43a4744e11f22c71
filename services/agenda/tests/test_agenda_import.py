"""Importing the real programmes: facts, rules, data-quality warnings, idempotency."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from agora_agenda.application import SCOPE, AgendaCommands, SessionRef
from agora_agenda.domain import (
    MISSING_REASON,
    Agenda,
    CancelSession,
    decide,
    fold,
    missing_sessions,
)
from agora_agenda.importer import ProgrammeError, bundled_editions, load_edition, parse_edition
from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    DataQualityWarningRecorded,
    EditionPlanned,
    PersonAssigned,
    RoomAdded,
    SessionCancelled,
    SessionMoved,
    SessionScheduled,
)
from agora_events.decider import InvariantViolated
from agora_events.store import EventStore

EDITIONS = bundled_editions()


def programme_text(edition: str) -> str:
    return EDITIONS[edition].read_text(encoding="utf-8")


CADGOV = SessionRef(
    "2025-d2-cadgov-launch", "Launch of the Central Asia Digital Governance Forum (CADGov)"
)
RECOGNITION = SessionRef("2025-d2-egov-recognition", "E-Government Recognition Session")


def without_sessions(text: str, *session_ids: str) -> str:
    """``text`` with the ``[[sessions]]`` entries of ``session_ids`` taken out."""
    for session_id in session_ids:
        start = text.index(f'[[sessions]]\nid = "{session_id}"\n')
        end = text.index("\n[[sessions]]\n", start) + 1
        text = text[:start] + text[end:]
    return text


def imported(text: str, state: Agenda | None = None) -> tuple[Agenda, list[DomainEvent]]:
    current = state or Agenda()
    events = decide(current, parse_edition(text))
    return fold(current, events), events


def test_ships_the_2024_and_2025_programmes():
    assert list(EDITIONS) == ["unpsf-2024", "unpsf-2025"]


def test_the_2025_programme_is_in_samarkand_in_its_own_time_zone():
    state, events = imported(programme_text("unpsf-2025"))
    [planned] = [e for e in events if isinstance(e, EditionPlanned)]
    assert (planned.host_city, planned.host_country, planned.time_zone) == (
        "Samarkand",
        "UZB",
        "Asia/Samarkand",
    )
    assert (planned.start_date, planned.end_date) == (date(2025, 6, 23), date(2025, 6, 25))
    opening = state.sessions["2025-d1-opening"]
    assert opening.starts_at == datetime(2025, 6, 23, 9, 0, tzinfo=ZoneInfo("Asia/Samarkand"))
    assert opening.starts_at.isoformat() == "2025-06-23T09:00:00+05:00"
    kinds = Counter(e.kind for e in events if isinstance(e, SessionScheduled))
    assert kinds["ministerial_roundtable"] == 2
    # The report prints no timetable: every time is tentative, with where it comes from.
    scheduled = [e for e in events if isinstance(e, SessionScheduled)]
    assert all(e.tentative and e.time_source for e in scheduled)
    # ... and mentions no coffee break or lunch.
    assert kinds["break"] == kinds["lunch"] == 0
    rooms = [e for e in events if isinstance(e, RoomAdded)]
    assert all(room.capacity_estimated for room in rooms)
    assert "unpsf-2025-workshop-room-5" in state.rooms


def test_the_2025_workshops_are_listed_unscheduled_without_invented_sessions():
    state, events = imported(programme_text("unpsf-2025"))
    kinds = Counter(e.kind for e in events if isinstance(e, SessionScheduled))
    assert kinds["workshop_session"] == 0
    workshops = state.editions["unpsf-2025"].workshops
    assert [w.number for w in workshops] == list(range(1, 9))
    assert all(w.source and "no sessions" in w.source for w in workshops)
    assert workshops[4].title == "Foresight and Creativity in Public Service"


def test_partners_of_workshop_5_are_not_recorded_as_its_organisers():
    state, _ = imported(programme_text("unpsf-2025"))
    ws5 = state.editions["unpsf-2025"].workshops[4]
    assert ws5.organisers == ()
    assert ws5.partners == ("School of International Futures", "Creative Bureaucracy Festival")


def test_the_2024_programme_is_in_the_republic_of_korea_with_workshop_1_in_room_101():
    state, _ = imported(programme_text("unpsf-2024"))
    edition = state.editions["unpsf-2024"]
    assert (edition.host_country, edition.time_zone) == ("KOR", "Asia/Seoul")
    workshop_1 = [s for s in state.sessions.values() if s.workshop and s.workshop.number == 1]
    assert len(workshop_1) == 8
    assert {s.room_id for s in workshop_1} == {"unpsf-2024-room-101"}
    assert workshop_1[0].workshop is not None
    assert workshop_1[0].workshop.organisers == ("DPIDG/ISDGB", "UNDP")


def test_both_programmes_obey_every_rule_side_by_side():
    state, first = imported(programme_text("unpsf-2024"))
    state, second = imported(programme_text("unpsf-2025"), state)
    assert first
    assert second
    # Sherzod Shermatov speaks at both forums, a year apart: no clash.
    speaking = [
        s.session_id for s in state.sessions.values() if s.person("sherzod-shermatov") is not None
    ]
    assert "2024-plenary-1" in speaking
    assert "2025-d1-opening" in speaking


def test_importing_the_same_programme_twice_yields_no_events():
    for edition in EDITIONS:
        state, events = imported(programme_text(edition))
        assert events
        assert decide(state, load_edition(EDITIONS[edition])) == []


def test_keeps_both_sides_of_a_contradiction_as_a_data_quality_warning():
    _, events = imported(programme_text("unpsf-2024"))
    warnings = [e for e in events if isinstance(e, DataQualityWarningRecorded)]
    assert len(warnings) == 18
    [ws2] = [w for w in warnings if w.session_id == "2024-ws2-s1"]
    assert ws2.field == "end"
    assert ws2.values == ("14:30-16:00", "14:30-15:45")
    edition_wide = [w for w in warnings if w.session_id is None]
    assert {w.field for w in edition_wide} >= {"host_city", "theme"}
    assert len({w.warning_id for w in warnings}) == len(warnings)


def test_reimporting_a_changed_programme_moves_retitles_and_reassigns():
    text = programme_text("unpsf-2025")
    state, _ = imported(text)
    changed = text.replace(
        'title = "Plenary: Transforming Government in the Era of AI"',
        'title = "Plenary: Government in the Era of AI"',
    ).replace(
        'id = "2025-d3-closing"\nkind = "closing"\ntitle = "Closing Session"\n'
        'room = "plenary-hall"\ndate = "2025-06-25"  # stated: 25 June; times inferred\n'
        'start = "12:15"\nend = "13:00"',
        'id = "2025-d3-closing"\nkind = "closing"\ntitle = "Closing Session"\n'
        'room = "plenary-hall"\ndate = "2025-06-25"\nstart = "12:30"\nend = "13:15"',
    )
    assert changed.count("Government in the Era of AI") == 1
    _, events = imported(changed, state)
    assert [type(e).__name__ for e in events] == ["SessionDetailsChanged", "SessionMoved"]
    assert isinstance(events[1], SessionMoved)
    assert events[1].old_starts_at.strftime("%H:%M") == "12:15"
    assert events[1].new_starts_at.strftime("%H:%M") == "12:30"


def test_a_programme_may_swap_two_sessions_between_rooms():
    text = programme_text("unpsf-2024")
    state, _ = imported(text)
    swapped = (
        text.replace('workshop = 1\nroom = "room-101"\ndate = "2024-06-24"', "@@A@@", 1)
        .replace('workshop = 2\nroom = "workshop-room-2"\ndate = "2024-06-24"', "@@B@@", 1)
        .replace("@@A@@", 'workshop = 1\nroom = "workshop-room-2"\ndate = "2024-06-24"')
        .replace("@@B@@", 'workshop = 2\nroom = "room-101"\ndate = "2024-06-24"')
    )
    _, events = imported(swapped, state)
    moves = {e.session_id: e.new_room_id for e in events if isinstance(e, SessionMoved)}
    assert moves == {
        "2024-ws1-s1": "unpsf-2024-workshop-room-2",
        "2024-ws2-s1": "unpsf-2024-room-101",
    }


def test_refuses_a_programme_that_double_books_a_room():
    text = programme_text("unpsf-2024").replace(
        'workshop = 2\nroom = "workshop-room-2"', 'workshop = 2\nroom = "room-101"', 1
    )
    with pytest.raises(InvariantViolated, match="room 'Room 101' is taken by 'Workshop"):
        imported(text)


def test_refuses_a_programme_naming_a_room_it_does_not_list():
    text = programme_text("unpsf-2025").replace('room = "plenary-hall"', 'room = "terrace"', 1)
    with pytest.raises(ProgrammeError, match="session '2025-d1-opening': room 'terrace'"):
        parse_edition(text)


def test_refuses_a_programme_that_is_not_toml():
    with pytest.raises(ProgrammeError, match="not valid TOML"):
        parse_edition("[edition\nid = 1")


def test_withdraws_warnings_the_programme_no_longer_carries():
    text = programme_text("unpsf-2025")
    state, _ = imported(text)
    cut = text[: text.index('[[warnings]]\nsession = "2025-plenary-ai"')]
    _, events = imported(cut, state)
    assert [type(e).__name__ for e in events] == ["DataQualityWarningWithdrawn"]


def test_leaves_a_cancelled_session_cancelled():
    text = programme_text("unpsf-2025")
    state, _ = imported(text)
    state = fold(state, decide(state, CancelSession("2025-d2-cadgov-launch", "postponed")))
    assert decide(state, parse_edition(text)) == []


def test_a_person_keeps_the_title_stated_for_each_session():
    _state, events = imported(programme_text("unpsf-2025"))
    titles = {
        e.session_id: e.title
        for e in events
        if isinstance(e, PersonAssigned) and e.person_id == "paata-salia"
    }
    assert titles == {
        "2025-mr-s1": "Minister of Justice & Public Administration, Georgia",
        "2025-d3-closing": "Minister of Justice of Georgia",
    }


async def test_importing_twice_against_nats_appends_once(nats_client):
    store = EventStore(nats_client, source="/agora-test")
    command = load_edition(EDITIONS["unpsf-2025"])
    first = await AgendaCommands(store).execute(command)
    assert len(first.events) == 61
    # Another process (a fresh handler with no cache) imports the same file again.
    again = await AgendaCommands(store).execute(command)
    assert again.events == []
    assert again.sequence == first.sequence
    info = await nats_client.jetstream().stream_info("AGENDA")
    assert info.state.messages == 61
    records = await store.read(SCOPE)
    assert records[0].event.subject == "agenda.edition.unpsf-2025.planned"
    assert {r.envelope.causationid for r in records} == {records[0].envelope.causationid}


# -- sessions the programme no longer lists --------------------------------------------------


def test_a_session_the_programme_no_longer_lists_is_reported_and_left_scheduled():
    state, _ = imported(programme_text("unpsf-2025"))
    command = parse_edition(without_sessions(programme_text("unpsf-2025"), CADGOV.session_id))
    assert decide(state, command) == []
    assert [s.session_id for s in missing_sessions(state, command)] == [CADGOV.session_id]
    assert not state.sessions[CADGOV.session_id].cancelled


def test_cancel_missing_cancels_exactly_the_sessions_the_programme_no_longer_lists():
    state, _ = imported(programme_text("unpsf-2024"))
    state, _ = imported(programme_text("unpsf-2025"), state)
    cut = without_sessions(programme_text("unpsf-2025"), CADGOV.session_id, RECOGNITION.session_id)
    events = decide(state, parse_edition(cut, cancel_missing=True))
    assert all(isinstance(e, SessionCancelled) for e in events)
    assert {(e.session_id, e.reason) for e in events if isinstance(e, SessionCancelled)} == {
        (CADGOV.session_id, MISSING_REASON),
        (RECOGNITION.session_id, MISSING_REASON),
    }
    state = fold(state, events)
    assert [s.session_id for s in state.sessions.values() if s.cancelled] == [
        CADGOV.session_id,
        RECOGNITION.session_id,
    ]


def test_cancel_missing_with_the_full_programme_cancels_nothing():
    state, _ = imported(programme_text("unpsf-2025"))
    assert decide(state, load_edition(EDITIONS["unpsf-2025"], cancel_missing=True)) == []


def test_a_session_already_cancelled_is_not_reported_missing_again():
    state, _ = imported(programme_text("unpsf-2025"))
    state = fold(state, decide(state, CancelSession(CADGOV.session_id, "postponed")))
    command = parse_edition(
        without_sessions(programme_text("unpsf-2025"), CADGOV.session_id), cancel_missing=True
    )
    assert missing_sessions(state, command) == []
    assert decide(state, command) == []


async def test_an_import_against_nats_reports_a_removed_session_and_changes_nothing(nats_client):
    store = EventStore(nats_client, source="/agora-test")
    first = await AgendaCommands(store).execute(load_edition(EDITIONS["unpsf-2025"]))
    assert first.missing == ()
    cut = parse_edition(without_sessions(programme_text("unpsf-2025"), CADGOV.session_id))
    outcome = await AgendaCommands(store).execute(cut)
    assert (outcome.events, outcome.sequence) == ([], first.sequence)
    assert (outcome.missing, outcome.cancelled) == ((CADGOV,), ())
    info = await nats_client.jetstream().stream_info("AGENDA")
    assert info.state.messages == len(first.events)


async def test_cancel_missing_against_nats_cancels_the_removed_sessions_once(nats_client):
    store = EventStore(nats_client, source="/agora-test")
    first = await AgendaCommands(store).execute(load_edition(EDITIONS["unpsf-2025"]))
    cut = parse_edition(
        without_sessions(programme_text("unpsf-2025"), CADGOV.session_id, RECOGNITION.session_id),
        cancel_missing=True,
    )
    cancelling = await AgendaCommands(store).execute(cut)
    assert len(cancelling.events) == 2
    assert (cancelling.missing, cancelling.cancelled) == ((), (CADGOV, RECOGNITION))
    records = await store.read(SCOPE, after=first.sequence)
    assert [(r.event.subject, getattr(r.event, "reason", None)) for r in records] == [
        (f"agenda.session.{CADGOV.session_id}.cancelled", MISSING_REASON),
        (f"agenda.session.{RECOGNITION.session_id}.cancelled", MISSING_REASON),
    ]
    # Another process (a fresh handler with no cache) runs the same import again.
    again = await AgendaCommands(store).execute(cut)
    assert (again.events, again.sequence) == ([], cancelling.sequence)
    assert (again.missing, again.cancelled) == ((), ())
    info = await nats_client.jetstream().stream_info("AGENDA")
    assert info.state.messages == len(first.events) + 2
