"""The HTTP edge's table from rejections to statuses and the digest that binds an
idempotency key to its request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from agora_events.commands import IdempotencyKeyReused
from agora_events.decider import InvalidCommand, InvariantViolated, NotFound, Rejected
from agora_events.http import CallerOf, request_digest, status_of


class RoomTaken(InvariantViolated):
    """A service's own kind of rejection, below one of the kernel's."""


@pytest.mark.parametrize(
    ("rejection", "status"),
    [
        (NotFound("no session 's-1'"), 404),
        (InvalidCommand("a session must end after it starts"), 422),
        (IdempotencyKeyReused("k-1"), 422),
        (InvariantViolated("room 'Hall A' is taken"), 409),
        (RoomTaken("room 'Hall A' is taken by 'Plenary II' 09:30-11:00"), 409),
        (Rejected("refused"), 409),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Rejected) else str(value),
)
def test_each_kind_of_rejection_answers_its_status(rejection: Rejected, status: int) -> None:
    assert status_of(rejection) == status


def digest_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT"])
    async def echo(request: Request, caller: CallerOf) -> dict[str, Any]:
        return {
            "digest": await request_digest(request),
            "caller_digest": caller.digest,
            "body": (await request.body()).decode(),
        }

    return app


async def send(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=digest_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://agora") as client:
        response = await client.request(method, url, content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def digest_of(method: str, url: str, body: bytes = b"") -> str:
    digest: str = (await send(method, url, body))["digest"]
    return digest


BODY = b'{"room": "Hall A", "slots": [1, 2], "title": "Plenary \\u00e9"}'


async def test_the_same_json_spelled_otherwise_has_the_same_digest() -> None:
    spellings = [
        BODY,
        b'{"title":"Plenary \xc3\xa9","slots":[1,2],"room":"Hall A"}',
        b'\n  {\n    "slots" : [ 1 , 2 ],\n    "title" : "Plenary \\u00e9",'
        b'\n    "room" : "Hall A"\n  }\n',
    ]
    digests = {await digest_of("POST", "/sessions", body) for body in spellings}
    assert len(digests) == 1


async def test_the_order_of_query_parameters_does_not_change_the_digest() -> None:
    assert await digest_of("POST", "/sessions?a=1&b=2", BODY) == await digest_of(
        "POST", "/sessions?b=2&a=1", BODY
    )


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/sessions/s-2", BODY),
        ("PUT", "/sessions", BODY),
        ("POST", "/sessions?after=3", BODY),
        ("POST", "/sessions", BODY.replace(b"Hall A", b"Hall B")),
        ("POST", "/sessions", b'{"room": "Hall A", "slots": [2, 1], "title": "Plenary \\u00e9"}'),
        ("POST", "/sessions", b""),
    ],
    ids=[
        "another path",
        "another method",
        "another query",
        "another body",
        "another order in a list",
        "no body",
    ],
)
async def test_another_request_has_another_digest(method: str, url: str, body: bytes) -> None:
    assert await digest_of(method, url, body) != await digest_of("POST", "/sessions", BODY)


async def test_another_query_value_has_another_digest() -> None:
    assert await digest_of("POST", "/sessions?after=3", BODY) != await digest_of(
        "POST", "/sessions?after=4", BODY
    )


async def test_a_body_that_is_not_json_is_compared_byte_for_byte() -> None:
    assert await digest_of("POST", "/notes", b"hello") == await digest_of(
        "POST", "/notes", b"hello"
    )
    assert await digest_of("POST", "/notes", b"hello") != await digest_of(
        "POST", "/notes", b"hello "
    )


async def test_the_route_still_reads_the_body_after_the_digest_was_taken() -> None:
    answer = await send("POST", "/sessions", BODY, {"Idempotency-Key": "k-1"})
    assert answer["body"] == BODY.decode()
    assert answer["caller_digest"] == answer["digest"]


async def test_a_request_without_an_idempotency_key_binds_no_digest() -> None:
    assert (await send("POST", "/sessions", BODY))["caller_digest"] is None


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("/sessions?a=b%3Dc", b""), ("/sessions?a%3Db=c", b"")),
        (("/notes?n=x%0Ahello", b""), ("/notes?n=x", b"hello\n")),
    ],
    ids=["an equals sign in a key or a value", "a newline in the query or the body"],
)
async def test_distinct_requests_never_share_a_digest(
    one: tuple[str, bytes], other: tuple[str, bytes]
) -> None:
    assert await digest_of("POST", *one) != await digest_of("POST", *other)
