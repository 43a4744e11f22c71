"""Input a read model or a header cannot hold is refused at the edge, naming the field."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from agora_events.http import CallerOf, install_error_handlers
from agora_events.text import Line, Prose


class Body(BaseModel):
    name: Line = Field(min_length=1, max_length=200)
    reason: Prose | None = None


def app() -> FastAPI:
    api = FastAPI()
    install_error_handlers(api)

    @api.post("/things")
    async def create(body: Body, caller: CallerOf) -> dict[str, str | None]:
        return {"name": body.name, "key": caller.key}

    return api


async def post(
    body: dict[str, object], headers: dict[bytes, bytes] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://agora") as client:
        # json.dumps escapes what is not ASCII, as a client may: "\ud800" arrives as such.
        content = json.dumps(body).encode()
        sent = {b"content-type": b"application/json", **(headers or {})}
        return await client.post("/things", content=content, headers=sent)


@pytest.mark.parametrize(
    "name", ["Ada\x00", "Ada\tLovelace", "Ada\nLovelace", "Ada\x7f", "Ada\x85"]
)
async def test_a_name_with_a_control_character_is_refused_naming_the_field(name: str) -> None:
    response = await post({"name": name})

    assert response.status_code == 422
    assert response.json()["error"] == "InvalidRequest"
    assert response.json()["reason"].startswith("name: must not contain U+")


async def test_a_lone_surrogate_is_refused_naming_the_field() -> None:
    response = await post({"name": "Ada\ud800"})

    assert response.status_code == 422
    assert response.json()["reason"].startswith("name: ")


@pytest.mark.parametrize("name", ["Ada Lovelace", "Côte d'Ivoire", "Ōsaka 大阪", "O'Brien—Smith"])
async def test_a_name_in_any_script_is_accepted(name: str) -> None:
    response = await post({"name": name})

    assert response.status_code == 200
    assert response.json()["name"] == name


async def test_free_text_may_hold_tabs_and_line_breaks_but_no_other_control_character() -> None:
    assert (await post({"name": "a", "reason": "one\r\ntwo\tthree"})).status_code == 200

    refused = await post({"name": "a", "reason": "bell\x07"})

    assert refused.status_code == 422
    assert "reason: must not contain U+0007" in refused.json()["reason"]


@pytest.mark.parametrize("key", [b"k\t1", "clé-1".encode(), b"k\x7f", b"k\x85"])
async def test_an_idempotency_key_outside_printable_ascii_is_refused_saying_what_is_allowed(
    key: bytes,
) -> None:
    response = await post({"name": "a"}, headers={b"Idempotency-Key": key})

    assert response.status_code == 422
    reason = response.json()["reason"]
    assert "Idempotency-Key" in reason and "1-200 printable ASCII characters" in reason


async def test_a_printable_ascii_idempotency_key_is_accepted() -> None:
    response = await post({"name": "a"}, headers={b"Idempotency-Key": b"order 42/retry~1"})

    assert response.status_code == 200
    assert response.json()["key"] == "order 42/retry~1"
