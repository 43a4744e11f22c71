"""The steps of a service's stop: each runs to its end, bounded, even while the task that
stops is cancelled again and again (a start being stopped is, see ``_Stopping``)."""

from __future__ import annotations

import asyncio

import pytest

from agora_events import service


class Step:
    """A stop step that waits until the test lets it finish."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.finish = asyncio.Event()
        self.finished = False

    async def __call__(self) -> None:
        self.entered.set()
        await self.finish.wait()
        self.finished = True


async def test_a_stop_step_runs_to_its_end_through_repeated_cancels_then_raises_the_cancel():
    step = Step()
    stopping = asyncio.create_task(service._bounded("database", step))
    await step.entered.wait()
    for _ in range(3):
        stopping.cancel()
        await asyncio.sleep(0)  # let the cancel land in the waiting step's shield
    assert not stopping.done()
    step.finish.set()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert step.finished


async def test_a_stop_step_that_is_not_cancelled_ends_quietly():
    step = Step()
    stopping = asyncio.create_task(service._bounded("database", step))
    await step.entered.wait()
    step.finish.set()
    await stopping
    assert step.finished


async def test_a_failing_stop_step_is_logged_and_the_stop_goes_on(caplog):
    async def failing() -> None:
        raise RuntimeError("gone")

    await service._bounded("heartbeat", failing)
    failed = [r for r in caplog.records if r.getMessage() == "stop step failed"]
    assert [(r.step, r.error) for r in failed] == [("heartbeat", "RuntimeError")]  # type: ignore[attr-defined]
