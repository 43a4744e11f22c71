"""The reactor: events in, registration commands out, on FastStream.

Two durable JetStream pull consumers, bound to the existing streams (FastStream never creates
or changes a stream), each fetching one message at a time with ``max_ack_pending=1``, so in
stream order, and acknowledged only after the commands they cause have been appended:

* ``<name>-agenda`` on ``agenda.>``: a session scheduled, moved, changed or cancelled, or a
  room whose capacity changed. For each session concerned, the reactor reads the session's
  and its room's agenda history *up to that event* and folds it (``domain.agenda_sessions``),
  then tells the session's enrolment what the agenda says (``SyncSession``), which promotes
  from the waitlist when places appear, and moves or releases the claims of the people on its
  lists. The command's idempotency key is derived from the agenda event's id and the session.
* ``<name>-releases`` on ``registration.participant.*.withdrawn|rejected``: takes a participant
  who withdrew or was rejected off the lists of the sessions they held places in. The API
  does this at once as well; this consumer makes it certain after a crash.

The handlers are typed functions of the event (``agora_events.messaging`` decodes the
CloudEvent into its catalogue model) and of its ``Delivery`` (event id, stream sequence);
what they do is in ``Reactions``, which knows nothing of messaging.

Guarantees: at-least-once delivery, effectively once in effect. A redelivered event yields
the same commands with the same idempotency keys, and every command is decided on current
state (recording only changes, releasing only the claim named), so repeating one changes
nothing. A failure of the store or the network is retried with a growing delay; an event the
domain refuses (a bug, not a condition) or that cannot be read is logged with its id and
terminated, so it cannot block those behind it.

The broker (its connection, start and stop) belongs to ``main.py``; ``Reactor`` only
declares the routes (``router``) and reads its consumers' progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from faststream.middlewares import AckPolicy
from faststream.nats import NatsBroker, NatsRouter, PullSub
from faststream.nats.subscriber import PullStreamSubscriber
from nats.js.api import AckPolicy as ConsumerAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from agora_events.catalogue import DomainEvent
from agora_events.contracts.agenda import (
    RoomAdded,
    RoomCapacityChanged,
    SessionCancelled,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.contracts.registration import (
    AccreditationRejected,
    ClaimRef,
    ParticipantWithdrew,
    ReleaseReason,
)
from agora_events.messaging import (
    RETRY_DELAYS,
    Delivered,
    Delivery,
    JetStreamAcknowledgement,
    Outcome,
    Settled,
    SettledHook,
    decode_event,
    events_of,
    existing_stream,
)

from .domain import (
    AgendaSession,
    SyncSession,
    agenda_sessions,
    room_capacities,
    sessions_in_room,
    sync_command,
)

log = logging.getLogger("agora.registration.reactor")
# How often the consumers are checked. Short, because while a consumer is missing, FastStream's
# fetch loop retries without pause once its waiting fetch has run out (measured: most of a core).
KEEP_EVERY = 1.0
FINISHED = frozenset({Outcome.ACKNOWLEDGED, Outcome.TERMINATED})
ACTOR = "registration-reactor"
SessionEvent = SessionScheduled | SessionMoved | SessionDetailsChanged | SessionCancelled
RoomEvent = RoomAdded | RoomCapacityChanged
ReleaseEvent = ParticipantWithdrew | AccreditationRejected
SESSION_EVENTS = (SessionScheduled, SessionMoved, SessionDetailsChanged, SessionCancelled)
ROOM_EVENTS = (RoomAdded, RoomCapacityChanged)
RELEASE_EVENTS = (ParticipantWithdrew, AccreditationRejected)
FETCH_TIMEOUT = 5.0
"""Seconds one pull request waits for a message before the next is sent."""


class ReactorBehindError(Exception):
    """The reactor did not reach a sequence in the time given."""


# -- what the reactor needs ------------------------------------------------------------------


class Recorded(Protocol):
    @property
    def event(self) -> DomainEvent: ...


class AgendaHistory(Protocol):
    """Reads the log (``EventStore``)."""

    async def read(
        self, subject_filter: str, *, up_to: int | None = None
    ) -> Sequence[Recorded]: ...


class Registrar(Protocol):
    """Registration's use cases (``Registration``)."""

    async def sync_session(self, command: SyncSession, *, key: str, actor: str) -> object: ...

    async def release_places(
        self,
        participant_id: str,
        released: Sequence[ClaimRef],
        reason: ReleaseReason,
        actor: str | None,
    ) -> object: ...


# -- what to do --------------------------------------------------------------------------------


class Reactions:
    """The commands each followed event causes. No messaging here: the router calls these."""

    def __init__(self, history: AgendaHistory, registration: Registrar) -> None:
        self._history = history
        self._registration = registration

    async def session_changed(self, event: SessionEvent, delivery: Delivery) -> None:
        history = await self._history.read(
            f"agenda.session.{event.session_id}.*", up_to=delivery.sequence
        )
        sessions = agenda_sessions(r.event for r in history)
        await self._sync(sessions, [event.session_id], delivery)

    async def room_changed(self, event: RoomEvent, delivery: Delivery) -> None:
        history = await self._history.read("agenda.session.*.*", up_to=delivery.sequence)
        sessions = agenda_sessions(r.event for r in history)
        await self._sync(sessions, sessions_in_room(sessions, event.room_id), delivery)

    async def participant_left(self, event: ReleaseEvent, delivery: Delivery) -> None:
        reason: ReleaseReason = "withdrew" if isinstance(event, ParticipantWithdrew) else "rejected"
        await self._registration.release_places(event.participant_id, event.released, reason, ACTOR)

    async def _sync(
        self, sessions: dict[str, AgendaSession], concerned: Iterable[str], delivery: Delivery
    ) -> None:
        for session_id in concerned:
            if session_id in sessions:
                await self._sync_one(sessions[session_id], delivery)

    async def _sync_one(self, session: AgendaSession, delivery: Delivery) -> None:
        room = await self._history.read(f"agenda.room.{session.room_id}.*", up_to=delivery.sequence)
        command = sync_command(session, room_capacities(r.event for r in room))
        if command is None:
            log.warning(
                "session has no capacity and its room is unknown; not recorded",
                extra={"session_id": session.session_id, "room_id": session.room_id},
            )
            return
        key = f"agenda:{delivery.event_id}:{session.session_id}"
        await self._registration.sync_session(command, key=key, actor=ACTOR)


# -- the routes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Consumer:
    stream: str
    durable: str
    filters: tuple[str, ...]

    def subscribe(self, router: NatsRouter, description: str) -> PullStreamSubscriber:
        """This consumer's subscriber on ``router``: one message at a time, in stream order,
        settled by the router's ``JetStreamAcknowledgement``."""
        return router.subscriber(
            # One filter is the subscription's subject; several live in the config.
            self.filters[0] if len(self.filters) == 1 else "",
            stream=existing_stream(self.stream),
            durable=self.durable,
            config=self.config(),
            pull_sub=PullSub(batch_size=1, timeout=FETCH_TIMEOUT),
            ack_policy=AckPolicy.MANUAL,
            decoder=decode_event,
            no_reply=True,
            title=f"{self.durable}:subscribe",
            description=description,
        )

    def config(self, after: int = 0) -> ConsumerConfig:
        """Created as this when missing; an existing consumer of that name is bound as is.
        ``after``: start past that stream sequence instead of at the beginning."""
        one = len(self.filters) == 1
        return ConsumerConfig(
            durable_name=self.durable,
            description="registration reactor: issues registration commands",
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
            opt_start_seq=after + 1 if after else None,
            ack_policy=ConsumerAckPolicy.EXPLICIT,
            ack_wait=60.0,
            max_ack_pending=1,
            filter_subject=self.filters[0] if one else None,
            filter_subjects=None if one else list(self.filters),
        )


class Reactor:
    """The reactor's routes for a broker, and its consumers' progress.

    ``main.py`` includes ``router`` in its ``NatsBroker`` before starting it; the durable
    consumers are created (if missing) and bound when the broker starts."""

    def __init__(
        self,
        broker: NatsBroker,
        history: AgendaHistory,
        registration: Registrar,
        *,
        name: str = "registration-reactor",
        retry_delays: Sequence[float] = RETRY_DELAYS,
        observe: SettledHook | None = None,
    ) -> None:
        self._broker = broker
        self._observe = observe
        self.reactions = Reactions(history, registration)
        self.consumers = {
            "AGENDA": Consumer("AGENDA", f"{name}-agenda", ("agenda.>",)),
            "REGISTRATION": Consumer(
                "REGISTRATION",
                f"{name}-releases",
                (
                    "registration.participant.*.withdrawn",
                    "registration.participant.*.rejected",
                ),
            ),
        }
        self._progress = asyncio.Condition()
        self._finished: dict[str, int] = {}  # durable → highest sequence settled for good
        self._keeper: asyncio.Task[None] | None = None
        self.router = self._routes(retry_delays)

    def _routes(self, retry_delays: Sequence[float]) -> NatsRouter:
        acknowledgement = JetStreamAcknowledgement(retry_delays=retry_delays, settled=self._settled)
        router = NatsRouter(middlewares=[acknowledgement])
        reactions = self.reactions

        agenda = self.consumers["AGENDA"]
        agenda_events = agenda.subscribe(
            router, "The agenda's sessions and rooms, recorded as registration's terms."
        )

        @agenda_events(filter=events_of(*SESSION_EVENTS))
        async def session_changed(event: SessionEvent, delivery: Delivered) -> None:
            await reactions.session_changed(event, delivery)

        @agenda_events(filter=events_of(*ROOM_EVENTS))
        async def room_changed(event: RoomEvent, delivery: Delivered) -> None:
            await reactions.room_changed(event, delivery)

        @agenda_events
        async def not_followed(event: DomainEvent) -> None:
            """Speakers, editions and the like: nothing for registration to do."""

        releases = self.consumers["REGISTRATION"]
        release_events = releases.subscribe(
            router, "Withdrawals and rejections: the places they give up."
        )

        @release_events(filter=events_of(*RELEASE_EVENTS))
        async def participant_left(event: ReleaseEvent, delivery: Delivered) -> None:
            await reactions.participant_left(event, delivery)

        return router

    async def _settled(self, settled: Settled) -> None:
        if settled.consumer and settled.sequence and settled.outcome in FINISHED:
            durable, sequence = settled.consumer, settled.sequence
            self._finished[durable] = max(self._finished.get(durable, 0), sequence)
        async with self._progress:
            self._progress.notify_all()
        if self._observe is not None:
            await self._observe(settled)

    # -- keeping the consumers -----------------------------------------------------------------

    async def ensure_consumers(self) -> list[str]:
        """Re-create a consumer that has disappeared (deleted by hand, lost in a restore of
        the stream), starting after the last event this process finished with; returns the
        durable names re-created. FastStream's fetch loop picks the new consumer up."""
        js = self._broker.connection.jetstream()
        recreated = []
        for consumer in self.consumers.values():
            try:
                await js.consumer_info(consumer.stream, consumer.durable)
            except NotFoundError:
                after = self._finished.get(consumer.durable, 0)
                await js.add_consumer(consumer.stream, consumer.config(after=after))
                log.warning(
                    "consumer re-created",
                    extra={"consumer": consumer.durable, "after_sequence": after},
                )
                recreated.append(consumer.durable)
        return recreated

    def keep_consumers(self, every: float = KEEP_EVERY) -> None:
        """Check the consumers every ``every`` seconds until ``stop_keeping``."""
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep(every), name="reactor consumers")

    async def stop_keeping(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)  # a polling period, not a synchronisation
            try:
                await self.ensure_consumers()
            except Exception as exc:  # NATS away: the next round tries again
                log.warning("cannot check the consumers", extra={"error": type(exc).__name__})

    # -- progress ------------------------------------------------------------------------------

    async def lag(self) -> dict[str, int]:
        """Messages each consumer has not yet finished with (for /readyz)."""
        js = self._broker.connection.jetstream()
        lag = {}
        for consumer in self.consumers.values():
            info = await js.consumer_info(consumer.stream, consumer.durable)
            lag[consumer.durable] = info.num_pending + info.num_ack_pending
        return lag

    async def wait_for(
        self,
        sequence: int,
        *,
        stream: str = "AGENDA",
        timeout: float = 5.0,
    ) -> None:
        """Return once every event of ``stream`` up to ``sequence`` that the reactor follows
        has been handled; raise ReactorBehindError after ``timeout`` seconds."""
        consumer = self.consumers[stream]
        js = self._broker.connection.jetstream()

        async def caught_up() -> bool:
            info = await js.consumer_info(consumer.stream, consumer.durable)
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            return (floor or 0) >= sequence or (info.num_pending == 0 and info.num_ack_pending == 0)

        try:
            async with asyncio.timeout(timeout):
                while True:
                    async with self._progress:
                        if await caught_up():
                            return
                        await self._progress.wait()
        except TimeoutError:
            raise ReactorBehindError(
                f"the reactor has not handled {stream} up to {sequence} within {timeout}s"
            ) from None
