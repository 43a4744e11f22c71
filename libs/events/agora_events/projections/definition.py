"""How a service declares a projection.

    programme = Projection("programme", subjects=["agenda.>"], metadata=metadata)

    @programme.on(SessionScheduled)
    async def _(db: AsyncSession, event: SessionScheduled, ctx: EventContext) -> None:
        await db.execute(insert(sessions).values(...))

A handler changes rows and nothing else: no network calls, no commits (the runner commits the
batch together with the checkpoint). Events of types without a handler are skipped, but still
advance the checkpoint. Each handler runs in a CONSUMER span that continues the trace of the
request that appended its event (live runs only; a replay of history records no spans).

The runner queues a handler's INSERT/UPDATE/DELETE statements and sends them grouped (see
``writebehind``): reads always see earlier writes, but the result of a write (``rowcount``)
is not available unless the projection says ``write_behind=False``.

Every projection owns the tables of its ``metadata`` and nobody else writes them: the runner
drops and rebuilds them from the log when their DDL changes or when ``version`` is raised (raise
it when a handler's logic changes in a way the existing rows must be recomputed for).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncSession

from ..catalogue import DomainEvent
from ..envelope import Envelope
from ..streams import stream_for_subject
from ..tracing import consumer_span

E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[AsyncSession, Any, "EventContext"], Awaitable[None]]
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class EventContext:
    """Where an event sits in the log, for handlers that record history."""

    stream: str
    sequence: int
    subject: str
    envelope: Envelope

    @property
    def time(self) -> datetime:
        return self.envelope.time


class Projection:
    def __init__(
        self,
        name: str,
        *,
        subjects: Sequence[str],
        metadata: MetaData,
        version: int = 1,
        write_behind: bool = True,
    ) -> None:
        if not NAME.match(name):
            raise ValueError(f"projection name {name!r} must be snake_case (a-z, 0-9, _)")
        if not subjects:
            raise ValueError(f"projection {name!r} reads no subjects")
        self.name = name
        self.subjects = tuple(subjects)
        self.metadata = metadata
        self.version = version
        self.write_behind = write_behind
        self._handlers: dict[type[DomainEvent], Handler] = {}
        # Fails early on a subject outside every Agora stream.
        self.streams = _group_by_stream(self.subjects)

    def on(self, event_type: type[E]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if event_type in self._handlers:
                raise ValueError(f"{self.name} already handles {event_type.__name__}")
            self._handlers[event_type] = handler
            return handler

        return register

    def handles(self, event: DomainEvent) -> bool:
        return type(event) in self._handlers

    def handles_type(self, model: type[DomainEvent]) -> bool:
        return model in self._handlers

    @property
    def tables(self) -> list[Table]:
        """The projection's tables, parents before children."""
        return list(self.metadata.sorted_tables)

    async def apply(
        self, db: AsyncSession, event: DomainEvent, ctx: EventContext, *, traced: bool = True
    ) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        if not traced:
            await handler(db, event, ctx)
            return
        envelope = ctx.envelope
        name = f"project {self.name} {envelope.type}"
        with consumer_span(name, envelope.traceparent, envelope.tracestate) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        "messaging.system": "nats",
                        "messaging.operation.type": "process",
                        "messaging.destination.name": ctx.subject,
                        "messaging.message.id": envelope.id,
                        "agora.stream.sequence": ctx.sequence,
                        "agora.projection": self.name,
                    }
                )
            await handler(db, event, ctx)

    def __repr__(self) -> str:
        return f"Projection({self.name!r}, subjects={list(self.subjects)!r})"


def _group_by_stream(subjects: Sequence[str]) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {}
    for subject in subjects:
        grouped.setdefault(stream_for_subject(subject), []).append(subject)
    return {stream: tuple(found) for stream, found in grouped.items()}
