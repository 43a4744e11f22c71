from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agora_events.catalogue import (
    CatalogueError,
    DomainEvent,
    EventRegistry,
    InvalidAggregateId,
    UndecodableEvent,
    UnknownEventType,
    catalogue,
    render_asyncapi,
    render_schemas,
    stale_schemas,
    validate_aggregate_id,
    write_schemas,
)
from agora_events.contracts import load_all

REPO = Path(__file__).resolve().parents[3]


class RoomAddedV1(DomainEvent):
    room_id: str
    name: str
    seats: int


class RoomAddedV2(DomainEvent):
    room_id: str
    name: str
    capacity: int
    accessible: bool


def registry_with_versions() -> tuple[EventRegistry, type[RoomAddedV2]]:
    """A private registry holding two versions of one event and the upcaster between them."""
    registry = EventRegistry()
    registry.event("agenda", "room", "added", version=1, id_field="room_id")(RoomAddedV1)
    registry.event("agenda", "room", "added", version=2, id_field="room_id")(RoomAddedV2)

    @registry.upcaster("agora.agenda.room.added.v1", "agora.agenda.room.added.v2")
    def _(payload: dict[str, Any]) -> dict[str, Any]:
        seats = payload.pop("seats")
        return {**payload, "capacity": seats, "accessible": False}

    return registry, RoomAddedV2


def test_names_types_and_subjects_after_context_aggregate_and_event() -> None:
    _, model = registry_with_versions()
    event = model(room_id="hall-a", name="Hall A", capacity=300, accessible=True)
    assert model.meta.type == "agora.agenda.room.added.v2"
    assert event.subject == "agenda.room.hall-a.added"


def test_events_are_frozen() -> None:
    _, model = registry_with_versions()
    event = model(room_id="hall-a", name="Hall A", capacity=300, accessible=True)
    with pytest.raises(ValueError, match="frozen"):
        event.name = "Hall B"  # type: ignore[misc]  # frozen: mypy knows it too


def test_upcasts_an_old_version_on_read() -> None:
    registry, model = registry_with_versions()
    old = json.dumps({"room_id": "hall-a", "name": "Hall A", "seats": 120}).encode()
    event = registry.decode("agora.agenda.room.added.v1", old)
    assert event == model(room_id="hall-a", name="Hall A", capacity=120, accessible=False)


def test_reports_an_unknown_type_instead_of_dropping_it() -> None:
    registry, _ = registry_with_versions()
    with pytest.raises(UnknownEventType, match=r"agora\.agenda\.room\.painted\.v1"):
        registry.decode("agora.agenda.room.painted.v1", b"{}")


def test_reports_a_payload_that_does_not_match_its_model() -> None:
    registry, _ = registry_with_versions()
    with pytest.raises(UndecodableEvent, match="capacity"):
        registry.decode("agora.agenda.room.added.v2", b'{"room_id": "x", "name": "y"}')


def test_refuses_a_model_without_its_id_field() -> None:
    with pytest.raises(CatalogueError, match="no id field"):

        @EventRegistry().event("agenda", "room", "added", id_field="room_id")
        class Broken(DomainEvent):
            name: str


@pytest.mark.parametrize("bad", ["", "a.b", "a*", "a>", "a b", "-x", "x" * 129])
def test_refuses_ids_that_would_break_subjects(bad: str) -> None:
    with pytest.raises(InvalidAggregateId):
        validate_aggregate_id(bad)


def test_schemas_are_json_schema_2020_12_and_validate_real_payloads() -> None:
    registry, model = registry_with_versions()
    schema = registry.schema_for("agora.agenda.room.added.v2")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    payload = json.loads(
        model(room_id="r", name="R", capacity=3, accessible=True).model_dump_json()
    )
    jsonschema.Draft202012Validator(schema).validate(payload)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"room_id": "r"})


def test_detects_stale_committed_schemas(tmp_path: Path) -> None:
    registry, _ = registry_with_versions()
    schemas = tmp_path / "schemas"
    write_schemas(registry, schemas)
    assert stale_schemas(registry, schemas) == []
    changed = schemas / "agora.agenda.room.added.v2.json"
    changed.write_text(changed.read_text().replace("capacity", "seats"))
    (schemas / "agora.agenda.room.removed.v1.json").write_text("{}")
    assert stale_schemas(registry, schemas) == [
        "agora.agenda.room.added.v2.json",
        "agora.agenda.room.removed.v1.json",
    ]


def test_asyncapi_describes_each_type_as_a_channel_with_cloudevents_headers() -> None:
    registry, _ = registry_with_versions()
    document = json.loads(render_asyncapi(registry))
    assert document["asyncapi"] == "3.0.0"
    channel = document["channels"]["agenda_room_added_v2"]
    assert channel["address"] == "agenda.room.{room_id}.added"
    assert channel["messages"]["agenda_room_added_v2"] == {
        "$ref": "#/components/messages/agenda_room_added_v2"
    }
    message = document["components"]["messages"]["agenda_room_added_v2"]
    assert message["payload"] == {"$ref": "schemas/agora.agenda.room.added.v2.json"}
    headers = document["components"]["schemas"]["CloudEventHeaders"]
    assert "ce-type" in headers["required"]
    assert "summary" not in message  # no docstring: no summary, never null


def test_asyncapi_describes_the_live_feed_with_the_headers_the_server_adds() -> None:
    registry, _ = registry_with_versions()
    document = json.loads(render_asyncapi(registry))
    live = document["channels"]["agenda_room_added_v2_live"]
    assert live["address"] == "feed.agenda.room.{room_id}.added"
    feed = document["components"]["schemas"]["FeedHeaders"]
    assert set(feed["required"]) == {
        "Nats-Stream",
        "Nats-Sequence",
        "Nats-Subject",
        "Nats-Last-Sequence",
    }
    assert document["servers"]["nats"]["host"] == "{host}:{port}"
    assert "null" not in json.dumps(document)


def test_a_stale_asyncapi_document_is_detected(tmp_path: Path) -> None:
    registry, _ = registry_with_versions()
    write_schemas(registry, tmp_path / "schemas")
    (tmp_path / "asyncapi.json").write_text("{}")
    (tmp_path / "catalogue.md").unlink()
    assert stale_schemas(registry, tmp_path / "schemas") == ["asyncapi.json", "catalogue.md"]


def test_committed_catalogue_matches_the_code() -> None:
    load_all()
    directory = REPO / "docs" / "events" / "schemas"
    stale = stale_schemas(catalogue, directory)
    assert stale == [], f"run './agora catalogue write' and commit: {stale}"
    assert len(render_schemas(catalogue)) >= 10


def test_decoding_ignores_fields_the_model_does_not_know() -> None:
    registry, model = registry_with_versions()
    body = json.dumps(
        {"room_id": "r", "name": "R", "capacity": 3, "accessible": True, "floor": 2}
    ).encode()
    event = registry.decode("agora.agenda.room.added.v2", body)
    assert event == model(room_id="r", name="R", capacity=3, accessible=True)


def test_decoding_ignores_unknown_fields_after_an_upcast_too() -> None:
    registry, model = registry_with_versions()
    body = b'{"room_id": "r", "name": "R", "seats": 3, "floor": 2}'
    event = registry.decode("agora.agenda.room.added.v1", body)
    assert event == model(room_id="r", name="R", capacity=3, accessible=False)


def test_decoding_ignores_unknown_fields_in_nested_objects() -> None:
    load_all()
    body = json.dumps(
        {
            "session_id": "s",
            "edition_id": "e",
            "kind": "workshop_session",
            "title": "T",
            "room_id": "r",
            "starts_at": "2025-09-10T09:00:00Z",
            "ends_at": "2025-09-10T10:00:00Z",
            "workshop": {"number": 5, "title": "W", "colour": "green"},
            "livestream": "https://example.org/s",
        }
    ).encode()
    event = catalogue.decode("agora.agenda.session.scheduled.v1", body)
    from agora_events.contracts.agenda import SessionScheduled

    assert isinstance(event, SessionScheduled)
    assert event.workshop is not None and event.workshop.number == 5


def test_building_an_event_in_code_refuses_unknown_fields() -> None:
    _, model = registry_with_versions()
    with pytest.raises(ValueError, match="floor"):
        model(room_id="r", name="R", capacity=3, accessible=True, floor=2)  # type: ignore[call-arg]


def test_a_body_that_is_not_json_is_undecodable() -> None:
    registry, _ = registry_with_versions()
    with pytest.raises(UndecodableEvent, match="not JSON"):
        registry.decode("agora.agenda.room.added.v2", b"{room")


def test_published_schemas_allow_additional_properties() -> None:
    load_all()
    for text in render_schemas(catalogue).values():
        assert '"additionalProperties": false' not in text
    registry, _ = registry_with_versions()
    schema = registry.schema_for("agora.agenda.room.added.v2")
    jsonschema.Draft202012Validator(schema).validate(
        {"room_id": "r", "name": "R", "capacity": 3, "accessible": True, "floor": 2}
    )


def test_dataschema_names_the_path_every_service_serves() -> None:
    _, model = registry_with_versions()
    assert model.meta.schema == "/events/schemas/agora.agenda.room.added.v2.json"
