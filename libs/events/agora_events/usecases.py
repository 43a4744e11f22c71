"""The command layer every service's use cases stand on: who asks (``Caller``), one metadata
policy, one ``Outcome``, queueing per consistency scope, and idempotency keys bound to the
request that first sent them.

Metadata policy, the same everywhere:

* correlation id: the caller's (an HTTP ``X-Correlation-Id``), else the triggering event's
  correlation id (a reactor), else this command's own id;
* causation id: the triggering event's id (a reactor), else this command's id;
* the command id is made once per request, so every step of a use case that appends more
  than once carries the same causation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from .catalogue import DomainEvent
from .commands import CommandHandler, CommandResult, IdempotencyKeyReused
from .store import Metadata

S = TypeVar("S")
C = TypeVar("C")
RECENT_KEYS = 10_000
"""Keys remembered per process with their request digest, to refuse a key reused with
another request in another scope (the log's history catches reuse within one scope)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sends a command and in answer to what."""

    actor: str | None = None
    key: str | None = None
    """The client's idempotency key."""
    digest: str | None = None
    """A digest of the request the key came with; a retry must send the same request."""
    correlation_id: str | None = None
    causation_id: str | None = None
    """The triggering event's id, for commands a reactor sends."""
    command_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def reacting_to(
        cls, actor: str, *, event_id: str, correlation_id: str | None, key: str
    ) -> Caller:
        """A command a reactor sends because of a stored event."""
        return cls(actor=actor, key=key, correlation_id=correlation_id, causation_id=event_id)

    def metadata(self) -> Metadata:
        return Metadata(
            actor=self.actor,
            correlation_id=self.correlation_id or self.command_id,
            causation_id=self.causation_id or self.command_id,
            request_digest=self.digest,
        )

    def acting_as(self, actor: str) -> Caller:
        return replace(self, actor=actor)

    def with_key(self, key: str | None) -> Caller:
        """The same caller for a follow-up step under a key the use case derives itself
        (bound to no client request, so it carries no digest)."""
        return replace(self, key=key, digest=None)


SYSTEM = Caller(actor="system")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a use case answers: the ids it touched, the stream sequence it reached (pass it
    as ``?after=`` to read your write) and the types of the events it appended. A retry with
    the same key answers the same, with ``duplicate`` set."""

    ids: dict[str, str]
    sequence: int
    events: list[str] = field(default_factory=list)
    duplicate: bool = False


def outcome_of(ids: dict[str, str], results: Sequence[CommandResult[Any]]) -> Outcome:
    """One answer for the steps of a use case."""
    events: list[DomainEvent] = [event for result in results for event in result.events]
    return Outcome(
        ids=ids,
        sequence=max(result.last_sequence for result in results),
        events=[event.meta.type for event in events],
        duplicate=all(result.duplicate for result in results),
    )


class ScopeLocks:
    """One asyncio lock per consistency scope, dropped when nobody waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, _Held] = {}

    async def acquire(self, scope: str) -> None:
        """Wait for ``scope``'s lock; ``release`` it after. Plain calls, not a context
        manager: an async generator per command shows on the path of every command."""
        held = self._locks.get(scope)
        if held is None:
            held = self._locks[scope] = _Held()
        held.users += 1
        try:
            await held.lock.acquire()
        except BaseException:
            self._leave(scope, held)
            raise

    def release(self, scope: str) -> None:
        held = self._locks[scope]
        held.lock.release()
        self._leave(scope, held)

    def _leave(self, scope: str, held: _Held) -> None:
        held.users -= 1
        if held.users == 0:
            del self._locks[scope]

    @asynccontextmanager
    async def hold(self, scope: str) -> AsyncIterator[None]:
        await self.acquire(scope)
        try:
            yield
        finally:
            self.release(scope)


class _Held:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class RecentKeys:
    """The digests of the last keys this process saw: a key that comes back with another
    request is refused whichever scope it names."""

    def __init__(self, size: int = RECENT_KEYS) -> None:
        self._digests: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def check(self, caller: Caller) -> None:
        """Refuse a key this process saw applied for another request."""
        if caller.key is None or caller.digest is None:
            return
        known = self._digests.get(caller.key)
        if known is not None and known != caller.digest:
            raise IdempotencyKeyReused(caller.key)

    def remember(self, caller: Caller) -> None:
        """Bind a key to its request once something was done for it (a refused request
        binds nothing: the client may correct it and send it again with the same key)."""
        if caller.key is None or caller.digest is None:
            return
        self._digests[caller.key] = caller.digest
        self._digests.move_to_end(caller.key)
        while len(self._digests) > self._size:
            self._digests.popitem(last=False)

    def bind(self, caller: Caller) -> None:
        """Check, then remember."""
        self.check(caller)
        self.remember(caller)


class UseCases:
    """Base of a service's use cases: runs commands through their handlers with one lock
    per scope (a crowd on one scope costs one append each, not a storm of retries) and at
    most ``in_flight`` appends at once."""

    def __init__(self, *, in_flight: int = 32) -> None:
        self._locks = ScopeLocks()
        self._in_flight = asyncio.Semaphore(in_flight)
        self._keys = RecentKeys()

    def accept(self, caller: Caller) -> None:
        """Refuse, before anything is done, a key this process saw with another request."""
        self._keys.check(caller)

    async def run(
        self, handler: CommandHandler[S, C], scope: str, command: C, caller: Caller
    ) -> CommandResult[S]:
        metadata = caller.metadata()
        if caller.key is not None and caller.digest is None:
            # A key the system chose (a reactor's, a follow-up step's, a task's) is bound to
            # the kind of command it was made for, so one key can never pass for another
            # command's retry in the same scope.
            metadata = replace(metadata, request_digest=f"command:{type(command).__name__}")
        await self._locks.acquire(scope)
        try:
            async with self._in_flight:
                result = await handler.handle(
                    command, idempotency_key=caller.key, metadata=metadata
                )
        finally:
            self._locks.release(scope)
        self._keys.remember(caller)
        return result


__all__ = [
    "SYSTEM",
    "Caller",
    "IdempotencyKeyReused",
    "Outcome",
    "RecentKeys",
    "ScopeLocks",
    "UseCases",
    "outcome_of",
]
