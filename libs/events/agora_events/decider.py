"""The decider protocol: pure functions from state and command to events, and back to state.

A service writes, per consistency scope, ``initial_state()``, ``decide(state, command)`` and
``evolve(state, event)``, and names the events its aggregate records (``events``, the
members of the aggregate's event union). None of them performs I/O; the command handler
does that.

Rejections are kinds, not HTTP statuses: the HTTP edge maps each kind to a status in one
table (``agora_events.http``); the CLI maps them to exit codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E")


class Rejected(Exception):
    """A command refused by the domain. The message is meant for a person to act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(Rejected):
    """The command names something that does not exist."""


class InvalidCommand(Rejected):
    """The command is malformed or contradicts itself, whatever the state."""


class InvariantViolated(Rejected):
    """The command would break a rule of the domain given the current state."""


def members(union: Any) -> tuple[type[Any], ...]:
    """The classes of a union type (``A | B | C``), or the one class given."""
    found = get_args(union)
    return tuple(found) if found else (union,)


@dataclass(frozen=True, slots=True)
class Decider(Generic[S, C, E]):
    initial_state: Callable[[], S]
    decide: Callable[[S, C], Sequence[E]]
    evolve: Callable[[S, E], S]
    events: tuple[type[Any], ...] = ()
    """The event classes this decider's aggregate records; empty means "not declared"."""

    def fold(self, events: Iterable[E], state: S | None = None) -> S:
        current = self.initial_state() if state is None else state
        for event in events:
            current = self.evolve(current, event)
        return current

    def records(self, event: object) -> bool:
        """Whether ``event`` is one of this aggregate's own events."""
        return not self.events or isinstance(event, self.events)
