"""Whether a reactor's consumer has finished every event up to a sequence: ``caught_up`` on
its own, and ``Reactor.wait_for`` against a real server, where a consumer's pending counts
lag the publisher's acknowledgement."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS

from agora_events.reactor import Consumer, caught_up


@pytest.mark.parametrize("floor", [10, 11, 50])
def test_an_ack_floor_at_or_past_the_sequence_is_caught_up(floor: int) -> None:
    # Whatever the consumer follows next.
    assert caught_up(floor, floor + 1, 10)


def test_a_followed_event_between_the_floor_and_the_sequence_is_not_caught_up() -> None:
    assert not caught_up(9, 10, 10)
    assert not caught_up(7, 8, 10)


def test_events_after_the_floor_that_the_consumer_does_not_follow_are_no_work() -> None:
    assert caught_up(7, 11, 10)
    assert caught_up(7, None, 10)


def test_a_consumer_never_handed_anything_with_nothing_to_follow_is_caught_up() -> None:
    assert caught_up(0, None, 5)


async def test_the_next_followed_event_is_found_by_the_consumers_filters(
    nats_client: NATS,
) -> None:
    js = nats_client.jetstream()
    stored = []
    for subject in (
        "registration.participant.p1.registered",
        "registration.participant.p1.withdrawn",
        "registration.participant.p2.registered",
        "registration.participant.p2.rejected",
    ):
        stored.append((await js.publish(subject, b"{}")).seq)
    releases = Consumer(
        "REGISTRATION",
        "releases",
        ("registration.participant.*.withdrawn", "registration.participant.*.rejected"),
    )
    assert await releases.next_followed(js, after=stored[0] - 1) == stored[1]
    assert await releases.next_followed(js, after=stored[1]) == stored[3]
    assert await releases.next_followed(js, after=stored[3]) is None
