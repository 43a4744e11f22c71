"""Approval across replicas: one approval per participant, a badge number of its own, and a
replica that lost a race decides again on what won."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from agora_events.contracts.registration import AccreditationApproved
from agora_events.decider import InvariantViolated
from agora_events.store import EventStore
from agora_registration.application import Registration
from agora_registration.domain import Amend
from agora_registration.domain.ids import badge_number


def conflicts() -> float:
    labels = {"context": "registration"}
    return REGISTRY.get_sample_value("agora_append_conflicts_total", labels) or 0.0


async def register(registration: Registration, count: int) -> list[str]:
    outcomes = await asyncio.gather(
        *(
            registration.register(
                name=f"Participant {number}",
                email=f"person.{number}@example.org",
                category="delegate",
                delegation="UZB",
            )
            for number in range(count)
        )
    )
    return [outcome.ids["participant_id"] for outcome in outcomes]


async def approvals(store: EventStore, participant_id: str) -> list[AccreditationApproved]:
    history = await store.read(f"registration.participant.{participant_id}.*")
    return [r.event for r in history if isinstance(r.event, AccreditationApproved)]


async def test_two_replicas_approving_everyone_at_once_give_each_one_badge_of_its_own(
    store: EventStore,
) -> None:
    # Each replica has its own cache and locks; the first registered everyone (its cache is
    # warm), the second has seen nobody.
    first, second = Registration(store), Registration(store)
    participants = await register(first, 40)

    outcomes = await asyncio.gather(
        *(replica.approve(pid) for pid in participants for replica in (first, second)),
        return_exceptions=True,
    )

    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == len(participants)  # one of the two, for each participant
    assert all(isinstance(f, InvariantViolated) for f in failures), failures
    assert all("already approved" in str(f) for f in failures)
    badges = []
    for pid in participants:
        (approved,) = await approvals(store, pid)
        assert approved.badge is not None
        assert approved.badge.badge_number == badge_number(pid)
        assert approved.badge.issue == 1
        badges.append(approved.badge.badge_number)
    assert len(set(badges)) == len(participants)


async def test_an_approval_that_lost_a_race_is_decided_again_on_the_state_that_won(
    store: EventStore,
) -> None:
    stale, other = Registration(store), Registration(store)
    (pid,) = await register(stale, 1)  # ``stale`` caches the participant as a delegate
    await other.amend(Amend(pid, category="press"))
    before = conflicts()

    await stale.approve(pid)

    assert conflicts() == before + 1  # its first append was refused
    (approved,) = await approvals(store, pid)
    assert approved.badge is not None
    assert approved.badge.category == "press"
    assert (await stale.participant(pid)).category == "press"
