"""Queueing per consistency scope (``ScopeLocks``): one at a time per scope, scopes apart.

The coroutines are stepped by hand (``send``/``throw``), so each test says exactly which one
waits, with no scheduling to wait for."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from agora_events.usecases import ScopeLocks


def step(coroutine: Coroutine[Any, Any, None]) -> bool:
    """Run ``coroutine`` until it waits; True when it finished instead."""
    try:
        coroutine.send(None)
    except StopIteration:
        return True
    return False


async def test_commands_on_one_scope_queue_and_other_scopes_do_not_wait() -> None:
    locks = ScopeLocks()
    assert step(locks.acquire("a.1.*"))
    waiting = locks.acquire("a.1.*")
    assert not step(waiting)

    assert step(locks.acquire("a.2.*"))  # another scope: at once

    locks.release("a.1.*")  # hands the scope to the one waiting
    assert step(waiting)
    locks.release("a.1.*")
    locks.release("a.2.*")
    assert locks._locks == {}


async def test_a_command_cancelled_while_it_waits_leaves_no_lock_behind() -> None:
    locks = ScopeLocks()
    assert step(locks.acquire("a.1.*"))
    waiting = locks.acquire("a.1.*")
    assert not step(waiting)
    with pytest.raises(asyncio.CancelledError):
        waiting.throw(asyncio.CancelledError())

    locks.release("a.1.*")

    assert locks._locks == {}
    async with locks.hold("a.1.*"):
        assert list(locks._locks) == ["a.1.*"]
    assert locks._locks == {}
