"""The event catalogue: frozen pydantic event models, a type registry, upcasters, schemas.

An event type reads ``agora.<context>.<aggregate>.<event>.v<major>``. The NATS subject of an
event is ``<context>.<aggregate>.<aggregate id>.<event>``; the id comes from the event's own
``id_field``, so every event knows where it belongs.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

TOKEN = re.compile(r"^[a-z][a-z0-9_]*$")
ID_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
SCHEMA_PATH = "/events/schemas/"
"""Where every Agora service serves the schemas (``schemas_http``); ``ce-dataschema`` is
this path on the producing service's public URL (see docs/events/README.md)."""
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_FILE = "asyncapi.json"
CATALOGUE_FILE = "catalogue.md"


class CatalogueError(Exception):
    """Base class of catalogue errors."""


class UnknownEventType(CatalogueError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}: no model and no upcaster for it")
        self.event_type = event_type


class UndecodableEvent(CatalogueError):
    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__(f"event of type {event_type!r} does not match its schema: {reason}")
        self.event_type = event_type


class InvalidAggregateId(CatalogueError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EventMeta:
    context: str
    aggregate: str
    name: str
    version: int
    id_field: str
    # Derived once: every append reads them.
    type: str = field(init=False, compare=False, repr=False)
    schema: str = field(init=False, compare=False, repr=False)
    subject_prefix: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        event_type = f"agora.{self.context}.{self.aggregate}.{self.name}.v{self.version}"
        object.__setattr__(self, "type", event_type)
        object.__setattr__(self, "schema", schema_uri(event_type))
        object.__setattr__(self, "subject_prefix", f"{self.context}.{self.aggregate}.")

    @property
    def subject_event(self) -> str:
        """The last subject token; the version is not part of the subject."""
        return self.name


def validate_aggregate_id(value: str) -> str:
    """Aggregate ids become NATS subject tokens, so they must not hold '.', '*', '>' or space."""
    if not ID_TOKEN.match(value):
        raise InvalidAggregateId(
            f"id {value!r} is not usable: use 1-128 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


class DomainEvent(BaseModel):
    """Base of every event: frozen, self-describing, strict about unknown fields when built
    in code (a typo is refused). Reading is tolerant: ``EventRegistry.decode`` ignores the
    fields a model does not know, so a replica of the previous release reads events that a
    newer one wrote with an added optional field."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    meta: ClassVar[EventMeta]

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.meta.id_field))

    @property
    def subject(self) -> str:
        meta = self.meta
        return f"{meta.subject_prefix}{self.aggregate_id}.{meta.name}"


E = TypeVar("E", bound=type[DomainEvent])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class EventRegistry:
    """Maps event types to models; upcasts older versions to the current one on read."""

    def __init__(self) -> None:
        self._models: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[str, tuple[str, Upcaster]] = {}

    def event(
        self, context: str, aggregate: str, name: str, *, version: int = 1, id_field: str
    ) -> Callable[[E], E]:
        for token in (context, aggregate, name):
            if not TOKEN.match(token):
                raise CatalogueError(f"{token!r} is not a snake_case subject token")

        def register(model: E) -> E:
            fields: dict[str, Any] = dict(model.__pydantic_fields__)
            if id_field not in fields:
                raise CatalogueError(f"{model.__name__} has no id field {id_field!r}")
            model.meta = EventMeta(context, aggregate, name, version, id_field)
            existing = self._models.get(model.meta.type)
            if existing is not None and existing.__qualname__ != model.__qualname__:
                raise CatalogueError(f"{model.meta.type} registered twice")
            self._models[model.meta.type] = model
            return model

        return register

    def upcaster(self, from_type: str, to_type: str) -> Callable[[Upcaster], Upcaster]:
        """Register a pure function turning a ``from_type`` payload into a ``to_type`` one."""

        def register(function: Upcaster) -> Upcaster:
            self._upcasters[from_type] = (to_type, function)
            return function

        return register

    def model_for(self, event_type: str) -> type[DomainEvent]:
        try:
            return self._models[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def current_type(self, event_type: str) -> str:
        seen = {event_type}
        while event_type in self._upcasters:
            event_type = self._upcasters[event_type][0]
            if event_type in seen:
                raise CatalogueError(f"upcaster cycle through {event_type}")
            seen.add(event_type)
        return event_type

    def decode(self, event_type: str, data: bytes) -> DomainEvent:
        """The event in ``data``, upcast to the current version; unknown fields are ignored.

        The projection hot path: without an upcaster the bytes go straight to the model's
        compiled validator (no ``json.loads``), with ``extra="ignore"`` for this call only,
        which reaches nested models too."""
        if event_type not in self._upcasters:
            model = self.model_for(event_type)
            try:
                return model.__pydantic_validator__.validate_json(data, extra="ignore")  # type: ignore[no-any-return]
            except ValidationError as exc:
                if exc.errors()[0]["type"] == "json_invalid":
                    reason = exc.errors()[0]["msg"]
                    raise UndecodableEvent(event_type, f"body is not JSON ({reason})") from exc
                raise UndecodableEvent(event_type, str(exc)) from exc
        try:
            payload: dict[str, Any] = json.loads(data)
        except ValueError as exc:
            raise UndecodableEvent(event_type, f"body is not JSON ({exc})") from exc
        current = event_type
        while current in self._upcasters:
            if not isinstance(payload, dict):  # an upcaster may rely on a JSON object
                raise UndecodableEvent(current, "body is not a JSON object")
            current, upcast = self._upcasters[current]
            payload = upcast(payload)
        model = self.model_for(current)
        try:
            return model.model_validate(payload, extra="ignore")
        except ValidationError as exc:
            raise UndecodableEvent(current, str(exc)) from exc

    @staticmethod
    def encode(event: DomainEvent) -> bytes:
        # What model_dump_json() writes, as bytes: it would decode them to str, and the
        # store would encode them again, on every append.
        return event.__pydantic_serializer__.to_json(event)

    def types(self) -> list[str]:
        return sorted(self._models)

    def models(self) -> Iterable[type[DomainEvent]]:
        return (self._models[t] for t in self.types())

    def schema_for(self, event_type: str) -> dict[str, Any]:
        model = self.model_for(event_type)
        schema = _tolerant(model.model_json_schema(mode="serialization"))
        return {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": schema_uri(event_type),
            "x-cloudevents-type": event_type,
            "x-nats-subject": _subject_pattern(model.meta),
            **schema,
        }


def _tolerant(node: Any) -> Any:
    """The published schema lets readers meet fields they do not know: pydantic writes
    ``additionalProperties: false`` for the strict models, readers must not inherit it."""
    if isinstance(node, dict):
        return {
            key: _tolerant(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [_tolerant(value) for value in node]
    return node


def _subject_pattern(meta: EventMeta) -> str:
    return f"{meta.context}.{meta.aggregate}.<{meta.id_field}>.{meta.subject_event}"


def schema_uri(event_type: str) -> str:
    """The path, on any Agora service, of the schema of ``event_type``."""
    return f"{SCHEMA_PATH}{event_type}.json"


def render_schemas(registry: EventRegistry) -> dict[str, str]:
    """File name → JSON text of every registered type's schema (stable, sorted keys)."""
    return {
        f"{event_type}.json": json.dumps(
            registry.schema_for(event_type), indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
        for event_type in registry.types()
    }


_TEXT = {"type": "string"}
_CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 in binary mode: attributes as ce-* headers, values "
    "percent-encoded (UTF-8) as in the HTTP binding. Ignore headers you do not know.",
    "required": [
        "ce-specversion",
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-subject",
        "ce-time",
        "content-type",
    ],
    "properties": {
        "ce-specversion": {"const": "1.0"},
        "ce-id": {**_TEXT, "description": "unique per event: deduplicate on it"},
        "ce-source": {**_TEXT, "description": "the producing context, e.g. /agora/agenda"},
        "ce-type": {**_TEXT, "description": "agora.<context>.<aggregate>.<event>.v<major>"},
        "ce-subject": {**_TEXT, "description": "the aggregate id"},
        "ce-time": {**_TEXT, "format": "date-time"},
        "ce-dataschema": {
            **_TEXT,
            "format": "uri-reference",
            "description": "the event's JSON Schema, served by every Agora service at "
            "/events/schemas/<ce-type>.json",
        },
        "content-type": {"const": "application/json"},
        "ce-datacontenttype": {
            "const": "application/json",
            "description": "the CloudEvents NATS binding's own header for the data's media "
            "type; the same value as content-type",
        },
        "ce-actor": {**_TEXT, "description": "who caused the event (an opaque id)"},
        "ce-correlationid": _TEXT,
        "ce-causationid": _TEXT,
        "ce-aggregateversion": {
            **_TEXT,
            "pattern": "^[0-9]+$",
            "description": "the event's 1-based position among its aggregate's events",
        },
        "ce-idempotencykey": {**_TEXT, "description": "the command's idempotency key"},
        "ce-requestdigest": {**_TEXT, "description": "digest of the keyed command's request"},
        "traceparent": {**_TEXT, "description": "W3C trace context"},
        "tracestate": {**_TEXT, "description": "W3C trace context"},
        "Nats-Msg-Id": {
            **_TEXT,
            "description": "JetStream publish control (deduplication), stored with the "
            "message: not part of the event",
        },
        "Nats-Expected-Last-Subject-Sequence": {
            **_TEXT,
            "description": "JetStream publish control (optimistic concurrency), stored with "
            "the message: not part of the event",
        },
        "Nats-Expected-Last-Subject-Sequence-Subject": {
            **_TEXT,
            "description": "JetStream publish control, stored with the message",
        },
        "Nats-Batch-Id": {
            **_TEXT,
            "description": "JetStream atomic batch control, stored with the message",
        },
        "Nats-Batch-Sequence": {
            **_TEXT,
            "description": "JetStream atomic batch control, stored with the message",
        },
        "Nats-Batch-Commit": {
            **_TEXT,
            "description": "JetStream atomic batch control, stored with the message",
        },
    },
}
_FEED_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The stored message as it is, plus the headers the server adds when it "
    "republishes it onto the live feed.",
    "allOf": [{"$ref": "#/components/schemas/CloudEventHeaders"}],
    "required": ["Nats-Stream", "Nats-Sequence", "Nats-Subject", "Nats-Last-Sequence"],
    "properties": {
        "Nats-Stream": {**_TEXT, "description": "the stream that stores the event, e.g. AGENDA"},
        "Nats-Sequence": {
            **_TEXT,
            "pattern": "^[0-9]+$",
            "description": "the event's stream sequence: resume history after it",
        },
        "Nats-Subject": {**_TEXT, "description": "the subject the event is stored under"},
        "Nats-Last-Sequence": {
            **_TEXT,
            "pattern": "^[0-9]+$",
            "description": "the stream sequence of the previous message on the same "
            "subject (0: none); a gap tells a live subscriber it missed one",
        },
        "Nats-Time-Stamp": {**_TEXT, "format": "date-time"},
    },
}
FEED_PREFIX = "feed."
"""The stream republishes every stored event onto ``feed.<subject>``: the live feed."""


def _message(model: type[DomainEvent], headers: str, live: bool) -> dict[str, Any]:
    meta = model.meta
    message: dict[str, Any] = {
        "name": meta.type,
        "title": model.__name__,
        "contentType": "application/json",
        "headers": {"$ref": f"#/components/schemas/{headers}"},
        "payload": {"$ref": f"schemas/{meta.type}.json"},
    }
    doc = inspect.cleandoc(model.__doc__ or "")
    if doc and model.__doc__ != DomainEvent.__doc__:
        message["summary"] = doc.split("\n\n")[0].replace("\n", " ")
        message["description"] = doc
    if live:
        message["description"] = (message.get("description", "") + "\n\n").lstrip() + (
            "Live copy of the stored event, republished by the server."
        )
    return message


def render_asyncapi(registry: EventRegistry) -> str:
    """An AsyncAPI 3.0 description of every event type: its stream subject, where history
    is read, and its live-feed subject, where live subscribers listen (both read-only)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type in registry.types():
        model = registry.model_for(event_type)
        meta = model.meta
        key = event_type.removeprefix("agora.").replace(".", "_")
        address = f"{meta.context}.{meta.aggregate}.{{{meta.id_field}}}.{meta.subject_event}"
        parameters = {meta.id_field: {"description": f"the {meta.aggregate} id"}}
        stream = meta.context.upper()
        messages[key] = _message(model, "CloudEventHeaders", live=False)
        messages[f"{key}_live"] = _message(model, "FeedHeaders", live=True)
        channels[key] = {
            "address": address,
            "title": f"{event_type} (stored)",
            "description": f"Stored in stream {stream}: read history with a durable "
            "consumer or a direct get on this subject. Only Agora publishes here.",
            "parameters": parameters,
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        }
        channels[f"{key}_live"] = {
            "address": FEED_PREFIX + address,
            "title": f"{event_type} (live)",
            "description": f"The live feed: each event stored in {stream} is republished "
            "here by the server as it is stored. Subscribe read-only; nothing is kept here.",
            "parameters": parameters,
            "messages": {key: {"$ref": f"#/components/messages/{key}_live"}},
        }
        operations[f"append_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"The {meta.context} service appends {event_type} to stream {stream}",
            "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}],
        }
        operations[f"feed_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}_live"},
            "summary": f"The server republishes each stored {event_type} to the live feed",
            "messages": [{"$ref": f"#/channels/{key}_live/messages/{key}"}],
        }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Agora event streams",
            "version": "1",
            "description": "Domain events of the Agora forum platform on NATS JetStream, "
            "as CloudEvents in binary mode. Live subscribers listen on feed.<context>.> "
            "(e.g. feed.agenda.session.*.moved); history is in the streams, one per context, "
            "on <context>.> (durable consumers or direct get). Both are read-only for "
            "subscribers. Ignore fields and headers you do not know; dispatch on ce-type.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "{host}:{port}",
                "protocol": "nats",
                "description": "The platform's NATS server (agora up: 127.0.0.1:4222)",
                "variables": {
                    "host": {"default": "127.0.0.1", "description": "NATS host"},
                    "port": {"default": "4222", "description": "NATS client port"},
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"CloudEventHeaders": _CE_HEADERS, "FeedHeaders": _FEED_HEADERS},
            "messages": messages,
        },
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_catalogue_table(registry: EventRegistry) -> str:
    """A Markdown index of every event type, generated so it can never drift from the code."""
    lines = [
        "# Event types",
        "",
        "Generated by `agora catalogue write` from the contracts in",
        "`libs/events/agora_events/contracts/`; do not edit by hand.",
        "",
        "| type | subject | fields | schema |",
        "|---|---|---|---|",
    ]
    for event_type in registry.types():
        model = registry.model_for(event_type)
        meta = model.meta
        subject = f"`{meta.context}.{meta.aggregate}.<{meta.id_field}>.{meta.subject_event}`"
        fields = ", ".join(
            f"{name}{'' if info.is_required() else '?'}"
            for name, info in model.model_fields.items()
        )
        link = f"[json](schemas/{event_type}.json)"
        lines.append(f"| `{event_type}` | {subject} | {fields} | {link} |")
    return "\n".join(lines) + "\n"


def _generated_documents(registry: EventRegistry) -> dict[str, str]:
    return {
        ASYNCAPI_FILE: render_asyncapi(registry),
        CATALOGUE_FILE: render_catalogue_table(registry),
    }


def write_schemas(registry: EventRegistry, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas(registry)
    for stale in directory.glob("agora.*.json"):
        if stale.name not in rendered:
            stale.unlink()
    for name, text in rendered.items():
        (directory / name).write_text(text, encoding="utf-8")
    for name, text in _generated_documents(registry).items():
        (directory.parent / name).write_text(text, encoding="utf-8")
    return sorted(rendered)


def stale_schemas(registry: EventRegistry, directory: Path) -> list[str]:
    """Names of schema files that are missing, outdated or no longer registered."""
    rendered = render_schemas(registry)
    committed = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("agora.*.json")}
    problems = [name for name, text in rendered.items() if committed.get(name) != text]
    problems += [name for name in committed if name not in rendered]
    for name, text in _generated_documents(registry).items():
        document = directory.parent / name
        if not document.exists() or document.read_text(encoding="utf-8") != text:
            problems.append(name)
    return sorted(problems)


catalogue = EventRegistry()
"""The platform's one registry; contracts register into it when imported."""
