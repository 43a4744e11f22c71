"""The event catalogue: frozen pydantic event models, a type registry, upcasters, schemas.

An event type reads ``agora.<context>.<aggregate>.<event>.v<major>``. The NATS subject of an
event is ``<context>.<aggregate>.<aggregate id>.<event>``; the id comes from the event's own
``id_field``, so every event knows where it belongs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

TOKEN = re.compile(r"^[a-z][a-z0-9_]*$")
ID_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
SCHEMA_BASE = "https://schemas.agora.example/events/"
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
    """Base of every event: frozen, strict about unknown fields, self-describing."""

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
        try:
            payload: dict[str, Any] = json.loads(data)
        except ValueError as exc:
            raise UndecodableEvent(event_type, f"body is not JSON ({exc})") from exc
        current = event_type
        while current in self._upcasters:
            current, upcast = self._upcasters[current]
            payload = upcast(payload)
        model = self.model_for(current)
        try:
            return model.model_validate(payload)
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
        schema = model.model_json_schema(mode="serialization")
        return {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": schema_uri(event_type),
            "x-cloudevents-type": event_type,
            "x-nats-subject": _subject_pattern(model.meta),
            **schema,
        }


def _subject_pattern(meta: EventMeta) -> str:
    return f"{meta.context}.{meta.aggregate}.<{meta.id_field}>.{meta.subject_event}"


def schema_uri(event_type: str) -> str:
    return f"{SCHEMA_BASE}{event_type}.json"


def render_schemas(registry: EventRegistry) -> dict[str, str]:
    """File name → JSON text of every registered type's schema (stable, sorted keys)."""
    return {
        f"{event_type}.json": json.dumps(
            registry.schema_for(event_type), indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
        for event_type in registry.types()
    }


_CE_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0 binary mode: attributes as ce-* headers, "
    "values percent-encoded as in the HTTP binding",
    "required": ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "content-type"],
    "properties": {
        "ce-specversion": {"const": "1.0"},
        "ce-id": {"type": "string"},
        "ce-source": {"type": "string"},
        "ce-type": {"type": "string"},
        "ce-subject": {"type": "string", "description": "the aggregate id"},
        "ce-time": {"type": "string", "format": "date-time"},
        "ce-dataschema": {"type": "string", "format": "uri"},
        "content-type": {"const": "application/json"},
        "ce-actor": {"type": "string"},
        "ce-correlationid": {"type": "string"},
        "ce-causationid": {"type": "string"},
        "ce-aggregateversion": {"type": "string", "pattern": "^[0-9]+$"},
        "ce-idempotencykey": {"type": "string"},
        "traceparent": {"type": "string", "description": "W3C trace context"},
    },
}


def render_asyncapi(registry: EventRegistry) -> str:
    """An AsyncAPI 3.0 description of every event type: one channel and message each."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event_type in registry.types():
        model = registry.model_for(event_type)
        meta = model.meta
        key = event_type.removeprefix("agora.").replace(".", "_")
        channels[key] = {
            "address": f"{meta.context}.{meta.aggregate}.{{{meta.id_field}}}.{meta.subject_event}",
            "parameters": {meta.id_field: {"description": f"the {meta.aggregate} id"}},
            "messages": {
                key: {
                    "name": event_type,
                    "title": model.__name__,
                    "summary": (model.__doc__ or "").strip().split("\n")[0] or None,
                    "contentType": "application/json",
                    "headers": _CE_HEADERS,
                    "payload": {"$ref": f"schemas/{event_type}.json"},
                }
            },
        }
        operations[f"publish_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"The {meta.context} service appends {event_type} to its stream",
        }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Agora event streams",
            "version": "1",
            "description": "Domain events of the Agora forum platform on NATS JetStream. "
            "Subscribe read-only with ordinary NATS wildcards, e.g. agenda.session.*.moved.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:4222", "protocol": "nats", "description": "agora up"}
        },
        "channels": channels,
        "operations": operations,
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
