"""HTTP edge mechanisms every service shares: errors a person can act on, organiser auth,
idempotency keys and the command acknowledgement."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .catalogue import InvalidAggregateId
from .commands import ConcurrencyError
from .decider import Rejected
from .metrics import metrics_router
from .projections.runner import ReadModelBehind
from .store import StoreError
from .tracing import TraceMiddleware

log = logging.getLogger("agora.http")


class CommandAccepted(BaseModel):
    """What every command answers: the ids it touched and the stream sequence it reached.

    Pass ``sequence`` back as ``?after=`` on a query to read your own write."""

    ids: dict[str, str]
    sequence: int
    events: list[str]
    duplicate: bool = False


class Problem(BaseModel):
    error: str
    reason: str


def _problem(code: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse(status_code=code, content={"error": error, "reason": reason})


_ERRORS = {401: "Unauthenticated", 403: "Forbidden", 404: "NotFound", 409: "Conflict"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Rejected)
    async def rejected(_: Request, exc: Rejected) -> JSONResponse:
        return _problem(exc.status, type(exc).__name__, exc.reason)

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

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
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


def install_edges(app: FastAPI) -> None:
    """Everything every service's HTTP edge has: errors, trace context, /metrics."""
    install_error_handlers(app)
    app.add_middleware(TraceMiddleware)
    app.include_router(metrics_router())


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


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Send the same key when you retry a command; it is applied once.",
    ),
]
