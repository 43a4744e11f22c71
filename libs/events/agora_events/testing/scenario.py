"""Given/when/then for pure deciders.

given(session_decider, SessionScheduled(...)).when(MoveSession(...)).then(SessionMoved(...))
given(session_decider).when(MoveSession(...)).then_rejects(NotFound, "no session")
given_commands(agenda_decider, PlanEdition(...), AddRoom(...)).when(...)   # history decided

A given event the decider's aggregate does not record (a ``ParticipantRegistered`` handed to
the enrolment decider) fails the test at once instead of being silently folded away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..decider import Decider, Rejected

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E")
R = TypeVar("R", bound=Rejected)


class ForeignEvent(AssertionError):
    """A given event that belongs to another decider's aggregate."""


@dataclass(frozen=True)
class Scenario(Generic[S, C, E]):
    decider: Decider[S, C, E]
    history: Sequence[E] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        foreign = [event for event in self.history if not self.decider.records(event)]
        if foreign:
            names = ", ".join(sorted({type(event).__name__ for event in foreign}))
            known = ", ".join(sorted(kind.__name__ for kind in self.decider.events))
            raise ForeignEvent(
                f"given events this decider's aggregate does not record: {names} "
                f"(it records {known})"
            )

    @property
    def state(self) -> S:
        return self.decider.fold(self.history)

    def when(self, command: C) -> Outcome[S, C, E]:
        return Outcome(self, command)


@dataclass(frozen=True)
class Outcome(Generic[S, C, E]):
    scenario: Scenario[S, C, E]
    command: C

    def _run(self) -> list[E]:
        return list(self.scenario.decider.decide(self.scenario.state, self.command))

    def then(self, *expected: E) -> list[E]:
        """Assert the command yields exactly ``expected``, in order."""
        produced = self._run()
        if produced != list(expected):
            raise AssertionError(
                "unexpected events\n"
                f"  command:  {self.command!r}\n"
                f"  expected: {list(expected)!r}\n"
                f"  produced: {produced!r}"
            )
        return produced

    def then_yields(self) -> list[E]:
        """Return the events for assertions of your own."""
        return self._run()

    def then_rejects(self, kind: type[R] = Rejected, match: str | None = None) -> R:  # type: ignore[assignment]
        """Assert the command is refused with ``kind``, its reason containing ``match``."""
        try:
            produced = self._run()
        except kind as rejection:
            if match is not None and match.lower() not in rejection.reason.lower():
                raise AssertionError(
                    f"rejected as expected, but the reason {rejection.reason!r} "
                    f"does not mention {match!r}"
                ) from rejection
            return rejection
        raise AssertionError(f"expected {kind.__name__}, but the command yielded {produced!r}")

    def then_state(self) -> Any:
        """The state after evolving the produced events."""
        return self.scenario.decider.fold(self._run(), self.scenario.state)


def given(decider: Decider[S, C, E], *history: E) -> Scenario[S, C, E]:
    return Scenario(decider, tuple(history))


def history_of(decider: Decider[S, C, E], *commands: C, state: S | None = None) -> list[E]:
    """The events ``commands`` yield when decided one after another, each on the state the
    ones before it left. A command the decider refuses fails loudly: a history is a fixture."""
    current = decider.initial_state() if state is None else state
    events: list[E] = []
    for command in commands:
        produced = list(decider.decide(current, command))
        current = decider.fold(produced, current)
        events += produced
    return events


def given_commands(decider: Decider[S, C, E], *commands: C) -> Scenario[S, C, E]:
    """A scenario whose history is what ``commands`` yield, decided in turn."""
    return Scenario(decider, tuple(history_of(decider, *commands)))
