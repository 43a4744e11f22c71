"""A tiny decider used to test the store's mechanisms, registered in a private registry."""

from __future__ import annotations

from dataclasses import dataclass

from agora_events.catalogue import DomainEvent, EventRegistry
from agora_events.decider import Decider, InvariantViolated, NotFound

registry = EventRegistry()


@registry.event("agenda", "counter", "opened", id_field="counter_id")
class CounterOpened(DomainEvent):
    counter_id: str


@registry.event("agenda", "counter", "incremented", id_field="counter_id")
class Incremented(DomainEvent):
    counter_id: str
    tag: str


@dataclass(frozen=True)
class Open:
    counter_id: str


@dataclass(frozen=True)
class Increment:
    counter_id: str
    tag: str


@dataclass(frozen=True)
class OpenWithTags:
    counter_id: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Counter:
    opened: bool = False
    tags: tuple[str, ...] = ()


def decide(state: Counter, command: object) -> list[DomainEvent]:
    match command:
        case Open(counter_id):
            if state.opened:
                raise InvariantViolated(f"counter {counter_id} is already open")
            return [CounterOpened(counter_id=counter_id)]
        case OpenWithTags(counter_id, tags):
            if state.opened:
                raise InvariantViolated(f"counter {counter_id} is already open")
            return [CounterOpened(counter_id=counter_id)] + [
                Incremented(counter_id=counter_id, tag=tag) for tag in tags
            ]
        case Increment(counter_id, tag):
            if not state.opened:
                raise NotFound(f"no counter {counter_id}")
            return [Incremented(counter_id=counter_id, tag=tag)]
    raise TypeError(command)


def evolve(state: Counter, event: DomainEvent) -> Counter:
    match event:
        case CounterOpened():
            return Counter(opened=True)
        case Incremented(tag=tag):
            return Counter(opened=True, tags=(*state.tags, tag))
    return state


counter_decider: Decider[Counter, object, DomainEvent] = Decider(Counter, decide, evolve)


def scope(command: object) -> str:
    return f"agenda.counter.{command.counter_id}.*"  # type: ignore[attr-defined]
