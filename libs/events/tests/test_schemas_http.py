"""Every service serves the catalogue, so ce-dataschema resolves."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.testclient import TestClient

from agora_events.catalogue import EventRegistry, catalogue, render_schemas
from agora_events.contracts import load_all
from agora_events.schemas_http import schemas_router

from .test_catalogue import registry_with_versions


def client(registry: EventRegistry | None = None) -> TestClient:
    app = FastAPI()
    app.include_router(schemas_router(registry))
    return TestClient(app)


def test_serves_the_schema_that_ce_dataschema_names() -> None:
    registry, model = registry_with_versions()
    answer = client(registry).get(model.meta.schema)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/schema+json"
    assert answer.json()["x-cloudevents-type"] == "agora.agenda.room.added.v2"


def test_serves_exactly_the_committed_schemas_of_the_platform() -> None:
    load_all()
    served = client()
    for name, text in render_schemas(catalogue).items():
        assert served.get(f"/events/schemas/{name}").text == text
    assert served.get("/events/schemas").json() == catalogue.types()
    assert json.loads(served.get("/events/asyncapi.json").text)["asyncapi"] == "3.0.0"


def test_an_unknown_type_is_a_404_that_says_where_the_list_is() -> None:
    answer = client().get("/events/schemas/agora.agenda.room.painted.v1.json")
    assert answer.status_code == 404
    assert "/events/schemas" in answer.text


def test_ce_dataschema_is_the_schema_path_below_the_public_url() -> None:
    from typing import Any, cast

    from agora_events.settings import ServiceSettings
    from agora_events.store import EventStore, Metadata

    registry, model = registry_with_versions()
    settings = ServiceSettings(public_url="https://agenda.agora.example/")
    assert ServiceSettings(http_port=8100).base_url == "http://127.0.0.1:8100"
    store = EventStore(cast(Any, None), registry=registry, public_url=settings.base_url)
    event = model(room_id="r", name="R", capacity=3, accessible=True)
    (envelope,) = store.envelopes_for(
        [event], base_count=0, idempotency_key=None, metadata=Metadata()
    )
    assert envelope.dataschema == (
        "https://agenda.agora.example/events/schemas/agora.agenda.room.added.v2.json"
    )
