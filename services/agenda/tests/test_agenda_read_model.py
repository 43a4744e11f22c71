"""The read model and its queries: programme views, history, versions and their diff, iCal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pytest
from icalendar import Calendar

from agora_agenda import ical, queries
from agora_agenda.domain import Agenda as State
from agora_agenda.domain import (
    AssignPerson,
    CancelSession,
    ChangeSessionDetails,
    Command,
    MoveSession,
    Person,
    PublishSchedule,
    decide,
    fold,
)
from agora_agenda.importer import bundled_editions, load_edition
from agora_events.decider import InvalidCommand, NotFound

PUBLISHED_AT = datetime(2025, 6, 20, 12, 0, tzinfo=UTC)
T = TypeVar("T")


class Agenda:
    """Decides commands one at a time and feeds each command's events to the read model."""

    def __init__(self, read_model: Any) -> None:
        self.state = State()
        self.read_model = read_model

    async def run(self, *commands: Command) -> None:
        for command in commands:
            events = decide(self.state, command)
            self.state = fold(self.state, events)
            await self.read_model.apply(events)

    async def ask(self, query: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        async with self.read_model.session() as db:
            return await query(db, *args, **kwargs)


@pytest.fixture
async def samarkand(read_model: Any) -> Agenda:
    agenda = Agenda(read_model)
    await agenda.run(load_edition(bundled_editions()["unpsf-2025"]))
    return agenda


@pytest.fixture
async def scheduled(samarkand: Agenda, organiser_schedules: Any) -> Agenda:
    """The 2025 edition once an organiser has scheduled four sessions of every workshop."""
    await samarkand.run(*organiser_schedules(samarkand.state))
    return samarkand


async def test_the_programme_reads_day_by_day_in_local_time(samarkand):
    view = await samarkand.ask(queries.programme, "unpsf-2025")
    assert [d.day for d in view.days] == [date(2025, 6, 23), date(2025, 6, 24), date(2025, 6, 25)]
    first = view.days[0].sessions[0]
    assert (first.session_id, first.starts_at.isoformat()) == (
        "2025-d1-opening",
        "2025-06-23T09:00:00+05:00",
    )
    assert [p.name for p in first.people] == ["Sherzod Shermatov", "Navid Hanif"]
    assert sum(len(d.sessions) for d in view.days) == 11
    assert {s.status for d in view.days for s in d.sessions} == {"tentative"}


async def test_the_programme_narrows_to_a_day_a_room_a_workshop_and_a_person(scheduled):
    ask = scheduled.ask
    day = await ask(queries.programme, "unpsf-2025", day=date(2025, 6, 25))
    assert [d.day for d in day.days] == [date(2025, 6, 25)]
    room = await ask(queries.programme, "unpsf-2025", room_id="unpsf-2025-workshop-room-5")
    assert {s.label for d in room.days for s in d.sessions} == {
        f"Workshop 5: Foresight and Creativity in Public Service (session {n})" for n in range(1, 5)
    }
    workshop = await ask(queries.programme, "unpsf-2025", workshop=5)
    assert {s.session_id for d in workshop.days for s in d.sessions} == {
        f"2025-ws5-s{n}" for n in range(1, 5)
    }
    navid = await ask(queries.programme, "unpsf-2025", person_id="navid-hanif")
    assert [s.session_id for d in navid.days for s in d.sessions] == [
        "2025-d1-opening",
        "2025-mr-s1",
        "2025-mr-s2",
        "2025-d3-closing",
    ]


async def test_refuses_a_day_outside_the_edition(samarkand):
    with pytest.raises(InvalidCommand, match="is not a day of 'unpsf-2025'"):
        await samarkand.ask(queries.programme, "unpsf-2025", day=date(2025, 7, 1))


async def test_lists_workshops_with_organisers_and_a_speakers_sessions(samarkand):
    workshops = await samarkand.ask(queries.workshops, "unpsf-2025")
    assert [w.number for w in workshops] == list(range(1, 9))
    assert workshops[4].organisers == []
    assert workshops[4].partners == [
        "School of International Futures",
        "Creative Bureaucracy Festival",
    ]
    paata = await samarkand.ask(queries.person, "paata-salia")
    assert [s.session_id for s in paata.sessions] == ["2025-mr-s1", "2025-d3-closing"]
    everyone = await samarkand.ask(queries.people, "unpsf-2025")
    assert "robyn-bennett" in {p.person_id for p in everyone}


async def test_a_session_shows_its_history_and_its_data_quality_warnings(samarkand):
    await samarkand.run(
        MoveSession(
            "2025-plenary-ai",
            room_id="unpsf-2025-workshop-room-1",
            starts_at=datetime.fromisoformat("2025-06-24T09:00:00+05:00"),
        )
    )
    detail = await samarkand.ask(queries.session, "2025-plenary-ai")
    assert [h.change for h in detail.history] == ["scheduled"] + ["person_assigned"] * 5 + ["moved"]
    assert [h.revision for h in detail.history] == [0] * 6 + [1]
    moved = detail.history[-1].details
    assert (moved["old_room_id"], moved["new_room_id"]) == (
        "unpsf-2025-plenary-hall",
        "unpsf-2025-workshop-room-1",
    )
    assert moved["new_starts_at"] == "2025-06-24T09:00:00+05:00"
    assert [w.field for w in detail.data_quality_warnings] == ["people.title"]


async def test_the_revision_grows_once_per_command(samarkand):
    opening = await samarkand.ask(queries.session, "2025-d1-opening")
    assert opening.revision == 0  # scheduled with its panel by one command
    await samarkand.run(
        ChangeSessionDetails("2025-d1-opening", title="Opening"),
        CancelSession("2025-d1-keynote", "speaker delayed"),
    )
    await samarkand.run(MoveSession("2025-d1-opening", room_id="unpsf-2025-workshop-room-1"))
    opening = await samarkand.ask(queries.session, "2025-d1-opening")
    assert opening.revision == 2
    assert [h.revision for h in opening.history] == [0, 0, 0, 1, 2]


async def test_data_quality_lists_both_facts_of_every_warning(samarkand):
    view = await samarkand.ask(queries.data_quality, "unpsf-2025")
    assert len(view.warnings) == 5
    [paata] = [w for w in view.warnings if w.session_id == "2025-d3-closing"]
    assert paata.values == [
        "Minister of Justice & Public Administration",
        "Minister of Justice of Georgia",
    ]


async def test_an_unknown_edition_or_session_is_not_found(samarkand):
    with pytest.raises(NotFound, match="no edition 'unpsf-1999'"):
        await samarkand.ask(queries.programme, "unpsf-1999")
    with pytest.raises(NotFound, match="no session 'nope'"):
        await samarkand.ask(queries.session, "nope")


# -- published versions and their diff ---------------------------------------------------------


async def test_diffs_any_two_published_versions(scheduled):
    samarkand = scheduled
    closing = "2025-d3-closing"
    await samarkand.run(PublishSchedule("unpsf-2025", "Draft", PUBLISHED_AT))
    await samarkand.run(
        MoveSession(closing, starts_at=datetime.fromisoformat("2025-06-25T12:30:00+05:00")),
        CancelSession("2025-d2-cadgov-launch", "postponed to 2026"),
        PublishSchedule("unpsf-2025", "Second", PUBLISHED_AT),
    )
    await samarkand.run(
        AssignPerson(
            "2025-ws5-s1",
            Person("robyn-bennett", "Robyn Bennett", "moderator"),
        ),
        PublishSchedule("unpsf-2025", "Final", PUBLISHED_AT),
    )
    versions = await samarkand.ask(queries.list_versions, "unpsf-2025")
    assert [(v.version, v.label) for v in versions] == [(1, "Draft"), (2, "Second"), (3, "Final")]
    assert len(versions[0].new) == 43
    assert (versions[1].moved, versions[1].cancelled) == ([closing], ["2025-d2-cadgov-launch"])
    assert versions[2].changed == ["2025-ws5-s1"]

    across = await samarkand.ask(queries.version_diff, "unpsf-2025", 1, 3)
    assert [m.session_id for m in across.moved] == [closing]
    assert across.moved[0].before.starts_at.isoformat() == "2025-06-25T12:15:00+05:00"
    assert across.moved[0].after.starts_at.isoformat() == "2025-06-25T12:30:00+05:00"
    assert [c.session_id for c in across.cancelled] == ["2025-d2-cadgov-launch"]
    assert [c.session_id for c in across.changed] == ["2025-ws5-s1"]
    assert [p.person_id for p in across.changed[0].after.people] == ["robyn-bennett"]
    assert across.new == []

    backwards = await samarkand.ask(queries.version_diff, "unpsf-2025", 3, 1)
    assert [s.session_id for s in backwards.new] == ["2025-d2-cadgov-launch"]
    from_nothing = await samarkand.ask(queries.version_diff, "unpsf-2025", 0, 2)
    assert len(from_nothing.new) == 42
    with pytest.raises(NotFound, match="no published version 9"):
        await samarkand.ask(queries.version_diff, "unpsf-2025", 1, 9)


# -- iCalendar ---------------------------------------------------------------------------------


async def test_ical_round_trips_with_stable_uids_and_a_growing_sequence(scheduled):
    samarkand = scheduled

    async def export() -> dict[str, Any]:
        edition, found, _ = await samarkand.ask(
            queries.calendar_sessions, edition_id="unpsf-2025", draft=True
        )
        parsed = Calendar.from_ical(ical.calendar(edition, found, name=edition.name))
        return {str(e["UID"]): e for e in parsed.walk("VEVENT")}

    before = await export()
    assert len(before) == 43
    assert str(before["2025-ws5-s3@agenda.agora"]["STATUS"]) == "CONFIRMED"
    ws5 = before["2025-ws5-s3@agenda.agora"]
    assert str(ws5["SUMMARY"]).startswith("Workshop 5: Foresight and Creativity")
    assert ws5.decoded("DTSTART").isoformat() == "2025-06-24T11:30:00+05:00"
    assert ws5["DTSTART"].params["TZID"] == "Asia/Samarkand"
    assert int(ws5["SEQUENCE"]) == 0

    await samarkand.run(
        MoveSession("2025-ws5-s3", room_id="unpsf-2025-plenary-hall"),
    )
    await samarkand.run(CancelSession("2025-ws5-s3", "merged with session 4"))
    after = await export()
    assert after.keys() == before.keys()
    moved = after["2025-ws5-s3@agenda.agora"]
    assert int(moved["SEQUENCE"]) == 2
    assert str(moved["STATUS"]) == "CANCELLED"
    assert str(moved["LOCATION"]) == "Plenary Hall, Samarkand"
    untouched = after["2025-ws5-s4@agenda.agora"]
    assert int(untouched["SEQUENCE"]) == 0


async def test_exports_one_session_as_its_own_calendar(samarkand):
    edition, found, _ = await samarkand.ask(
        queries.calendar_sessions, session_id="2025-mr-s1", draft=True
    )
    parsed = Calendar.from_ical(ical.calendar(edition, found, name=found[0].label))
    [event] = parsed.walk("VEVENT")
    assert str(event["UID"]) == "2025-mr-s1@agenda.agora"
    assert "Moderator: Elizabeth Nyamayaro" in str(event["DESCRIPTION"])
    assert [tz["TZID"] for tz in parsed.walk("VTIMEZONE")] == ["Asia/Samarkand"]


# -- what the sources do not state ------------------------------------------------------------


async def test_the_undated_2025_workshops_are_unscheduled_and_not_confirmed_in_the_calendar(
    samarkand,
):
    workshops = await samarkand.ask(queries.workshops, "unpsf-2025")
    assert {w.status for w in workshops} == {"unscheduled"}
    assert all(w.sessions == [] and w.source for w in workshops)
    edition, found, _ = await samarkand.ask(
        queries.calendar_sessions, edition_id="unpsf-2025", draft=True
    )
    events = Calendar.from_ical(ical.calendar(edition, found, name="x")).walk("VEVENT")
    assert len(events) == 11
    assert {str(e["STATUS"]) for e in events} == {"TENTATIVE"}
    assert not [e for e in events if "workshop_session" in str(e["CATEGORIES"].to_ical())]


async def test_an_organiser_scheduling_a_workshop_makes_it_scheduled(
    samarkand, organiser_schedules
):
    await samarkand.run(*organiser_schedules(samarkand.state, (5,), (3,)))
    [ws5] = [w for w in await samarkand.ask(queries.workshops, "unpsf-2025") if w.number == 5]
    assert ws5.status == "scheduled"
    assert [s.status for s in ws5.sessions] == ["scheduled"]


async def test_an_unpublished_change_is_invisible_in_the_published_programme(samarkand):
    await samarkand.run(PublishSchedule("unpsf-2025", "Programme", PUBLISHED_AT))
    later = datetime.fromisoformat("2025-06-25T12:30:00+05:00")
    await samarkand.run(MoveSession("2025-d3-closing", starts_at=later))

    async def closing(version: int | None = None, draft: bool = False) -> str:
        async with samarkand.read_model.session() as db:
            source = queries.DRAFT if draft else await queries.published(db, "unpsf-2025", version)
            view = await queries.programme(db, "unpsf-2025", source=source)
        [found] = [s for d in view.days for s in d.sessions if s.session_id == "2025-d3-closing"]
        return f"{found.starts_at:%H:%M} {found.status}"

    assert await closing() == "12:15 tentative"
    assert await closing(draft=True) == "12:30 scheduled"  # an organiser's move fixes the time
    await samarkand.run(PublishSchedule("unpsf-2025", "Closing moved", PUBLISHED_AT))
    assert await closing() == "12:30 scheduled"
    assert await closing(version=1) == "12:15 tentative"
    with pytest.raises(NotFound, match="no published version 3"):
        await closing(version=3)
