"""HTTP edge mechanisms every service shares: errors a person can act on (one table from
rejection kinds to statuses), organiser auth, idempotency keys bound to their request, the
``?after=`` read-your-writes parameter and the command acknowledgement."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .catalogue import InvalidAggregateId
from .commands import ConcurrencyError
from .decider import InvalidCommand, InvariantViolated, NotFound, Rejected
from .metrics import metrics_router
from .projections.runner import ReadModelBehind
from .store import StoreError
from .tracing import TraceMiddleware
from .usecases import Caller, Outcome

log = logging.getLogger("agora.http")
REQUESTS_REFUSED = Counter(
    "agora_http_requests_refused",
    "Requests answered 503 at once because the service had its limit of requests in progress",
)


class CommandAccepted(BaseModel):
    """What every command answers: the ids it touched and the stream sequence it reached.

    Pass ``sequence`` back as ``?after=`` on a query to read your own write."""

    ids: dict[str, str]
    sequence: int
    events: list[str]
    duplicate: bool = False


PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """An error answer: RFC 9457 problem details (``type``, ``title``, ``status``,
    ``detail``), with Agora's ``error`` (the kind, as a name) and ``reason`` (the detail)."""

    type: str = Field(description="URI of the kind of problem: urn:agora:problem:<error>")
    title: str = Field(description="the kind of problem, in words")
    status: int
    detail: str
    error: str
    reason: str


def problem_body(code: int, error: str, reason: str) -> dict[str, Any]:
    return {
        "type": f"urn:agora:problem:{error}",
        "title": _CAPITAL.sub(r" \1", error).strip().capitalize(),
        "status": code,
        "detail": reason,
        "error": error,
        "reason": reason,
    }


_CAPITAL = re.compile(r"(?<!^)([A-Z])")


def _problem(code: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse(
        status_code=code, content=problem_body(code, error, reason), media_type=PROBLEM_JSON
    )


_ERRORS = {401: "Unauthenticated", 403: "Forbidden", 404: "NotFound", 409: "Conflict"}

REJECTION_STATUS: tuple[tuple[type[Rejected], int], ...] = (
    (NotFound, 404),
    (InvalidCommand, 422),
    (InvariantViolated, 409),
    (Rejected, 409),
)
"""The one table from the domain's rejection kinds to HTTP statuses; the first match wins."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_JSON: {}}}
    for code in (401, 403, 404, 409, 422, 503)
}
"""The error answers every route may give, for the OpenAPI document."""


def status_of(rejection: Rejected) -> int:
    for kind, code in REJECTION_STATUS:
        if isinstance(rejection, kind):
            return code
    raise AssertionError("unreachable: Rejected itself is in the table")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Rejected)
    async def rejected(_: Request, exc: Rejected) -> JSONResponse:
        return _problem(status_of(exc), type(exc).__name__, exc.reason)

    @app.exception_handler(InvalidAggregateId)
    async def bad_id(_: Request, exc: InvalidAggregateId) -> JSONResponse:
        return _problem(422, "InvalidId", str(exc))

    @app.exception_handler(ConcurrencyError)
    async def contended(_: Request, exc: ConcurrencyError) -> JSONResponse:
        return _problem(409, "ConcurrencyConflict", f"{exc}; retry the request")

    @app.exception_handler(StoreError)
    async def store_down(_: Request, exc: StoreError) -> JSONResponse:
        log.warning("event store error", extra={"error": type(exc).__name__})
        return _problem(503, "EventStoreUnavailable", f"{exc}; retry with the same Idempotency-Key")

    @app.exception_handler(ReadModelBehind)
    async def behind(_: Request, exc: ReadModelBehind) -> JSONResponse:
        response = _problem(503, "ReadModelBehind", str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    # Starlette's, so that the router's own 404 and 405 are problem details too.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _problem(exc.status_code, _ERRORS.get(exc.status_code, "Error"), str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            reasons.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        return _problem(422, "InvalidRequest", "; ".join(reasons))


ADMISSION_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
_BUSY = json.dumps(
    problem_body(503, "Overloaded", "the service is at capacity; retry after a second")
).encode()


class AdmissionControl:
    """At most ``limit`` requests in progress; the next one is answered 503 with
    ``Retry-After`` at once instead of joining a queue that only grows while the service is
    saturated (every request then waits for all the others, and none answers in time).
    Health and metrics are always admitted. ``limit`` 0 admits everything.

    A read of one's own write (a ``GET`` with ``?after=``) finishes work the service has
    already done, so it may go past ``limit``, up to twice it in all: a saturated service
    turns away new work, not the reads of the writes it has just made. Refused, those reads
    would throw their writes' work away, and the service would spend ever more of itself on
    work nobody sees."""

    def __init__(self, app: ASGIApp, *, limit: int, retry_after: int = 1) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = str(retry_after)
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["path"] in ADMISSION_EXEMPT:
            await self.app(scope, receive, send)
            return
        room = 2 * self.limit if reads_own_write(scope) else self.limit
        if self.in_progress >= room:
            await self._refuse(send)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1

    async def _refuse(self, send: Send) -> None:
        REQUESTS_REFUSED.inc()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(_BUSY)).encode()),
                    (b"retry-after", self.retry_after.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BUSY})


def reads_own_write(scope: Scope) -> bool:
    """A ``GET`` (or ``HEAD``) naming ``after``, the sequence a command answered."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    query: bytes = scope.get("query_string", b"")
    return any(item.partition(b"=")[0] == b"after" for item in query.split(b"&"))


def install_edges(app: FastAPI) -> None:
    """Everything every service's HTTP edge has: errors, trace context, /metrics."""
    install_error_handlers(app)
    app.add_middleware(TraceMiddleware)
    app.include_router(metrics_router())


def organiser_required(token: Callable[[], str]) -> Callable[..., Awaitable[None]]:
    """``organiser_guard`` as an async dependency: FastAPI runs a plain function dependency
    on its thread pool, a hop per request that shows under load."""
    guard = organiser_guard(token)

    async def require_organiser(
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        guard(authorization)

    return require_organiser


def organiser_guard(token: Callable[[], str]) -> Callable[..., None]:
    """A FastAPI dependency refusing requests without the organiser bearer token."""

    def require_organiser(
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        expected = token()
        if authorization is None or not authorization.startswith("Bearer "):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "this action needs an organiser token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(
            authorization.removeprefix("Bearer ").encode(), expected.encode()
        ):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the organiser token is not valid")

    return require_organiser


_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


def printable_key(value: str | None) -> str | None:
    """An idempotency key travels in event headers and logs: printable ASCII only. (A UTF-8
    header would arrive garbled anyway: Starlette decodes header bytes as Latin-1.)"""
    if value is not None and not _PRINTABLE_ASCII.fullmatch(value):
        raise PydanticCustomError(
            "idempotency_key",
            "use 1-200 printable ASCII characters (space to '~'); "
            "control characters and non-ASCII are not allowed",
        )
    return value


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Send the same key when you retry a command; it is applied once. "
        "The key is bound to the request: the same key with another request gets 422. "
        "1-200 printable ASCII characters.",
    ),
    AfterValidator(printable_key),
]
CorrelationId = Annotated[
    str | None,
    Header(
        alias="X-Correlation-Id",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Carried by every event this command appends; one is made if left out.",
    ),
]
After = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,  # what an SQL BIGINT holds; larger is no sequence anyway
        description="A sequence a command answered: wait (bounded) until the read model has it",
    ),
]


async def request_digest(request: Request) -> str:
    """What a request asks for, independent of how it is spelled: method, path, query and
    body (JSON compared as data, so key order and spacing do not matter)."""
    body = await request.body()  # Starlette keeps it; the route reads it again for free
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    # Query items sorted by name (repeated values keep their order), all of it as one JSON
    # line, so no two requests spell the same text; the body follows the line's end.
    query = sorted(request.query_params.multi_items(), key=lambda item: item[0])
    head = json.dumps([request.method, request.url.path, query], ensure_ascii=False)
    digest = hashlib.sha256(head.encode() + b"\n")
    digest.update(canonical)
    return digest.hexdigest()[:32]


async def caller_of(
    request: Request, key: IdempotencyKey = None, correlation: CorrelationId = None
) -> Caller:
    """The caller of a command request; its actor is set by the route that knows it."""
    digest = await request_digest(request) if key is not None else None
    return Caller(key=key, digest=digest, correlation_id=correlation)


CallerOf = Annotated[Caller, Depends(caller_of)]


def accepted(outcome: Outcome) -> CommandAccepted:
    return CommandAccepted(
        ids=outcome.ids,
        sequence=outcome.sequence,
        events=outcome.events,
        duplicate=outcome.duplicate,
    )
