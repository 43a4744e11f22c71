"""Messages in a stream that are not Agora events, and how they are reported.

Anyone allowed to publish into a context's subjects can store a message the platform never
wrote: no CloudEvents headers, a type no contract knows, a body the current model refuses.
Readers of history (the command handler's catch-up, the reactors' history reads) step over
such a message instead of failing on it, and report it once per process: a JSON log line
(stream, sequence, subject, reason kind; never the payload) and the counter
``agora_foreign_messages_total{stream,reason}``. ``agora streams foreign`` lists them.

What is *not* foreign, and still raises: the log unreadable (a timeout, a missing stream), an
upcaster or model that fails on data it should handle (a bug, not a stray message).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.aio.client import Client as NATS

from .catalogue import EventRegistry, UndecodableEvent, UnknownEventType
from .direct_get import StoredMessage, stored_messages
from .envelope import PREFIX, Envelope, EnvelopeError
from .metrics import FOREIGN_MESSAGES

log = logging.getLogger("agora.foreign")

NOT_A_CLOUDEVENT = "not-a-cloudevent"
INVALID_ENVELOPE = "invalid-envelope"
UNKNOWN_TYPE = "unknown-type"
INVALID_DATA = "invalid-data"
REASONS = (NOT_A_CLOUDEVENT, INVALID_ENVELOPE, UNKNOWN_TYPE, INVALID_DATA)

FOREIGN_ERRORS = (EnvelopeError, UnknownEventType, UndecodableEvent)
"""What decoding a stored message raises when the message is not an Agora event."""

_REMEMBERED = 10_000  # reported (stream, sequence) pairs kept per process, then forgotten


@dataclass(frozen=True, slots=True)
class ForeignMessage:
    """A stored message that is not an Agora event: where it is and why (no payload)."""

    stream: str
    sequence: int
    subject: str
    reason: str
    """One of ``REASONS``."""
    event_type: str | None = None
    detail: str = ""
    """What was wrong, for a person; validation errors name fields, never input values."""


def foreign_message(stream: str, message: StoredMessage, error: Exception) -> ForeignMessage:
    """Why ``message`` is not an Agora event, given what decoding it raised."""
    headers = message.headers
    event_type = headers.get(PREFIX + "type") if headers else None
    if isinstance(error, UnknownEventType):
        reason, detail = UNKNOWN_TYPE, f"no contract knows the type {error.event_type!r}"
    elif isinstance(error, UndecodableEvent):
        reason, detail = INVALID_DATA, _fields_of(error)
    elif not headers or PREFIX + "specversion" not in headers:
        reason, detail = NOT_A_CLOUDEVENT, "no CloudEvents headers (ce-specversion)"
    else:
        reason, detail = INVALID_ENVELOPE, str(error)
    return ForeignMessage(stream, message.sequence, message.subject, reason, event_type, detail)


def _fields_of(error: UndecodableEvent) -> str:
    cause = error.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        # pydantic's own message would quote the input; the locations and kinds do not.
        problems = [
            f"{'.'.join(str(part) for part in item.get('loc', ())) or 'body'}: {item.get('type')}"
            for item in errors(include_input=False, include_url=False)
        ]
        return f"{error.event_type}: {'; '.join(problems)}"
    return f"{error.event_type}: the body is not a JSON object"


class ForeignReport:
    """Logs and counts each foreign message once, however often it is read (a service
    holds one event store, hence one report, per process)."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, int]] = set()

    def __call__(self, foreign: ForeignMessage) -> None:
        key = (foreign.stream, foreign.sequence)
        if key in self._seen:
            return
        if len(self._seen) >= _REMEMBERED:
            self._seen.clear()
        self._seen.add(key)
        FOREIGN_MESSAGES.labels(foreign.stream, foreign.reason).inc()
        log.warning(
            "stepped over a message that is not an Agora event",
            extra={
                "stream": foreign.stream,
                "sequence": foreign.sequence,
                "subject": foreign.subject,
                "reason": foreign.reason,
                "event_type": foreign.event_type,
            },
        )


async def find_foreign(
    nc: NATS,
    stream: str,
    registry: EventRegistry,
    *,
    subject_filter: str | None = None,
    timeout: float = 5.0,
) -> AsyncIterator[ForeignMessage]:
    """Every message of ``stream`` that is not an Agora event ``registry`` can decode."""
    messages = stored_messages(
        nc, stream, subject_filter=subject_filter, batch=1000, timeout=timeout
    )
    try:
        async for message in messages:
            try:
                envelope = Envelope.from_headers(message.headers, message.data)
                registry.decode(envelope.type, envelope.data)
            except FOREIGN_ERRORS as exc:
                yield foreign_message(stream, message, exc)
    finally:
        await messages.aclose()
