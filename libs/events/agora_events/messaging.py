"""Agora's events through FastStream: typed handlers on JetStream consumers.

FastStream runs the subscribers (and documents them for AsyncAPI); this module teaches it
Agora's wire format and Agora's acknowledgement rules, so that a service's handler is a
typed function of the event it reacts to::

    subscriber = router.subscriber(
        stream=existing_stream("AGENDA"), durable="…", decoder=decode_event, …
    )

    @subscriber(filter=events_of(SessionMoved))
    async def on_moved(event: SessionMoved, delivery: Delivered) -> None: ...

* ``decode_event`` is the decoder: binary-mode CloudEvent headers → ``Envelope`` → the typed
  ``DomainEvent`` from the catalogue (upcasting older versions). A message that is not a
  CloudEvent, names a type the catalogue does not know, or carries a payload its model
  refuses raises ``UnreadableEvent``; it is never silently skipped.
* ``Delivered`` is a handler parameter: the envelope (event id, actor, trace context…) and
  where the message sits in its stream (sequence, delivery attempt).
* ``JetStreamAcknowledgement`` is the middleware that settles each message once its handler
  is done: acknowledged (and confirmed by the server) after success; terminated, with a log
  line naming the event by id, when the event is unreadable or the domain refuses what it
  asks; otherwise handed back for redelivery after a delay that grows with each attempt.
  Subscribers that use it take ``ack_policy=AckPolicy.MANUAL`` so FastStream does not settle
  the message a second time.
* ``existing_stream`` names a stream FastStream must bind to and never create or change: the
  streams belong to ``agora_events.streams``.

The store's raw JetStream work (expected sequences, atomic batches, direct get) stays on
nats-py; FastStream is for consuming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Annotated, Any

from faststream import Context, Depends
from faststream.middlewares import BaseMiddleware
from faststream.nats import JStream
from faststream.nats.message import NatsMessage
from nats.aio.msg import Msg
from opentelemetry.trace import Span, StatusCode

from .catalogue import CatalogueError, DomainEvent, catalogue
from .decider import Rejected
from .envelope import Envelope, EnvelopeError, decode_header_value
from .metrics import CONSUMER_EVENTS, CONSUMER_HANDLER_SECONDS
from .tracing import consumer_span

log = logging.getLogger("agora.messaging")

RETRY_DELAYS: tuple[float, ...] = (0.1, 0.5, 2.0, 5.0)
"""Seconds before the 1st, 2nd, 3rd… redelivery of a message whose handler failed; the last
one repeats."""


class UnreadableEvent(Exception):
    """A message that cannot be turned into a catalogued event. Retrying will not help."""

    def __init__(self, reason: str, *, event_id: str | None, event_type: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type


REFUSALS: tuple[type[BaseException], ...] = (
    Rejected,
    UnreadableEvent,
    CatalogueError,
    EnvelopeError,
)
"""Exceptions that mean an event will never be handled, however often it is delivered: the
domain refuses what it asks, or it (or history a handler reads) cannot be decoded."""


def existing_stream(name: str) -> JStream:
    """A stream to consume from, never to declare: FastStream neither creates nor updates it."""
    return JStream(name, declare=False)


# -- decoding --------------------------------------------------------------------------------


def read_envelope(message: NatsMessage) -> Envelope:
    """The CloudEvent a message carries, or UnreadableEvent."""
    try:
        return Envelope.from_headers(message.headers, bytes(message.body))
    except EnvelopeError as error:
        raise UnreadableEvent(
            f"not a binary-mode CloudEvent: {error}",
            event_id=_header(message.headers, "ce-id"),
            event_type=_header(message.headers, "ce-type"),
        ) from error


async def decode_event(message: NatsMessage) -> DomainEvent:
    """FastStream decoder: the typed event of a binary-mode CloudEvent message."""
    envelope = read_envelope(message)
    try:
        return catalogue.decode(envelope.type, envelope.data)
    except CatalogueError as error:
        # The catalogue's message may quote the payload; keep it out of the reason.
        raise UnreadableEvent(
            f"{type(error).__name__} for {envelope.type}",
            event_id=envelope.id,
            event_type=envelope.type,
        ) from error


def events_of(*models: type[DomainEvent]) -> Callable[[NatsMessage], Awaitable[bool]]:
    """A handler filter: true for messages whose (upcast) event is one of ``models``."""

    async def matches(message: NatsMessage) -> bool:
        return isinstance(await message.decode(), models)

    return matches


# -- what a handler may ask for besides the event ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event as JetStream delivered it to a consumer."""

    envelope: Envelope
    stream: str
    sequence: int
    """The event's sequence in its stream."""
    attempt: int
    """1 on first delivery, 2 on the first redelivery…"""

    @property
    def event_id(self) -> str:
        return self.envelope.id


def _delivery(message: Annotated[NatsMessage, Context("message")]) -> Delivery:
    metadata = _metadata(message.raw_message)
    if metadata is None:
        raise UnreadableEvent(
            "not delivered by a JetStream consumer (no stream sequence)",
            event_id=_header(message.headers, "ce-id"),
            event_type=_header(message.headers, "ce-type"),
        )
    stream, _, sequence, attempt = metadata
    return Delivery(read_envelope(message), stream, sequence, attempt)


Delivered = Annotated[Delivery, Depends(_delivery)]
"""Declare a handler parameter as ``delivery: Delivered`` to receive its ``Delivery``."""


def ack_subject(stream: str, consumer: str, sequence: int, *, attempt: int = 1) -> str:
    """The reply subject JetStream gives a consumer's delivery of a stream's ``sequence``.

    ``TestNatsBroker`` has no server to set it: in-memory tests publish with
    ``reply_to=ack_subject(…)`` so that handlers see the sequence and the attempt."""
    return f"$JS.ACK.{stream}.{consumer}.{attempt}.{sequence}.{sequence}.0.0"


# -- settling a message ------------------------------------------------------------------------


class Outcome(Enum):
    ACKNOWLEDGED = "acknowledged"
    TERMINATED = "terminated"
    REDELIVERY = "redelivery"


@dataclass(frozen=True, slots=True)
class Settled:
    """What became of one delivery."""

    subject: str
    stream: str | None
    consumer: str | None
    sequence: int | None
    attempt: int
    event_id: str | None
    outcome: Outcome
    error: str | None = None


SettledHook = Callable[[Settled], Awaitable[None]]


class JetStreamAcknowledgement:
    """FastStream middleware factory: settles each delivery after its handler ran.

    ``refusals`` are the exceptions that mean "this event will never succeed" (by default
    ``REFUSALS``): the message is terminated and logged by id.
    Anything else is taken for a passing failure of the store or the network: the message
    is handed back (``nak``) with a delay from ``retry_delays`` that grows with each attempt
    and stays at the last value, so redelivery is bounded in rate and the event is never
    dropped. ``settled`` hears of every outcome (progress, metrics, tests)."""

    def __init__(
        self,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        refusals: tuple[type[BaseException], ...] = REFUSALS,
        settled: SettledHook | None = None,
    ) -> None:
        if not retry_delays:
            raise ValueError("retry_delays needs at least one delay")
        self.retry_delays = tuple(retry_delays)
        self.refusals = refusals
        self.settled = settled

    def delay(self, attempt: int) -> float:
        return self.retry_delays[min(max(attempt, 1), len(self.retry_delays)) - 1]

    def __call__(self, msg: Any, /, *, context: Any) -> _Acknowledgement:
        return _Acknowledgement(msg, context=context, policy=self)


class _Acknowledgement(BaseMiddleware):  # type: ignore[type-arg]
    def __init__(self, msg: Any, /, *, context: Any, policy: JetStreamAcknowledgement) -> None:
        super().__init__(msg, context=context)
        self.policy = policy
        self.received = time.monotonic()
        self.trace = contextlib.ExitStack()
        self.span: Span | None = None

    async def on_receive(self) -> None:
        """Continue the event's trace: decoding, the handler, the commands it appends and
        the settling all happen in one CONSUMER span."""
        raw = self.msg
        if not isinstance(raw, Msg):
            return
        event_type = _header(raw.headers, "ce-type") or raw.subject
        self.span = span = self.trace.enter_context(
            consumer_span(
                f"react {event_type}",
                _header(raw.headers, "traceparent"),
                _header(raw.headers, "tracestate"),
            )
        )
        if span.is_recording():
            metadata = _metadata(raw)
            span.set_attributes(
                {
                    "messaging.system": "nats",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": raw.subject,
                    "messaging.message.id": _header(raw.headers, "ce-id") or "",
                    "messaging.consumer.group.name": metadata[1] if metadata else "",
                    "agora.stream.sequence": metadata[2] if metadata else 0,
                }
            )

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool:
        try:
            return await self._conclude(exc_val)
        finally:
            self.trace.close()

    async def _conclude(self, exc_val: BaseException | None) -> bool:
        raw = self.msg
        if not isinstance(raw, Msg):
            return False
        metadata = _metadata(raw)
        stream, consumer, sequence, attempt = metadata if metadata else (None, None, None, 1)
        event_id = _header(raw.headers, "ce-id")
        facts: dict[str, object] = {
            "consumer": consumer,
            "stream": stream,
            "sequence": sequence,
            "attempt": attempt,
            "event_id": event_id,
            "event_type": _header(raw.headers, "ce-type"),
        }
        if exc_val is None:
            outcome, error = Outcome.ACKNOWLEDGED, None
            await _send_settlement("ack", raw.ack_sync(), facts)
        elif isinstance(exc_val, asyncio.CancelledError):
            # Stopping mid-handler: hand the event straight back for whoever runs next.
            await _send_settlement("nak", raw.nak(), facts)
            return False
        elif isinstance(exc_val, self.policy.refusals):
            outcome, error = Outcome.TERMINATED, type(exc_val).__name__
            # The reason of an unreadable event names no payload; any other refusal's might
            # (a domain message naming a person, a payload quoted by pydantic), so only its
            # kind is logged.
            reason = exc_val.reason if isinstance(exc_val, UnreadableEvent) else error
            log.error(
                "event refused; terminated so it does not block the events behind it",
                extra=facts | {"error": error, "reason": reason},
            )
            await _send_settlement("term", raw.term(), facts)
        elif isinstance(exc_val, Exception):
            outcome, error = Outcome.REDELIVERY, type(exc_val).__name__
            delay = self.policy.delay(attempt)
            log.warning("event will be redelivered", extra=facts | {"error": error, "delay": delay})
            await _send_settlement("nak", raw.nak(delay=delay), facts)
        else:
            return False
        if self.span is not None and self.span.is_recording():
            self.span.set_attribute("agora.outcome", outcome.value)
            if outcome is not Outcome.ACKNOWLEDGED:
                self.span.set_status(StatusCode.ERROR, error)
        labels = consumer or "unknown"
        CONSUMER_EVENTS.labels(labels, outcome.value).inc()
        CONSUMER_HANDLER_SECONDS.labels(labels).observe(time.monotonic() - self.received)
        if self.policy.settled is not None:
            await self.policy.settled(
                Settled(raw.subject, stream, consumer, sequence, attempt, event_id, outcome, error)
            )
        return True


async def _send_settlement(
    action: str, settling: Awaitable[object], facts: dict[str, object]
) -> None:
    """Ack, nak or term; if that fails (connection lost), the server redelivers the message
    after its ack wait, which the handlers' idempotency makes harmless."""
    try:
        await settling
    except Exception as error:
        log.warning(
            "could not settle an event; it will be redelivered",
            extra=facts | {"action": action, "error": type(error).__name__},
        )


def _metadata(raw: Msg) -> tuple[str, str, int, int] | None:
    """Stream, consumer, stream sequence and delivery attempt, from the ack subject."""
    if not raw.reply or not raw.reply.startswith("$JS.ACK."):
        return None
    with contextlib.suppress(Exception):
        metadata = raw.metadata
        return (
            metadata.stream,
            metadata.consumer,
            metadata.sequence.stream,
            metadata.num_delivered,
        )
    return None


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if not isinstance(value, str):
        return None
    try:
        return decode_header_value(value)
    except EnvelopeError:
        return None
