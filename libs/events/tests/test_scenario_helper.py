"""The given/when/then helper of ``agora_events.testing``, on a tiny pure decider."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from agora_events.decider import (
    Decider,
    InvalidCommand,
    InvariantViolated,
    NotFound,
    Rejected,
    members,
)
from agora_events.testing.scenario import ForeignEvent, given, given_commands, history_of


@dataclass(frozen=True)
class Opened:
    till: str


@dataclass(frozen=True)
class Deposited:
    amount: int
    balance: int
    """The balance after the deposit: it shows which state the command was decided on."""


@dataclass(frozen=True)
class Closed:
    till: str


@dataclass(frozen=True)
class TicketIssued:
    """An event of another aggregate."""

    ticket: str


TillEvent = Opened | Deposited | Closed


@dataclass(frozen=True)
class OpenTill:
    till: str


@dataclass(frozen=True)
class Deposit:
    amount: int


@dataclass(frozen=True)
class CloseTill:
    pass


@dataclass(frozen=True)
class Till:
    name: str | None = None
    balance: int = 0
    closed: bool = False


def decide(state: Till, command: object) -> list[object]:
    match command:
        case OpenTill(till):
            if state.name is not None:
                raise InvariantViolated(f"till {state.name} is already open")
            return [Opened(till)]
        case Deposit(amount):
            if state.name is None:
                raise NotFound("no till is open")
            if amount <= 0:
                raise InvalidCommand(f"a deposit must be positive, not {amount}")
            if state.closed:
                raise InvariantViolated(f"till {state.name} is closed")
            return [Deposited(amount, state.balance + amount)]
        case CloseTill():
            return [Closed(state.name or "")]
    raise TypeError(command)


def evolve(state: Till, event: object) -> Till:
    match event:
        case Opened(till):
            return Till(name=till)
        case Deposited(balance=balance):
            return replace(state, balance=balance)
        case Closed():
            return replace(state, closed=True)
    return state


till_decider: Decider[Till, object, object] = Decider(
    Till, decide, evolve, events=members(TillEvent)
)
undeclared: Decider[Till, object, object] = replace(till_decider, events=())


def test_a_given_event_the_aggregate_does_not_record_is_refused_by_name() -> None:
    with pytest.raises(ForeignEvent) as refused:
        given(till_decider, Opened("t1"), TicketIssued("x"))
    message = str(refused.value)
    assert "TicketIssued" in message
    assert "Closed, Deposited, Opened" in message, "it names what the decider records"


def test_a_foreign_event_is_refused_whatever_its_place_and_named_once() -> None:
    with pytest.raises(ForeignEvent, match=r"does not record: TicketIssued \(") as refused:
        given(till_decider, TicketIssued("x"), Opened("t1"), TicketIssued("y"))
    assert str(refused.value).count("TicketIssued") == 1
    assert isinstance(refused.value, AssertionError), "it fails the test, not the domain"


def test_given_events_of_the_aggregate_make_its_state() -> None:
    scenario = given(till_decider, Opened("t1"), Deposited(5, 5))
    assert scenario.state == Till(name="t1", balance=5)


def test_a_decider_that_declares_no_events_accepts_any_given_event() -> None:
    scenario = given(undeclared, Opened("t1"), TicketIssued("x"), Deposited(3, 3))
    assert scenario.state == Till(name="t1", balance=3)
    scenario.when(Deposit(2)).then(Deposited(2, 5))


def test_history_decides_each_command_on_the_state_the_ones_before_it_left() -> None:
    history = history_of(till_decider, OpenTill("t1"), Deposit(5), Deposit(7), CloseTill())
    assert history == [Opened("t1"), Deposited(5, 5), Deposited(7, 12), Closed("t1")]


def test_history_starts_from_the_state_given() -> None:
    start = Till(name="t9", balance=100)
    assert history_of(till_decider, Deposit(1), state=start) == [Deposited(1, 101)]


def test_history_raises_the_domains_rejection_of_a_refused_command() -> None:
    with pytest.raises(InvariantViolated, match="till t1 is already open"):
        history_of(till_decider, OpenTill("t1"), Deposit(5), OpenTill("t1"))
    with pytest.raises(NotFound, match="no till is open"):
        history_of(till_decider, Deposit(5))
    with pytest.raises(InvariantViolated, match="closed"):
        history_of(till_decider, OpenTill("t1"), CloseTill(), Deposit(1))


def test_a_scenario_given_by_commands_decides_the_next_command_on_their_history() -> None:
    scenario = given_commands(till_decider, OpenTill("t1"), Deposit(5))
    assert scenario.history == (Opened("t1"), Deposited(5, 5))
    scenario.when(Deposit(7)).then(Deposited(7, 12))
    assert scenario.when(Deposit(7)).then_state() == Till(name="t1", balance=12)
    rejection = scenario.when(Deposit(0)).then_rejects(InvalidCommand, "positive")
    assert rejection.reason == "a deposit must be positive, not 0"


def test_a_scenario_given_by_commands_fails_loudly_on_a_refused_command() -> None:
    with pytest.raises(InvariantViolated):
        given_commands(till_decider, OpenTill("t1"), OpenTill("t2"))


def test_then_fails_when_the_command_yields_other_events() -> None:
    with pytest.raises(AssertionError, match="unexpected events"):
        given_commands(till_decider, OpenTill("t1")).when(Deposit(5)).then(Deposited(5, 6))


def test_then_rejects_fails_when_the_command_is_accepted_or_the_reason_differs() -> None:
    scenario = given_commands(till_decider, OpenTill("t1"))
    with pytest.raises(AssertionError, match="expected Rejected"):
        scenario.when(Deposit(5)).then_rejects()
    with pytest.raises(AssertionError, match="does not mention"):
        scenario.when(OpenTill("t1")).then_rejects(InvariantViolated, "closed")
    assert isinstance(scenario.when(OpenTill("t1")).then_rejects(), Rejected)
