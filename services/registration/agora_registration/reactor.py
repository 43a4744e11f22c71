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

The broker (its connection, start and stop) belongs to the kernel's service shell, and so
does the consumers' upkeep (``agora_events.reactor``); this module declares the consumers and
the routes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from faststream.nats import NatsBroker, NatsRouter

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
from agora_events.messaging import RETRY_DELAYS, Delivered, Delivery, SettledHook, events_of
from agora_events.reactor import Consumer, ReactorBehindError
from agora_events.reactor import Reactor as ReactorBase
from agora_events.usecases import Caller

from .domain import (
    AgendaSession,
    SyncSession,
    agenda_sessions,
    room_capacities,
    sessions_in_room,
    sync_command,
)

log = logging.getLogger("agora.registration.reactor")
ACTOR = "registration-reactor"
SessionEvent = SessionScheduled | SessionMoved | SessionDetailsChanged | SessionCancelled
RoomEvent = RoomAdded | RoomCapacityChanged
ReleaseEvent = ParticipantWithdrew | AccreditationRejected
SESSION_EVENTS = (SessionScheduled, SessionMoved, SessionDetailsChanged, SessionCancelled)
ROOM_EVENTS = (RoomAdded, RoomCapacityChanged)
RELEASE_EVENTS = (ParticipantWithdrew, AccreditationRejected)


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

    async def sync_session(self, command: SyncSession, caller: Caller) -> object: ...

    async def release_places(
        self,
        participant_id: str,
        released: Sequence[ClaimRef],
        reason: ReleaseReason,
        caller: Caller = ...,
    ) -> object: ...


def reacting_to(delivery: Delivery, key: str) -> Caller:
    return Caller.reacting_to(
        ACTOR,
        event_id=delivery.event_id,
        correlation_id=delivery.envelope.correlationid,
        key=key,
    )


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
        # Each release carries a key of its own, derived from the claim.
        caller = reacting_to(delivery, key=f"agenda:{delivery.event_id}")
        await self._registration.release_places(
            event.participant_id, event.released, reason, caller
        )

    async def _sync(
        self, sessions: dict[str, AgendaSession], concerned: Iterable[str], delivery: Delivery
    ) -> None:
        for session_id in concerned:
            if session_id in sessions:
                await self._sync_one(sessions[session_id], delivery)

    async def _sync_one(self, session: AgendaSession, delivery: Delivery) -> None:
        if session.tentative and session.cancelled is None:
            # A time no source states is not offered for enrolment; an organiser's move
            # (which fixes the time) brings the session here again.
            log.info(
                "session time is tentative; not offered", extra={"session_id": session.session_id}
            )
            return
        room = await self._history.read(f"agenda.room.{session.room_id}.*", up_to=delivery.sequence)
        command = sync_command(session, room_capacities(r.event for r in room))
        if command is None:
            log.warning(
                "session has no capacity and its room is unknown; not recorded",
                extra={"session_id": session.session_id, "room_id": session.room_id},
            )
            return
        key = f"agenda:{delivery.event_id}:{session.session_id}"
        await self._registration.sync_session(command, reacting_to(delivery, key))


# -- the routes ----------------------------------------------------------------------------------


class Reactor(ReactorBase):
    """The reactor's consumers and routes; the kernel keeps the consumers and reads their
    progress (``wait_for`` defaults to the AGENDA stream)."""

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
        self.reactions = Reactions(history, registration)
        description = "registration reactor: issues registration commands"
        consumers = [
            Consumer("AGENDA", f"{name}-agenda", ("agenda.>",), description),
            Consumer(
                "REGISTRATION",
                f"{name}-releases",
                (
                    "registration.participant.*.withdrawn",
                    "registration.participant.*.rejected",
                ),
                description,
            ),
        ]
        super().__init__(broker, consumers, name=name, retry_delays=retry_delays, observe=observe)

    def routes(self, router: NatsRouter) -> None:
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


__all__ = ["Reactions", "Reactor", "ReactorBehindError", "Registrar"]
