"""The decider protocol: pure functions from state and command to events, and back to state.

A service writes, per consistency scope, ``initial_state()``, ``decide(state, command)`` and
``evolve(state, event)``. None of them performs I/O; the command handler does that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E")


class Rejected(Exception):
    """A command refused by the domain. The message is meant for a person to act on."""

    status = 409

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(Rejected):
    """The command names something that does not exist."""

    status = 404


class InvalidCommand(Rejected):
    """The command is malformed or contradicts itself, whatever the state."""

    status = 422


class InvariantViolated(Rejected):
    """The command would break a rule of the domain given the current state."""

    status = 409


@dataclass(frozen=True, slots=True)
class Decider(Generic[S, C, E]):
    initial_state: Callable[[], S]
    decide: Callable[[S, C], Sequence[E]]
    evolve: Callable[[S, E], S]

    def fold(self, events: Iterable[E], state: S | None = None) -> S:
        current = self.initial_state() if state is None else state
        for event in events:
            current = self.evolve(current, event)
        return current
