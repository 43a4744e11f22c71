"""Workshop enrolment through the use cases and the reactor, against a real nats-server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from agora_events.commands import ConcurrencyError
from agora_events.contracts.agenda import SessionScheduled
from agora_events.contracts.registration import PromotedFromWaitlist
from agora_events.decider import InvariantViolated, NotFound
from agora_events.store import EventStore
from agora_events.usecases import Caller
from agora_registration.application import Registration
from agora_registration.domain import Withdraw
from agora_registration.reactor import Reactor

if TYPE_CHECKING:
    from tests.conftest import Agenda, People, ReactorRunner


async def workshops(agenda: Agenda, reactor: Reactor, capacity: int = 2) -> None:
    """ws-a 09:00-10:30 and ws-b 10:00-12:00 overlap; ws-c 14:00-15:30 overlaps neither."""
    await agenda.room("room-a", capacity)
    await agenda.room("room-b", 50)
    await agenda.room("room-big", 500)
    await agenda.workshop("ws-a", "room-a", agenda.at(9), agenda.at(10, 30))
    await agenda.workshop("ws-b", "room-b", agenda.at(10), agenda.at(12))
    await agenda.workshop("ws-c", "room-b", agenda.at(14), agenda.at(15, 30))
    await reactor.wait_for(agenda.sequence)


async def test_the_reactor_opens_workshop_sessions_with_their_rooms_capacity(
    agenda: Agenda, reactor: Reactor, registration: Registration
) -> None:
    await workshops(agenda, reactor, capacity=7)
    session = await registration.session("ws-a")
    assert session.terms is not None
    assert (session.terms.capacity, session.terms.window.starts_at) == (7, agenda.at(9))


async def test_ignores_sessions_that_are_not_workshops(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await agenda.room("hall", 1000)
    await agenda.workshop("plenary-1", "hall", agenda.at(9), agenda.at(10), kind="plenary")
    await reactor.wait_for(agenda.sequence)
    with pytest.raises(NotFound, match="has not heard of it"):
        await registration.enrol((await people.approved(1))[0], "plenary-1")


async def test_a_workshop_session_with_a_tentative_time_is_not_enrollable_until_it_is_fixed(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await agenda.room("room-5", 40)
    await agenda.append(
        SessionScheduled(
            session_id="ws5-s1",
            edition_id="unpsf-2025",
            kind="workshop_session",
            title="Foresight and Creativity in Public Service",
            room_id="room-5",
            starts_at=agenda.at(14, 30),
            ends_at=agenda.at(16),
            tentative=True,
            time_source="inferred: the 2025 forum report prints no timetable",
        )
    )
    await reactor.wait_for(agenda.sequence)
    (person,) = await people.approved(1)
    with pytest.raises(NotFound, match="has not heard of it"):
        await registration.enrol(person, "ws5-s1")
    # An organiser moves it to a time of their own: fixed, so offered.
    window = ("room-5", agenda.at(14, 30), agenda.at(16))
    await agenda.move("ws5-s1", window, ("room-5", agenda.at(15), agenda.at(16, 30)))
    await reactor.wait_for(agenda.sequence)
    assert (await registration.enrol(person, "ws5-s1")).status == "enrolled"


async def test_a_full_session_waitlists_in_order_and_a_withdrawal_promotes_the_first(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor, capacity=2)
    crowd = await people.approved(4)
    outcomes = [await registration.enrol(person, "ws-a") for person in crowd]
    assert [(o.status, o.position) for o in outcomes] == [
        ("enrolled", None),
        ("enrolled", None),
        ("waitlisted", 1),
        ("waitlisted", 2),
    ]
    await registration.withdraw(crowd[0], "travel cancelled")
    session = await registration.session("ws-a")
    assert [p.participant_id for p in session.roster] == [crowd[1], crowd[2]]
    assert [p.participant_id for p in session.waitlist] == [crowd[3]]


async def test_refuses_to_enrol_in_a_session_overlapping_one_already_held(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor)
    (person,) = await people.approved(1)
    await registration.enrol(person, "ws-a")
    with pytest.raises(InvariantViolated, match="overlaps session ws-a"):
        await registration.enrol(person, "ws-b")
    await registration.enrol(person, "ws-c")
    participant = await registration.participant(person)
    assert sorted(c.session_id for c in participant.claims) == ["ws-a", "ws-c"]


async def test_refuses_double_enrolment(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor)
    (person,) = await people.approved(1)
    await registration.enrol(person, "ws-a")
    with pytest.raises(InvariantViolated, match="already enrolled"):
        await registration.enrol(person, "ws-a")
    assert len((await registration.participant(person)).claims) == 1


async def test_concurrent_enrolments_of_one_person_in_overlapping_sessions_admit_exactly_one(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People, store: EventStore
) -> None:
    await workshops(agenda, reactor)
    (person,) = await people.approved(1)
    # Eight replicas of the service, each with its own cache and locks, race four times each
    # way: only the participant's scope can keep the overlap rule.
    replicas = [Registration(store) for _ in range(8)]
    attempts = [
        replica.enrol(person, session)
        for replica in replicas
        for session in ("ws-a", "ws-b", "ws-a", "ws-b")
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(f, InvariantViolated | ConcurrencyError) for f in failures), failures
    claims = (await registration.participant(person)).claims
    assert len(claims) == 1
    held = claims[0].session_id
    other = "ws-b" if held == "ws-a" else "ws-a"
    assert [p.participant_id for p in (await registration.session(held)).roster] == [person]
    assert (await registration.session(other)).place_of(person) is None


async def test_concurrent_enrolments_from_many_replicas_never_exceed_capacity(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People, store: EventStore
) -> None:
    await workshops(agenda, reactor, capacity=5)
    crowd = await people.approved(16)
    replicas = [Registration(store, max_attempts=50) for _ in range(4)]
    await asyncio.gather(*(replicas[n % 4].enrol(person, "ws-a") for n, person in enumerate(crowd)))
    session = await registration.session("ws-a")
    assert len(session.roster) == 5
    assert len(session.waitlist) == 11
    assert {p.participant_id for p in (*session.roster, *session.waitlist)} == set(crowd)


async def test_leaving_a_session_frees_its_time_and_promotes_the_waitlist(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor, capacity=1)
    first, second = await people.approved(2)
    await registration.enrol(first, "ws-a")
    await registration.enrol(second, "ws-a")
    await registration.leave(first, "ws-a")
    assert [p.participant_id for p in (await registration.session("ws-a")).roster] == [second]
    await registration.enrol(first, "ws-b")  # ws-a's time is free again


async def test_refuses_to_leave_a_session_never_enrolled_in(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor)
    (person,) = await people.approved(1)
    with pytest.raises(NotFound, match="holds no place in session ws-a"):
        await registration.leave(person, "ws-a")


async def test_a_capacity_rise_in_the_agenda_promotes_the_waitlist_in_order(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor, capacity=1)
    crowd = await people.approved(4)
    for person in crowd:
        await registration.enrol(person, "ws-a")
    await agenda.room_capacity("room-a", old=1, new=3)
    await reactor.wait_for(agenda.sequence)
    session = await registration.session("ws-a")
    assert [p.participant_id for p in session.roster] == crowd[:3]
    assert [p.participant_id for p in session.waitlist] == crowd[3:]


async def test_a_move_to_a_larger_room_promotes_and_moves_everyones_claim(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor, capacity=1)
    first, second = await people.approved(2)
    await registration.enrol(first, "ws-a")
    await registration.enrol(second, "ws-a")
    await agenda.move(
        "ws-a",
        ("room-a", agenda.at(9), agenda.at(10, 30)),
        ("room-big", agenda.at(14), agenda.at(15)),
    )
    await reactor.wait_for(agenda.sequence)
    session = await registration.session("ws-a")
    assert [p.participant_id for p in session.roster] == [first, second]
    # The claim moved with the session: ws-b (10:00-12:00) is free now, ws-c (14:00) is not.
    await registration.enrol(first, "ws-b")
    with pytest.raises(InvariantViolated, match="overlaps session ws-a"):
        await registration.enrol(second, "ws-c")


async def test_a_session_capacity_of_its_own_overrides_the_rooms(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor, capacity=1)
    crowd = await people.approved(3)
    for person in crowd:
        await registration.enrol(person, "ws-a")
    await agenda.session_capacity("ws-a", 2)
    await reactor.wait_for(agenda.sequence)
    assert len((await registration.session("ws-a")).roster) == 2


async def test_a_cancelled_session_releases_everyone_and_takes_no_more_enrolments(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor, capacity=1)
    first, second = await people.approved(2)
    await registration.enrol(first, "ws-a")
    await registration.enrol(second, "ws-a")
    await agenda.cancel("ws-a", "the moderator could not travel")
    await reactor.wait_for(agenda.sequence)
    assert (await registration.participant(first)).claims == ()
    assert (await registration.participant(second)).claims == ()
    await registration.enrol(first, "ws-b")
    with pytest.raises(InvariantViolated, match="could not travel"):
        await registration.enrol(second, "ws-a")
    assert (await registration.participant(second)).claims == ()


async def test_replaying_the_whole_agenda_through_a_new_reactor_changes_nothing(
    agenda: Agenda,
    reactor: Reactor,
    registration: Registration,
    people: People,
    store: EventStore,
    reactors: ReactorRunner,
) -> None:
    await workshops(agenda, reactor, capacity=1)
    crowd = await people.approved(3)
    for person in crowd:
        await registration.enrol(person, "ws-a")
    await agenda.room_capacity("room-a", old=1, new=2)
    await agenda.move(
        "ws-a",
        ("room-a", agenda.at(9), agenda.at(10, 30)),
        ("room-big", agenda.at(9), agenda.at(10, 30)),
    )
    await reactor.wait_for(agenda.sequence)
    before = await store.read("registration.>")
    promotions = [r for r in before if isinstance(r.event, PromotedFromWaitlist)]
    assert len(promotions) == 2
    # A second reactor, as after a lost checkpoint: every agenda event is delivered again.
    async with reactors(Registration(store), name="replayed") as again:
        await again.wait_for(agenda.sequence)
    assert len(await store.read("registration.>")) == len(before)


async def test_the_reactor_releases_the_places_of_a_withdrawal_the_api_did_not_finish(
    agenda: Agenda, reactor: Reactor, registration: Registration, people: People
) -> None:
    await workshops(agenda, reactor, capacity=1)
    first, second = await people.approved(2)
    await registration.enrol(first, "ws-a")
    await registration.enrol(second, "ws-a")
    # The process "crashes" right after recording the withdrawal: no release follows it.
    withdrawn = await registration.participants.handle(Withdraw(first))
    await reactor.wait_for(withdrawn.last_sequence, stream="REGISTRATION")
    session = await registration.session("ws-a")
    assert [p.participant_id for p in session.roster] == [second]
    assert session.waitlist == ()


async def test_a_retried_registration_with_the_same_key_registers_once(
    registration: Registration, store: EventStore
) -> None:
    fields = {
        "name": "Ana Example",
        "email": "ana@example.org",
        "category": "minister",
        "delegation": "UZB",
    }
    form = Caller(actor="registrant", key="form-submission-1")
    first = await registration.register(**fields, caller=form)  # type: ignore[arg-type]
    again = await Registration(store).register(**fields, caller=form)  # type: ignore[arg-type]
    assert again.duplicate
    assert again.ids == first.ids
    assert len(await store.read("registration.participant.*.registered")) == 1
