"""The reactor: registration's participant events in, declarations' standing records out.

One durable JetStream pull consumer, ``<name>-registration`` on
``registration.participant.>``, fetching one message at a time (``max_ack_pending=1``, so in
stream order), acknowledged only after the standing it causes has been appended. For each
event that changes what declarations cares about (registration, contact details, category
or delegation, approval, rejection, withdrawal), it reads the participant's REGISTRATION
history *up to that event*, folds it into a standing (``domain.standing_from``) and records
it (``RecordStanding``), keyed by the registration event's id.

Guarantees: at-least-once delivery, effectively once in effect: a redelivered event yields
the same standing under the same key, and a standing older than the one recorded changes
nothing. How long a withdrawal takes to reach declarations is this consumer's lag (readiness
reports it): see docs/declarations.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from faststream.nats import NatsBroker, NatsRouter

from agora_events.catalogue import DomainEvent
from agora_events.messaging import RETRY_DELAYS, Delivered, Delivery, SettledHook, events_of
from agora_events.reactor import Consumer, ReactorBehindError
from agora_events.reactor import Reactor as ReactorBase
from agora_events.usecases import Caller

from .domain import RecordStanding
from .domain.registration_terms import FOLLOWED, standing_from

log = logging.getLogger("agora.declarations.reactor")
ACTOR = "declarations-reactor"


class Recorded(Protocol):
    @property
    def event(self) -> DomainEvent: ...


class RegistrationHistory(Protocol):
    """Reads the log (``EventStore``)."""

    async def read(
        self, subject_filter: str, *, up_to: int | None = None
    ) -> Sequence[Recorded]: ...


class Recorder(Protocol):
    """Declarations' use cases (``Declarations``)."""

    async def record_standing(self, command: RecordStanding, caller: Caller) -> object: ...


class Reactions:
    """The commands each followed event causes. No messaging here: the router calls these."""

    def __init__(self, history: RegistrationHistory, declarations: Recorder) -> None:
        self._history = history
        self._declarations = declarations

    async def participant_changed(self, participant_id: str, delivery: Delivery) -> None:
        history = await self._history.read(
            f"registration.participant.{participant_id}.*", up_to=delivery.sequence
        )
        standing = standing_from((r.event for r in history), delivery.sequence)
        if standing is None:
            log.warning(
                "participant event without a registration before it; nothing recorded",
                extra={"event_id": delivery.event_id},
            )
            return
        caller = Caller.reacting_to(
            ACTOR,
            event_id=delivery.event_id,
            correlation_id=delivery.envelope.correlationid,
            key=f"registration:{delivery.event_id}",
        )
        await self._declarations.record_standing(standing, caller)


class Reactor(ReactorBase):
    """The reactor's consumer and routes; ``wait_for`` defaults to the REGISTRATION stream."""

    def __init__(
        self,
        broker: NatsBroker,
        history: RegistrationHistory,
        declarations: Recorder,
        *,
        name: str = "declarations-reactor",
        retry_delays: Sequence[float] = RETRY_DELAYS,
        observe: SettledHook | None = None,
    ) -> None:
        self.reactions = Reactions(history, declarations)
        consumers = [
            Consumer(
                "REGISTRATION",
                f"{name}-registration",
                ("registration.participant.>",),
                "declarations reactor: records what registration says of participants",
            )
        ]
        super().__init__(broker, consumers, name=name, retry_delays=retry_delays, observe=observe)

    def routes(self, router: NatsRouter) -> None:
        reactions = self.reactions
        participants = self.consumers["REGISTRATION"].subscribe(
            router, "Participants' names, categories, delegations and accreditation."
        )

        @participants(filter=events_of(*FOLLOWED))
        async def participant_changed(event: DomainEvent, delivery: Delivered) -> None:
            await reactions.participant_changed(event.aggregate_id, delivery)

        @participants
        async def not_followed(event: DomainEvent) -> None:
            """Badges, check-ins and places: nothing for declarations to do."""


__all__ = ["Reactions", "Reactor", "ReactorBehindError", "Recorder"]
