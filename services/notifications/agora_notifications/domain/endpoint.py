"""The webhook endpoint aggregate: where to post, what it subscribes to, its secret's
generation, and whether deliveries go out."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, assert_never

from agora_events.catalogue import DomainEvent
from agora_events.contracts.notifications import (
    EndpointDisabled,
    EndpointEnabled,
    EndpointRegistered,
    EndpointRemoved,
    EndpointSecretRotated,
)
from agora_events.decider import Decider, InvalidCommand, InvariantViolated, NotFound, members

EndpointEvent = (
    EndpointRegistered
    | EndpointSecretRotated
    | EndpointDisabled
    | EndpointEnabled
    | EndpointRemoved
)
Status = Literal["none", "enabled", "disabled", "removed"]
MAX_PATTERNS = 32


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: str = ""
    status: Status = "none"
    url: str = ""
    event_types: tuple[str, ...] = ()
    generation: int = 0
    previous_valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Register:
    endpoint_id: str
    url: str
    event_types: tuple[str, ...]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RotateSecret:
    endpoint_id: str
    previous_valid_until: datetime


@dataclass(frozen=True, slots=True)
class Disable:
    endpoint_id: str
    reason: str
    failing_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Enable:
    endpoint_id: str


@dataclass(frozen=True, slots=True)
class Remove:
    endpoint_id: str


EndpointCommand = Register | RotateSecret | Disable | Enable | Remove


def endpoint_scope(command: EndpointCommand) -> str:
    return f"notifications.endpoint.{command.endpoint_id}.*"


def check_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """Event-type patterns: an exact ce-type, or a prefix ending in ``*``
    (``agora.agenda.session.*``; ``*`` alone is every event)."""
    if not patterns:
        raise InvalidCommand("subscribe to at least one event type pattern")
    if len(patterns) > MAX_PATTERNS:
        raise InvalidCommand(f"at most {MAX_PATTERNS} event type patterns")
    for pattern in patterns:
        body = pattern[:-1] if pattern.endswith("*") else pattern
        if "*" in body or not all(part.isidentifier() or part == "" for part in body.split(".")):
            raise InvalidCommand(
                f"event type pattern {pattern!r}: give a ce-type such as "
                "'agora.agenda.session.moved.v1', or a prefix ending in '*'"
            )
    return tuple(dict.fromkeys(patterns))


def subscribes(patterns: tuple[str, ...], event_type: str) -> bool:
    return any(
        event_type.startswith(p[:-1]) if p.endswith("*") else event_type == p for p in patterns
    )


def decide(state: Endpoint, command: EndpointCommand) -> list[EndpointEvent]:
    match command:
        case Register():
            if state.status != "none":
                raise InvariantViolated(f"endpoint {command.endpoint_id} already exists")
            return [
                EndpointRegistered(
                    endpoint_id=command.endpoint_id,
                    url=command.url,
                    event_types=check_patterns(command.event_types),
                    description=command.description,
                )
            ]
        case RotateSecret():
            _existing(state, command.endpoint_id)
            return [
                EndpointSecretRotated(
                    endpoint_id=command.endpoint_id,
                    generation=state.generation + 1,
                    previous_valid_until=command.previous_valid_until,
                )
            ]
        case Disable():
            _existing(state, command.endpoint_id)
            if state.status == "disabled":
                return []
            return [
                EndpointDisabled(
                    endpoint_id=command.endpoint_id,
                    reason=command.reason,
                    failing_since=command.failing_since,
                )
            ]
        case Enable():
            _existing(state, command.endpoint_id)
            return (
                [EndpointEnabled(endpoint_id=command.endpoint_id)]
                if state.status == "disabled"
                else []
            )
        case Remove():
            _existing(state, command.endpoint_id)
            return [EndpointRemoved(endpoint_id=command.endpoint_id)]
        case _:
            assert_never(command)


def _existing(state: Endpoint, endpoint_id: str) -> None:
    if state.status in ("none", "removed"):
        raise NotFound(f"there is no webhook endpoint {endpoint_id}")


def evolve(state: Endpoint, event: EndpointEvent) -> Endpoint:
    match event:
        case EndpointRegistered():
            return Endpoint(event.endpoint_id, "enabled", event.url, event.event_types, 1)
        case EndpointSecretRotated():
            return replace(
                state,
                generation=event.generation,
                previous_valid_until=event.previous_valid_until,
            )
        case EndpointDisabled():
            return replace(state, status="disabled")
        case EndpointEnabled():
            return replace(state, status="enabled")
        case EndpointRemoved():
            return replace(state, status="removed")
        case _:
            assert_never(event)


def _evolve_stored(state: Endpoint, event: DomainEvent) -> Endpoint:
    """``evolve`` for whatever the store hands over: another aggregate's event changes
    nothing."""
    return evolve(state, event) if isinstance(event, EndpointEvent) else state


endpoint_decider: Decider[Endpoint, EndpointCommand, DomainEvent] = Decider(
    Endpoint, decide, _evolve_stored, events=members(EndpointEvent)
)
