"""Messages from the log, and what one projection makes of each of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..catalogue import CatalogueError, DomainEvent, EventRegistry
from ..envelope import PREFIX, Envelope, EnvelopeError, decode_header_value
from .definition import EventContext

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from .definition import Projection

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stored message: where it sits in its stream, and its raw headers and body."""

    stream: str
    sequence: int
    subject: str
    headers: Mapping[str, str]
    data: bytes
    stored_at: datetime
    reply: str = ""
    pending: int = 0
    """Messages the consumer still had to deliver after this one (its filter applied)."""

    @classmethod
    def from_msg(cls, msg: Msg) -> Delivery:
        stream, sequence, nanoseconds, pending = _ack_fields(msg.reply)
        return cls(
            stream=stream,
            sequence=sequence,
            subject=msg.subject,
            headers=msg.headers or {},
            data=msg.data,
            # Floored to the microsecond, as the stream reports it elsewhere (direct get,
            # message info); nats-py's float division may round up past it.
            stored_at=_EPOCH + timedelta(microseconds=nanoseconds // 1000),
            reply=msg.reply,
            pending=pending,
        )

    @property
    def aggregate(self) -> str:
        return aggregate_of(self.subject)

    @property
    def event_type(self) -> str | None:
        return _header(self.headers, "type")

    @property
    def event_id(self) -> str | None:
        return _header(self.headers, "id")


def _ack_fields(reply: str) -> tuple[str, int, int, int]:
    """Stream, stream sequence, storage time (ns) and the consumer's pending count from a
    JetStream reply subject: ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.
    <pending>``, or the newer form with domain and account hash after ``$JS.ACK``."""
    tokens = reply.split(".")
    if tokens[:2] != ["$JS", "ACK"] or len(tokens) < 9:
        raise ValueError(f"not a JetStream message (reply subject {reply!r})")
    if len(tokens) == 9:
        return tokens[2], int(tokens[5]), int(tokens[7]), int(tokens[8])
    return tokens[4], int(tokens[7]), int(tokens[9]), int(tokens[10])


def aggregate_of(subject: str) -> str:
    """``agenda.session.ws5-s3.moved`` → ``agenda.session.ws5-s3.`` (the whole subject when it
    does not follow ``<context>.<aggregate>.<id>.<event>``)."""
    tokens = subject.split(".")
    return ".".join(tokens[:3]) + "." if len(tokens) >= 4 else subject


@dataclass(frozen=True, slots=True)
class Decoded:
    """A delivery as one projection sees it: an event to apply, nothing to do, or a problem
    that parks it as a dead letter."""

    delivery: Delivery
    event: DomainEvent | None = None
    context: EventContext | None = None
    problem: str | None = None


def decode_for(projection: Projection, delivery: Delivery, registry: EventRegistry) -> Decoded:
    event_type = delivery.event_type
    if event_type is None:
        return Decoded(delivery, problem="not a CloudEvent: no ce-type header")
    try:
        model = registry.model_for(registry.current_type(event_type))
    except CatalogueError as exc:
        return Decoded(delivery, problem=str(exc))
    if not projection.handles_type(model):
        return Decoded(delivery)  # a known type this projection ignores: decode nothing
    try:
        envelope = Envelope.from_headers(delivery.headers, delivery.data)
        event = registry.decode(envelope.type, envelope.data)
    except (EnvelopeError, CatalogueError) as exc:
        return Decoded(delivery, problem=str(exc))
    context = EventContext(delivery.stream, delivery.sequence, delivery.subject, envelope)
    return Decoded(delivery, event, context)


def _header(headers: Mapping[str, str], attribute: str) -> str | None:
    value = headers.get(PREFIX + attribute)
    if value is None:
        return None
    try:
        return decode_header_value(value)
    except EnvelopeError:
        return value
