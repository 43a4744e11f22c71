"""The reactor: events in, registration commands out.

Two durable pull consumers, each handled one message at a time (``max_ack_pending=1``, so
in stream order), acknowledged only after the commands they cause have been appended:

* ``<name>-agenda`` on ``agenda.>``: a session scheduled, moved, changed or cancelled, or a
  room whose capacity changed. For each session concerned, the reactor reads the session's
  and its room's agenda history *up to that event* and folds it (``domain.agenda_sessions``),
  then tells the session's enrolment what the agenda says (``SyncSession``), which promotes
  from the waitlist when places appear, and moves or releases the claims of the people on its
  lists. The command's idempotency key is derived from the agenda event's id and the session.
* ``<name>-releases`` on ``registration.participant.*.withdrawn|rejected``: takes a participant
  who withdrew or was rejected off the lists of the sessions they held places in. The API
  does this at once as well; this consumer makes it certain after a crash.

Guarantees: at-least-once delivery, effectively once in effect. A redelivered event yields
the same commands with the same idempotency keys, and every command is decided on current
state (recording only changes, releasing only the claim named), so repeating one changes
nothing. A failure of the store or the network is retried with a growing delay; an event the
domain refuses (a bug, not a condition) is logged with its id and terminated, so it cannot
block those behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from agora_events.catalogue import CatalogueError, DomainEvent, catalogue
from agora_events.contracts.agenda import (
    RoomAdded,
    RoomCapacityChanged,
    SessionCancelled,
    SessionDetailsChanged,
    SessionMoved,
    SessionScheduled,
)
from agora_events.contracts.registration import AccreditationRejected, ParticipantWithdrew
from agora_events.decider import Rejected
from agora_events.envelope import Envelope, EnvelopeError
from agora_events.store import EventStore

from .application import Registration
from .domain import AgendaSession, agenda_sessions, room_capacities, sessions_in_room, sync_command

log = logging.getLogger("agora.registration.reactor")
ACTOR = "registration-reactor"
SESSION_EVENTS = (SessionScheduled, SessionMoved, SessionDetailsChanged, SessionCancelled)
ROOM_EVENTS = (RoomAdded, RoomCapacityChanged)
RELEASE_EVENTS = (ParticipantWithdrew, AccreditationRejected)


class ReactorBehindError(Exception):
    """The reactor did not reach a sequence in the time given."""


Handler = Callable[[int, Envelope, DomainEvent], Awaitable[None]]


@dataclass
class _Follower:
    """One durable pull consumer and the loop that works through it."""

    stream: str
    durable: str
    filters: list[str]
    types: frozenset[str]
    handle: Handler
    task: asyncio.Task[None] | None = None

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            description="registration reactor: issues registration commands",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=60.0,
            max_ack_pending=1,
            filter_subject=self.filters[0] if len(self.filters) == 1 else None,
            filter_subjects=self.filters if len(self.filters) > 1 else None,
        )


class Reactor:
    def __init__(
        self,
        nc: NatsClient,
        store: EventStore,
        registration: Registration,
        *,
        name: str = "registration-reactor",
        retry_delays: tuple[float, ...] = (0.1, 0.5, 2.0, 5.0),
    ) -> None:
        self._js: JetStreamContext = nc.jetstream()
        self._store = store
        self._registration = registration
        self._retry_delays = retry_delays
        self._progress = asyncio.Condition()
        self._followers = {
            "AGENDA": _Follower(
                "AGENDA",
                f"{name}-agenda",
                ["agenda.>"],
                _types(*SESSION_EVENTS, *ROOM_EVENTS),
                self._on_agenda,
            ),
            "REGISTRATION": _Follower(
                "REGISTRATION",
                f"{name}-releases",
                [
                    "registration.participant.*.withdrawn",
                    "registration.participant.*.rejected",
                ],
                _types(*RELEASE_EVENTS),
                self._on_release,
            ),
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        for follower in self._followers.values():
            subscription = await self._subscribe(follower)
            follower.task = asyncio.create_task(
                self._follow(follower, subscription), name=f"reactor:{follower.durable}"
            )

    async def _subscribe(self, follower: _Follower) -> JetStreamContext.PullSubscription:
        """Create the durable consumer (a no-op when it exists as configured) and bind to it."""
        await self._js.add_consumer(follower.stream, follower.config())
        return await self._js.pull_subscribe_bind(follower.durable, follower.stream)

    async def stop(self) -> None:
        for follower in self._followers.values():
            if follower.task is not None:
                follower.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower.task
                follower.task = None

    async def lag(self) -> dict[str, int]:
        """Messages each consumer has not yet finished with."""
        lag = {}
        for follower in self._followers.values():
            info = await self._js.consumer_info(follower.stream, follower.durable)
            lag[follower.durable] = info.num_pending + info.num_ack_pending
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
        follower = self._followers[stream]

        async def caught_up() -> bool:
            info = await self._js.consumer_info(follower.stream, follower.durable)
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

    # -- the loop --------------------------------------------------------------------------

    async def _follow(
        self, follower: _Follower, subscription: JetStreamContext.PullSubscription
    ) -> None:
        failures = 0
        while True:
            try:
                messages = await subscription.fetch(1, timeout=30)
            except NatsTimeoutError:
                continue
            except Exception as error:  # NATS away, consumer gone: bind again after a pause
                failures += 1
                log.warning(
                    "reactor lost its consumer; binding again",
                    extra={"consumer": follower.durable, "error": type(error).__name__},
                )
                await asyncio.sleep(self._retry_delays[min(failures, len(self._retry_delays)) - 1])
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
                with contextlib.suppress(Exception):
                    subscription = await self._subscribe(follower)
                continue
            failures = 0
            for message in messages:
                await self._deliver(follower, message)

    async def _deliver(self, follower: _Follower, message: Msg) -> None:
        metadata = message.metadata
        sequence = metadata.sequence.stream
        attempt = metadata.num_delivered
        try:
            envelope = Envelope.from_headers(message.headers, message.data)
            if envelope.type in follower.types:
                event = catalogue.decode(envelope.type, envelope.data)
                await follower.handle(sequence, envelope, event)
        except (Rejected, CatalogueError, EnvelopeError) as refusal:
            log.error(
                "reactor gave up on an event",
                extra={"stream": follower.stream, "sequence": sequence, "error": str(refusal)},
            )
            await message.term()
        except Exception as error:
            delay = self._retry_delays[min(attempt, len(self._retry_delays)) - 1]
            log.warning(
                "reactor will retry an event",
                extra={
                    "stream": follower.stream,
                    "sequence": sequence,
                    "attempt": attempt,
                    "error": type(error).__name__,
                },
            )
            await message.nak(delay=delay)
            return
        else:
            await message.ack_sync()
        async with self._progress:
            self._progress.notify_all()

    # -- what to do ------------------------------------------------------------------------

    async def _on_agenda(self, sequence: int, envelope: Envelope, event: DomainEvent) -> None:
        if isinstance(event, SESSION_EVENTS):
            history = await self._store.read(f"agenda.session.{event.session_id}.*", up_to=sequence)
            sessions = agenda_sessions(r.event for r in history)
            concerned: Iterable[str] = [event.session_id]
        elif isinstance(event, ROOM_EVENTS):
            history = await self._store.read("agenda.session.*.*", up_to=sequence)
            sessions = agenda_sessions(r.event for r in history)
            concerned = sessions_in_room(sessions, event.room_id)
        else:
            return
        for session_id in concerned:
            if session_id in sessions:
                await self._sync(sessions[session_id], sequence, envelope)

    async def _sync(self, session: AgendaSession, sequence: int, envelope: Envelope) -> None:
        room = await self._store.read(f"agenda.room.{session.room_id}.*", up_to=sequence)
        command = sync_command(session, room_capacities(r.event for r in room))
        if command is None:
            log.warning(
                "session has no capacity and its room is unknown; not recorded",
                extra={"session_id": session.session_id, "room_id": session.room_id},
            )
            return
        key = f"agenda:{envelope.id}:{session.session_id}"
        await self._registration.sync_session(command, key=key, actor=ACTOR)

    async def _on_release(self, sequence: int, envelope: Envelope, event: DomainEvent) -> None:
        if isinstance(event, ParticipantWithdrew):
            await self._registration.release_places(
                event.participant_id, event.released, "withdrew", ACTOR
            )
        elif isinstance(event, AccreditationRejected):
            await self._registration.release_places(
                event.participant_id, event.released, "rejected", ACTOR
            )


def _types(*models: type[DomainEvent]) -> frozenset[str]:
    return frozenset(model.meta.type for model in models)
