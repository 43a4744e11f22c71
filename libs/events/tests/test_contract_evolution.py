"""Within a major version a released event type only gains optional fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from agora_events.catalogue import DomainEvent, EventRegistry, catalogue, render_schemas
from agora_events.contracts import load_all
from agora_events.evolution import incompatibilities, release

REPO = Path(__file__).resolve().parents[3]
TYPE = "agora.agenda.room.added.v1"


class Door(BaseModel):
    number: int
    label: str | None = None


def registry_of(**fields: Any) -> EventRegistry:
    """A private registry whose one type, agora.agenda.room.added.v1, has ``fields``."""
    annotations = {name: kind for name, (kind, _) in fields.items()}
    defaults = {name: default for name, (_, default) in fields.items() if default is not ...}
    model = type("RoomAdded", (DomainEvent,), {"__annotations__": annotations, **defaults})
    registry = EventRegistry()
    registry.event("agenda", "room", "added", id_field="room_id")(model)
    return registry


RELEASED = {"room_id": (str, ...), "name": (str, ...), "seats": (int, ...), "door": (Door, ...)}


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    directory = tmp_path / "baseline"
    assert release(registry_of(**RELEASED), directory) == [TYPE]
    return directory


def test_adding_an_optional_field_is_compatible(baseline: Path) -> None:
    registry = registry_of(**RELEASED, accessible=(bool, False), note=(str | None, None))
    assert incompatibilities(registry, baseline) == []


def test_changing_a_description_is_compatible(baseline: Path) -> None:
    seats = (int, Field(description="seats in theatre style"))
    registry = registry_of(**{**RELEASED, "seats": seats})
    assert incompatibilities(registry, baseline) == []


def test_removing_a_field_breaks_the_contract(baseline: Path) -> None:
    fields = {name: spec for name, spec in RELEASED.items() if name != "seats"}
    assert incompatibilities(registry_of(**fields), baseline) == [
        f"{TYPE}: field 'seats' was removed or renamed: make it v2 with an upcaster"
    ]


def test_renaming_a_field_breaks_the_contract(baseline: Path) -> None:
    fields = {name: spec for name, spec in RELEASED.items() if name != "seats"}
    problems = incompatibilities(registry_of(**fields, capacity=(int, ...)), baseline)
    assert problems == [
        f"{TYPE}: field 'seats' was removed or renamed: make it v2 with an upcaster",
        f"{TYPE}: field 'capacity' is new and required (add it as optional): "
        "make it v2 with an upcaster",
    ]


def test_changing_a_field_type_breaks_the_contract(baseline: Path) -> None:
    (problem,) = incompatibilities(registry_of(**{**RELEASED, "seats": (str, ...)}), baseline)
    assert problem.startswith(f"{TYPE}: field 'seats' changed type (")
    assert '"integer"' in problem and '"string"' in problem
    assert problem.endswith("make it v2 with an upcaster")


def test_a_new_required_field_breaks_the_contract(baseline: Path) -> None:
    assert incompatibilities(registry_of(**RELEASED, floor=(int, ...)), baseline) == [
        f"{TYPE}: field 'floor' is new and required (add it as optional): "
        "make it v2 with an upcaster"
    ]


def test_nested_objects_follow_the_same_rules(baseline: Path) -> None:
    class Door(BaseModel):  # the released Door without its label, and number a string
        number: str

    assert incompatibilities(registry_of(**{**RELEASED, "door": (Door, ...)}), baseline) == [
        f"{TYPE}: field 'door.label' was removed or renamed: make it v2 with an upcaster",
        f"{TYPE}: field 'door.number' changed type "
        '({"type": "integer"} → {"type": "string"}): make it v2 with an upcaster',
    ]


def test_a_released_type_may_retire_only_behind_an_upcaster(baseline: Path) -> None:
    fields = {**RELEASED, "capacity": (int, ...)}
    del fields["seats"]
    v2 = type(
        "RoomAddedV2", (DomainEvent,), {"__annotations__": {k: t for k, (t, _) in fields.items()}}
    )
    registry = EventRegistry()
    registry.event("agenda", "room", "added", version=2, id_field="room_id")(v2)
    (problem,) = incompatibilities(registry, baseline)
    assert "no longer in the catalogue" in problem

    @registry.upcaster(TYPE, "agora.agenda.room.added.v2")
    def _(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "capacity": payload.pop("seats")}

    assert incompatibilities(registry, baseline) == []


def test_release_refuses_an_incompatible_catalogue(baseline: Path) -> None:
    before = (baseline / f"{TYPE}.json").read_text()
    with pytest.raises(ValueError, match="make it v2 with an upcaster"):
        release(registry_of(**{**RELEASED, "seats": (str, ...)}), baseline)
    assert (baseline / f"{TYPE}.json").read_text() == before


def test_release_records_added_optional_fields(baseline: Path) -> None:
    registry = registry_of(**RELEASED, accessible=(bool, False))
    assert release(registry, baseline) == [TYPE]
    released = json.loads((baseline / f"{TYPE}.json").read_text())
    assert "accessible" in released["properties"]
    narrower = registry_of(**RELEASED)
    assert incompatibilities(narrower, baseline) == [
        f"{TYPE}: field 'accessible' was removed or renamed: make it v2 with an upcaster"
    ]


def test_the_platform_catalogue_is_compatible_with_its_committed_baseline() -> None:
    load_all()
    baseline = REPO / "docs" / "events" / "baseline"
    released = {path.name for path in baseline.glob("agora.*.json")}
    assert released, "docs/events/baseline/ holds the released schemas"
    assert len(released) >= len(render_schemas(catalogue)) - 5  # new types are unreleased
    assert incompatibilities(catalogue, baseline) == []
