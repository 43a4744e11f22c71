"""Contract evolution: what a released event type may still change within its major version.

``docs/events/baseline/<type>.json`` holds the schema of every released type as it was last
released (``agora catalogue release``). Against it, a current schema may add optional fields
and change descriptions; anything else breaks a reader somewhere — a subscriber, a replica of
the previous release, or this release reading old events — and must be a new major version
with an upcaster:

* a field removed or renamed (a rename is a removal plus an addition),
* a field's type changed: its JSON type, format, enum or const, constraints, items, variants,
* a new required field, or a field that becomes required.

Nested objects (``$defs``) are compared by the same rules. A released type that is no longer
in the catalogue must have an upcaster to one that is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalogue import EventRegistry, render_schemas

ANNOTATIONS = frozenset(
    {"title", "description", "examples", "default", "$comment", "deprecated", "readOnly"}
)
"""Keywords that document a value without constraining it: free to change."""
_STRUCTURE = frozenset({"properties", "required", "items", "prefixItems", "anyOf", "oneOf"})
_DOCUMENT = frozenset({"$schema", "$id", "$defs", "additionalProperties"})
ADVICE = "make it v2 with an upcaster"


@dataclass(frozen=True, slots=True)
class Breach:
    """One change a released event type may not have within its major version."""

    event_type: str
    field: str
    change: str

    def __str__(self) -> str:
        return f"{self.event_type}: field {self.field!r} {self.change}: {ADVICE}"


def breaches(event_type: str, released: dict[str, Any], current: dict[str, Any]) -> list[Breach]:
    """How ``current`` breaks the ``released`` schema of ``event_type`` (empty: compatible)."""
    return list(_Comparison(event_type, released, current).object("", released, current))


class _Comparison:
    def __init__(self, event_type: str, released: dict[str, Any], current: dict[str, Any]):
        self.event_type = event_type
        self.documents = (released, current)

    def _resolve(self, side: int, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 32:
            pointer = node["$ref"]
            if not pointer.startswith("#/"):
                return node
            target: Any = self.documents[side]
            for part in pointer[2:].split("/"):
                target = target[part]
            node = target
            seen += 1
        return node

    def _breach(self, field: str, change: str) -> Breach:
        return Breach(self.event_type, field, change)

    def object(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Breach]:
        old_fields: dict[str, Any] = old.get("properties", {})
        new_fields: dict[str, Any] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_schema in old_fields.items():
            field = f"{path}{name}"
            if name not in new_fields:
                yield self._breach(field, "was removed or renamed")
                continue
            if name in new_required and name not in old_required:
                yield self._breach(field, "became required")
            yield from self.value(field, old_schema, new_fields[name])
        for name in new_fields.keys() - old_fields.keys():
            if name in new_required:
                yield self._breach(f"{path}{name}", "is new and required (add it as optional)")

    def value(self, field: str, old: Any, new: Any) -> Iterator[Breach]:
        old, new = self._resolve(0, old), self._resolve(1, new)
        if not isinstance(old, dict) or not isinstance(new, dict):
            if old != new:
                yield self._breach(field, "changed type")
            return
        old_rest, new_rest = _constraints(old), _constraints(new)
        if old_rest != new_rest:
            yield self._breach(field, f"changed type ({_show(old_rest)} → {_show(new_rest)})")
            return
        if "properties" in old or "properties" in new:
            yield from self.object(f"{field}.", old, new)
        for keyword in ("anyOf", "oneOf", "prefixItems"):
            old_list, new_list = old.get(keyword, []), new.get(keyword, [])
            if len(old_list) != len(new_list):
                yield self._breach(field, f"changed type ({keyword} has other variants)")
                continue
            for old_item, new_item in zip(old_list, new_list, strict=True):
                yield from self.value(field, old_item, new_item)
        if "items" in old or "items" in new:
            yield from self.value(f"{field}[]", old.get("items"), new.get("items"))


def _constraints(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in schema.items()
        if key not in ANNOTATIONS
        and key not in _STRUCTURE
        and key not in _DOCUMENT
        and not key.startswith("x-")
    }


def _show(constraints: dict[str, Any]) -> str:
    return json.dumps(constraints, sort_keys=True, ensure_ascii=False) if constraints else "{}"


# -- the committed baseline ----------------------------------------------------------------


def read_baseline(directory: Path) -> dict[str, dict[str, Any]]:
    """Event type → its released schema."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("agora.*.json"))
    }


def incompatibilities(registry: EventRegistry, baseline: Path) -> list[str]:
    """Every way the registry's schemas break the released ones, as messages to act on."""
    current = {
        name.removesuffix(".json"): json.loads(text)
        for name, text in render_schemas(registry).items()
    }
    problems: list[str] = []
    for event_type, released in read_baseline(baseline).items():
        schema = current.get(event_type)
        if schema is None:
            target = registry.current_type(event_type)
            if target == event_type or target not in current:
                problems.append(
                    f"{event_type}: released, but no longer in the catalogue and no upcaster "
                    f"turns it into a type that is: keep its model, or {ADVICE} from it"
                )
            continue
        problems += [str(breach) for breach in breaches(event_type, released, schema)]
    return problems


def release(registry: EventRegistry, baseline: Path) -> list[str]:
    """Record the registry's schemas as released; refused (ValueError) while incompatible.

    Types released before stay in the baseline even when retired behind an upcaster: old
    events of them are still in the streams."""
    problems = incompatibilities(registry, baseline)
    if problems:
        raise ValueError("\n".join(problems))
    baseline.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas(registry).items():
        path = baseline / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name.removesuffix(".json"))
    return written
