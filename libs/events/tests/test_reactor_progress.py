"""``caught_up``: whether a reactor's consumer has finished every event up to a sequence,
read from consumer infos built by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nats.js.api import ConsumerConfig, ConsumerInfo, SequenceInfo

from agora_events.reactor import caught_up


def consumer(
    *,
    delivered: int | None,
    ack_floor: int | None,
    pending: int = 0,
    ack_pending: int = 0,
) -> ConsumerInfo:
    """A consumer that has been handed up to stream sequence ``delivered`` and acknowledged
    everything up to ``ack_floor``; None leaves the field out as a server may."""
    return ConsumerInfo(
        name="agenda-reactor",
        stream_name="AGENDA",
        config=ConsumerConfig(durable_name="agenda-reactor"),
        created=datetime(2025, 1, 1, tzinfo=UTC),
        delivered=None if delivered is None else SequenceInfo(delivered, delivered),
        ack_floor=None if ack_floor is None else SequenceInfo(ack_floor, ack_floor),
        num_pending=pending,
        num_ack_pending=ack_pending,
    )


@pytest.mark.parametrize("floor", [10, 11, 50])
def test_an_ack_floor_at_or_past_the_sequence_is_caught_up(floor: int) -> None:
    # Whatever else is going on past the sequence asked for.
    assert caught_up(consumer(delivered=floor + 1, ack_floor=floor, pending=3, ack_pending=1), 10)


def test_an_ack_floor_short_of_the_sequence_with_work_in_hand_is_not_caught_up() -> None:
    assert not caught_up(consumer(delivered=10, ack_floor=9, ack_pending=1), 10)


def test_nothing_pending_and_everything_delivered_acknowledged_is_caught_up() -> None:
    # The events up to 10 after 7 are not ones this consumer follows.
    assert caught_up(consumer(delivered=7, ack_floor=7), 10)


def test_a_consumer_that_was_never_handed_anything_and_has_nothing_to_do_is_caught_up() -> None:
    assert caught_up(consumer(delivered=0, ack_floor=0), 5)
    assert caught_up(consumer(delivered=None, ack_floor=None), 5)


def test_a_delivery_handed_back_for_a_later_retry_is_not_caught_up() -> None:
    # Neither pending nor awaiting its ack while its retry delay runs.
    assert not caught_up(consumer(delivered=8, ack_floor=7, pending=0, ack_pending=0), 10)
    assert not caught_up(consumer(delivered=8, ack_floor=None, pending=0, ack_pending=0), 10)


@pytest.mark.parametrize("pending", [1, 4])
def test_events_still_pending_are_not_caught_up(pending: int) -> None:
    assert not caught_up(consumer(delivered=7, ack_floor=7, pending=pending), 10)


def test_a_delivery_awaiting_its_acknowledgement_is_not_caught_up() -> None:
    assert not caught_up(consumer(delivered=8, ack_floor=7, ack_pending=1), 10)
