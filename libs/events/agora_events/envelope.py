"""CloudEvents 1.0 envelope in binary mode over NATS headers.

Follows the CloudEvents NATS protocol binding (binary mode, section 3.1): every context
attribute travels as a ``ce-<name>`` header, ``datacontenttype`` included
(``ce-datacontenttype``, section 3.1.3.1), and the event data is the message body. The same
media type also goes out as ``content-type``, for readers that look there; to a reader of the
binding, only a ``content-type`` of ``application/cloudevents…`` marks a structured-mode
message, which this module refuses. Reading takes ``ce-datacontenttype`` and falls back to
``content-type`` (events stored before the attribute was sent carry only that).

Header values are percent-encoded as the binding prescribes (section 3.1.3.2: anything
outside printable ASCII, plus space, ``"`` and ``%``), so non-ASCII values such as
"Côte d'Ivoire" and stray CR/LF survive every NATS client intact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote

SPEC_VERSION = "1.0"
JSON = "application/json"
PREFIX = "ce-"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# Printable ASCII except space, '"' and '%' stays as is; everything else is percent-encoded.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
_NEEDS_NO_ENCODING = re.compile(r"[!#$&-~]*")
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_CORE = {"specversion", "id", "source", "type", "subject", "time", "dataschema", "datacontenttype"}
STRUCTURED = "application/cloudevents"
_KNOWN_EXTENSIONS = {
    "actor",
    "correlationid",
    "causationid",
    "aggregateversion",
    "idempotencykey",
    "requestdigest",
}


class EnvelopeError(ValueError):
    """A message that is not a valid CloudEvent in binary mode."""


def encode_header_value(value: str) -> str:
    if _NEEDS_NO_ENCODING.fullmatch(value):
        return value  # the common case, and the hot path of every append
    return quote(value, safe=_SAFE, encoding="utf-8", errors="strict")


def decode_header_value(value: str) -> str:
    if "%" not in value:
        return value  # nothing encoded; unquote would return it unchanged, slower
    try:
        return unquote(value, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"header value {value!r} is not valid percent-encoded UTF-8") from exc


def format_time(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise EnvelopeError("event time must be timezone-aware")
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(f"ce-time {text!r} is not an RFC 3339 timestamp") from exc
    if moment.tzinfo is None:
        raise EnvelopeError(f"ce-time {text!r} has no UTC offset")
    return moment


@dataclass(frozen=True, slots=True)
class Envelope:
    """One CloudEvent: context attributes plus the raw data bytes."""

    id: str
    source: str
    type: str
    time: datetime
    data: bytes
    subject: str | None = None
    dataschema: str | None = None
    datacontenttype: str = JSON
    actor: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    aggregateversion: int | None = None
    idempotencykey: str | None = None
    requestdigest: str | None = None
    """What the idempotency key was bound to: a digest of the request that first used it."""
    traceparent: str | None = None
    tracestate: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)

    def to_headers(self) -> dict[str, str]:
        headers = {
            "ce-specversion": SPEC_VERSION,
            "ce-id": self.id,
            "ce-source": self.source,
            "ce-type": self.type,
            "ce-time": format_time(self.time),
        }
        # One test per attribute rather than a loop over pairs: every append passes here.
        if self.subject is not None:
            headers["ce-subject"] = self.subject
        if self.dataschema is not None:
            headers["ce-dataschema"] = self.dataschema
        if self.actor is not None:
            headers["ce-actor"] = self.actor
        if self.correlationid is not None:
            headers["ce-correlationid"] = self.correlationid
        if self.causationid is not None:
            headers["ce-causationid"] = self.causationid
        if self.aggregateversion is not None:
            headers["ce-aggregateversion"] = str(self.aggregateversion)
        if self.idempotencykey is not None:
            headers["ce-idempotencykey"] = self.idempotencykey
        if self.requestdigest is not None:
            headers["ce-requestdigest"] = self.requestdigest
        for name, value in self.extensions.items():
            headers[PREFIX + name] = value
        headers["ce-datacontenttype"] = headers["content-type"] = self.datacontenttype
        if self.traceparent:
            headers[TRACEPARENT] = self.traceparent
        if self.tracestate:
            headers[TRACESTATE] = self.tracestate
        # One scan settles the common case, where no value needs encoding (every append
        # passes here).
        if not _NEEDS_NO_ENCODING.fullmatch("".join(headers.values())):
            headers = {name: encode_header_value(value) for name, value in headers.items()}
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None, data: bytes) -> Envelope:
        if not headers:
            raise EnvelopeError("message has no headers; not a binary-mode CloudEvent")
        lowered = {str(k).lower(): v for k, v in headers.items()}
        attributes = {
            name[len(PREFIX) :]: decode_header_value(value)
            for name, value in lowered.items()
            if name.startswith(PREFIX)
        }
        content_type = lowered.get("content-type")
        if content_type is not None and content_type.lower().startswith(STRUCTURED):
            raise EnvelopeError(
                f"content-type {content_type!r} marks a structured-mode CloudEvent; "
                "only binary mode (attributes as ce-* headers) is read here"
            )
        version = attributes.get("specversion")
        if version != SPEC_VERSION:
            raise EnvelopeError(f"unsupported ce-specversion {version!r}; expected {SPEC_VERSION}")
        missing = [name for name in ("id", "source", "type", "time") if not attributes.get(name)]
        if missing:
            raise EnvelopeError(f"missing required attribute(s): {', '.join(missing)}")
        extensions = {
            name: value
            for name, value in attributes.items()
            if name not in _CORE and name not in _KNOWN_EXTENSIONS
        }
        aggregate_version = attributes.get("aggregateversion")
        return cls(
            id=attributes["id"],
            source=attributes["source"],
            type=attributes["type"],
            time=parse_time(attributes["time"]),
            data=data,
            subject=attributes.get("subject"),
            dataschema=attributes.get("dataschema"),
            datacontenttype=attributes.get("datacontenttype")
            or (JSON if content_type is None else decode_header_value(content_type)),
            actor=attributes.get("actor"),
            correlationid=attributes.get("correlationid"),
            causationid=attributes.get("causationid"),
            aggregateversion=_parse_int(aggregate_version),
            idempotencykey=attributes.get("idempotencykey"),
            requestdigest=attributes.get("requestdigest"),
            traceparent=_optional_decode(lowered.get(TRACEPARENT)),
            tracestate=_optional_decode(lowered.get(TRACESTATE)),
            extensions=extensions,
        )

    def __post_init__(self) -> None:
        for name in self.extensions:
            if not _EXTENSION_NAME.match(name):
                raise EnvelopeError(
                    f"extension name {name!r} must be 1-20 lowercase letters or digits"
                )


def _parse_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise EnvelopeError(f"ce-aggregateversion {text!r} is not an integer") from exc


def _optional_decode(value: str | None) -> str | None:
    return None if value is None else decode_header_value(value)
