"""W3C trace context carried from an HTTP request to the events it causes, and into logs.

A request's ``traceparent`` (or a new one) is kept in a context variable for the request's
duration; command handlers put it on the events they append, projections restore it while
applying an event, and every log line carries its trace id.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
current_traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)


def new_traceparent(trace_id: str | None = None) -> str:
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_of(traceparent: str | None) -> str:
    """A new span in the same trace, or a new trace when the parent is absent or malformed."""
    match = _TRACEPARENT.match(traceparent or "")
    return new_traceparent(match.group(1) if match else None)


def trace_id(traceparent: str | None = None) -> str | None:
    match = _TRACEPARENT.match(traceparent or current_traceparent.get() or "")
    return match.group(1) if match else None


class TraceMiddleware(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        traceparent = child_of(request.headers.get("traceparent"))
        token = current_traceparent.set(traceparent)
        try:
            response = await call_next(request)
        finally:
            current_traceparent.reset(token)
        response.headers["traceparent"] = traceparent
        return response
