"""The reactor: every stored event of REGISTRATION, AGENDA and DECLARATIONS (and the
disabling of an endpoint in this service's own stream) in, notices decided out.

One durable consumer per stream, one message at a time in stream order, acknowledged once
the notices the event causes are recorded in NOTIFICATIONS. Before reading whom an event
concerns, the handler waits until the ``recipients`` read model has applied the stream up to
that event, so the participant an event names is known; for a session moved or cancelled,
also REGISTRATION as far as it is stored then, so every place claimed before is known (and
for a waitlist place or a promotion, AGENDA, so the session is known). A
redelivered event decides the same notices (same ids) and records nothing new.

The dispatcher (``delivery.Dispatcher``) starts and stops with the reactor's consumers: the
shell keeps both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from faststream.nats import NatsBroker, NatsRouter

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import SessionCancelled, SessionMoved
from agora_events.contracts.notifications import EndpointDisabled
from agora_events.contracts.registration import PromotedFromWaitlist, Waitlisted
from agora_events.messaging import RETRY_DELAYS, Delivered, Delivery, SettledHook, events_of
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.runner import ProjectionRunner
from agora_events.reactor import Consumer
from agora_events.reactor import Reactor as ReactorBase
from agora_events.usecases import Caller

from . import queries
from .application import Notifications, structured
from .delivery import Dispatcher
from .domain import Trigger, decide_notices

log = logging.getLogger("agora.notifications.reactor")
ACTOR = "notifications-reactor"
WITH_RECIPIENTS = ("REGISTRATION", "AGENDA")
"""The streams the ``recipients`` read model follows."""
READ_MODEL_WAIT = 30.0


class Reactions:
    def __init__(
        self,
        broker: NatsBroker,
        commands: Notifications,
        db: ReadModelDatabase,
        runner: ProjectionRunner | None,
        dispatcher: Dispatcher | None,
    ) -> None:
        self._broker = broker
        self._commands = commands
        self._db = db
        self._runner = runner
        self._dispatcher = dispatcher
        self._window = timedelta(seconds=commands.settings.digest_window)

    async def react(self, event: DomainEvent, delivery: Delivery) -> None:
        if self._runner is not None and delivery.stream in WITH_RECIPIENTS:
            await self._recipients_at(delivery.stream, delivery.sequence)
            # What another stream says (who holds a place; what the session is): as far as
            # that stream holds now.
            if isinstance(event, SessionMoved | SessionCancelled):
                await self._recipients_at("REGISTRATION", await self._end_of("REGISTRATION"))
            elif isinstance(event, Waitlisted | PromotedFromWaitlist):
                await self._recipients_at("AGENDA", await self._end_of("AGENDA"))
        own = delivery.stream == "NOTIFICATIONS"
        async with self._db.session() as db:
            audience = await queries.audience(
                db, event, self._commands.settings.organiser_emails, webhooks=not own
            )
        envelope = delivery.envelope
        trigger = Trigger(
            event,
            envelope.id,
            envelope.type,
            envelope.time,
            structured(envelope, delivery.sequence),
        )
        drafts = decide_notices(trigger, audience, self._window)
        if not drafts:
            return
        caller = Caller(
            actor=ACTOR, correlation_id=envelope.correlationid, causation_id=envelope.id
        )
        new = await self._commands.decide(trigger, drafts, caller)
        log.info(
            "notices decided",
            extra={"event_id": envelope.id, "notices": len(drafts), "new": new},
        )
        if self._dispatcher is not None:
            self._dispatcher.wake()

    async def _end_of(self, stream: str) -> int:
        info = await self._broker.connection.jetstream().stream_info(stream)
        return int(info.state.last_seq)

    async def _recipients_at(self, stream: str, sequence: int) -> None:
        assert self._runner is not None
        await self._runner.wait_for(
            sequence, stream=stream, projection="recipients", timeout=READ_MODEL_WAIT
        )


class Reactor(ReactorBase):
    def __init__(
        self,
        broker: NatsBroker,
        commands: Notifications,
        db: ReadModelDatabase,
        runner: ProjectionRunner | None,
        *,
        dispatcher: Dispatcher | None = None,
        name: str = "notifications-reactor",
        retry_delays: Sequence[float] = RETRY_DELAYS,
        observe: SettledHook | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.reactions = Reactions(broker, commands, db, runner, dispatcher)
        description = "notifications reactor: decides notices"
        consumers = [
            Consumer("REGISTRATION", f"{name}-registration", ("registration.>",), description),
            Consumer("AGENDA", f"{name}-agenda", ("agenda.>",), description),
            Consumer("DECLARATIONS", f"{name}-declarations", ("declarations.>",), description),
            Consumer(
                "NOTIFICATIONS",
                f"{name}-endpoints",
                ("notifications.endpoint.*.disabled",),
                description,
            ),
        ]
        super().__init__(broker, consumers, name=name, retry_delays=retry_delays, observe=observe)

    def routes(self, router: NatsRouter) -> None:
        reactions = self.reactions
        for stream, what in (
            ("REGISTRATION", "Participants, accreditation and places: their notices."),
            ("AGENDA", "Sessions moved and cancelled: their notices."),
            ("DECLARATIONS", "Signatures and withdrawals: the organisers' notices."),
        ):
            subscriber = self.consumers[stream].subscribe(router, what)

            @subscriber
            async def followed(event: DomainEvent, delivery: Delivered) -> None:
                await reactions.react(event, delivery)

        disabled = self.consumers["NOTIFICATIONS"].subscribe(
            router, "Endpoints disabled: the organisers' notices."
        )

        @disabled(filter=events_of(EndpointDisabled))
        async def endpoint_disabled(event: EndpointDisabled, delivery: Delivered) -> None:
            await reactions.react(event, delivery)

    def keep_consumers(self, every: float = 1.0) -> None:
        super().keep_consumers(every)
        if self.dispatcher is not None:
            self.dispatcher.start()

    async def stop_keeping(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await super().stop_keeping()


__all__ = ["Reactions", "Reactor"]
