"""The notice aggregate: decided once, then delivered, or dead-lettered and dealt with.

A command that would repeat what the log already says decides nothing (an empty list): a
redelivered event, a restart or a second worker finds the notice as it is and leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, assert_never

from agora_events.catalogue import DomainEvent
from agora_events.contracts.notifications import (
    DeliveryAttemptFailed,
    NoticeDeadLettered,
    NoticeDecided,
    NoticeDelivered,
    NoticeDiscarded,
    NoticeRequeued,
)
from agora_events.decider import Decider, InvariantViolated, NotFound, members

NoticeEvent = (
    NoticeDecided
    | DeliveryAttemptFailed
    | NoticeDelivered
    | NoticeDeadLettered
    | NoticeRequeued
    | NoticeDiscarded
)
Status = Literal["none", "pending", "delivered", "dead", "discarded"]


@dataclass(frozen=True, slots=True)
class Notice:
    notice_id: str = ""
    status: Status = "none"
    attempts: int = 0
    """Attempts since it was decided or last requeued."""
    decided: NoticeDecided | None = None


# -- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decide:
    decision: NoticeDecided

    @property
    def notice_id(self) -> str:
        return self.decision.notice_id


@dataclass(frozen=True, slots=True)
class RecordFailure:
    notice_id: str
    attempt: int
    error: str
    next_attempt_at: datetime | None
    """None: the schedule has run out (or the remote said never again): a dead letter."""
    status: int | None = None
    latency_ms: int | None = None
    dead_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordDelivery:
    notice_id: str
    attempt: int
    message_id: str
    status: int | None = None
    latency_ms: int | None = None
    digest_of: tuple[str, ...] = ()
    carried_by: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    notice_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Requeue:
    notice_id: str


@dataclass(frozen=True, slots=True)
class Discard:
    notice_id: str
    reason: str | None = None


NoticeCommand = Decide | RecordFailure | RecordDelivery | DeadLetter | Requeue | Discard


def notice_scope(command: NoticeCommand) -> str:
    return f"notifications.notice.{command.notice_id}.*"


def decide(state: Notice, command: NoticeCommand) -> list[NoticeEvent]:
    match command:
        case Decide(decision=decision):
            return [decision] if state.status == "none" else []
        case RecordDelivery():
            if state.status != "pending":
                return []
            return [
                NoticeDelivered(
                    notice_id=command.notice_id,
                    attempt=command.attempt,
                    message_id=command.message_id,
                    status=command.status,
                    latency_ms=command.latency_ms,
                    digest_of=command.digest_of,
                    carried_by=command.carried_by,
                )
            ]
        case RecordFailure():
            if state.status != "pending" or command.attempt <= state.attempts:
                return []
            failed: list[NoticeEvent] = [
                DeliveryAttemptFailed(
                    notice_id=command.notice_id,
                    attempt=command.attempt,
                    error=command.error,
                    status=command.status,
                    latency_ms=command.latency_ms,
                    next_attempt_at=command.next_attempt_at,
                )
            ]
            if command.next_attempt_at is None:
                reason = command.dead_reason or f"gave up after {command.attempt} attempts"
                failed.append(
                    NoticeDeadLettered(
                        notice_id=command.notice_id, attempts=command.attempt, reason=reason
                    )
                )
            return failed
        case DeadLetter(reason=reason):
            if state.status != "pending":
                return []
            return [
                NoticeDeadLettered(
                    notice_id=command.notice_id, attempts=state.attempts, reason=reason
                )
            ]
        case Requeue():
            _dead_letter(state, command.notice_id)
            return [NoticeRequeued(notice_id=command.notice_id)]
        case Discard(reason=reason):
            _dead_letter(state, command.notice_id)
            return [NoticeDiscarded(notice_id=command.notice_id, reason=reason)]
        case _:
            assert_never(command)


def _dead_letter(state: Notice, notice_id: str) -> None:
    if state.status == "none":
        raise NotFound(f"there is no notice {notice_id}")
    if state.status != "dead":
        raise InvariantViolated(f"notice {notice_id} is {state.status}, not a dead letter")


def evolve(state: Notice, event: NoticeEvent) -> Notice:
    match event:
        case NoticeDecided():
            return Notice(event.notice_id, "pending", 0, event)
        case DeliveryAttemptFailed():
            return replace(state, attempts=event.attempt)
        case NoticeDelivered():
            return replace(state, status="delivered", attempts=event.attempt)
        case NoticeDeadLettered():
            return replace(state, status="dead")
        case NoticeRequeued():
            return replace(state, status="pending", attempts=0)
        case NoticeDiscarded():
            return replace(state, status="discarded")
        case _:
            assert_never(event)


def _evolve_stored(state: Notice, event: DomainEvent) -> Notice:
    """``evolve`` for whatever the store hands over: another aggregate's event changes
    nothing."""
    return evolve(state, event) if isinstance(event, NoticeEvent) else state


notice_decider: Decider[Notice, NoticeCommand, DomainEvent] = Decider(
    Notice, decide, _evolve_stored, events=members(NoticeEvent)
)
