"""When a read model built from zero at a start has caught up: on reaching where the log
ended at that start, whatever has been stored since."""

from __future__ import annotations

from agora_events.projections.runner import Lag
from agora_events.service import building_behind


def lag(checkpoint: int, last: int, projection: str = "signatories") -> Lag:
    return Lag(projection, "DECLARATIONS", checkpoint, last, last - checkpoint)


def test_a_read_model_is_built_once_it_reaches_where_the_log_ended_at_its_start() -> None:
    targets: dict[tuple[str, str], int] = {}
    assert building_behind({"signatories"}, targets, [lag(0, 40)]) == {"signatories": 40}
    # Writes go on: the log's end moves every time it is looked at, the lag is never 0.
    assert building_behind({"signatories"}, targets, [lag(30, 70)]) == {"signatories": 40}
    assert building_behind({"signatories"}, targets, [lag(41, 90)]) == {"signatories": 0}


def test_nothing_pending_for_the_projection_is_built_even_short_of_the_target() -> None:
    targets: dict[tuple[str, str], int] = {}
    building_behind({"signatories"}, targets, [lag(0, 40)])
    nothing_it_reads = Lag("signatories", "DECLARATIONS", 10, 40, 0)
    assert building_behind({"signatories"}, targets, [nothing_it_reads]) == {"signatories": 0}


def test_a_projection_not_being_built_is_left_out() -> None:
    assert building_behind({"signatures"}, {}, [lag(0, 40)]) == {}
