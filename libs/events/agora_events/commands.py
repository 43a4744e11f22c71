"""Command handling: load, decide, append; on conflict catch up and decide again.

State per consistency scope is cached in memory together with the last stream sequence it
reflects. A command is first decided on the cached state (or the initial state for a scope
never seen) and appended with that sequence as the expectation: when the server accepts it,
the state was current, so a command on a fresh aggregate costs one round trip. When it is
refused, or when the domain rejects the command on state not yet verified, the handler reads
the events it missed and decides again, a bounded number of times.

Idempotency is decided by history: the events a key produced are remembered with the digest
of the request that sent it. The same key again with the same request answers what the first
call answered, events included; with another request it is refused (``IdempotencyKeyReused``)
instead of being taken for a retry of work that was never asked for.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from prometheus_client import Counter, Histogram

from .catalogue import DomainEvent
from .decider import Decider, InvalidCommand, Rejected
from .metrics import APPEND_CONFLICTS, COMMAND_SECONDS, COMMANDS
from .store import (
    AppendOutcomeUnknown,
    ConcurrencyConflict,
    EventStore,
    Expected,
    Metadata,
    aggregate_of,
)
from .tracing import CommandSpan

S = TypeVar("S")
C = TypeVar("C")


class ConcurrencyError(Exception):
    """Other writers kept winning; the command was not applied. Safe to retry."""

    def __init__(self, scope: str, attempts: int) -> None:
        super().__init__(
            f"{scope} changed concurrently {attempts} times; the command was not applied"
        )
        self.scope = scope
        self.attempts = attempts


class IdempotencyKeyReused(InvalidCommand):
    """A key sent again with a request other than the one it was first used for."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the Idempotency-Key {key!r} was already used for a different request; "
            "a retry must repeat the same request, a new request needs a new key"
        )
        self.key = key


@dataclass(frozen=True, slots=True)
class Applied:
    """What one idempotency key did in a scope: its stream sequences, the digest of the
    request that sent it (None when not known) and the events it produced."""

    first: int
    last: int
    digest: str | None
    events: tuple[DomainEvent, ...]

    def check(self, key: str, digest: str | None) -> None:
        if self.digest is not None and digest is not None and digest != self.digest:
            raise IdempotencyKeyReused(key)


@dataclass(frozen=True, slots=True)
class CommandResult(Generic[S]):
    state: S
    events: tuple[DomainEvent, ...]
    first_sequence: int
    last_sequence: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ScopeState(Generic[S]):
    state: S
    last_sequence: int = 0
    count: int = 0
    applied: Mapping[str, Applied] = field(default_factory=dict)
    versions: Mapping[str, int] = field(default_factory=dict)
    """Events per aggregate (``aggregate_of`` their subject): each one's latest
    ``ce-aggregateversion``."""

    def advance(
        self,
        decider: Decider[S, C, DomainEvent],
        events: list[tuple[int, DomainEvent, str | None, str | None]],
        through: int = 0,
    ) -> ScopeState[S]:
        """The state after ``events``: (sequence, event, idempotency key, request digest);
        ``through`` is the last sequence read, when foreign messages came after them."""
        if not events:
            if through <= self.last_sequence:
                return self
            return replace(self, last_sequence=through)
        state = self.state
        recorded: dict[str, Applied] | None = None  # copied only when a key comes
        versions = dict(self.versions)
        for sequence, event, key, digest in events:
            state = decider.evolve(state, event)
            aggregate = aggregate_of(event.subject)
            versions[aggregate] = versions.get(aggregate, 0) + 1
            if key is not None:
                if recorded is None:
                    recorded = dict(self.applied)
                before = recorded.get(key)
                recorded[key] = (
                    Applied(sequence, sequence, digest, (event,))
                    if before is None
                    else Applied(before.first, sequence, before.digest, (*before.events, event))
                )
        applied = self.applied if recorded is None else recorded
        last = max(events[-1][0], through)
        return ScopeState(state, last, self.count + len(events), applied, versions)


class CommandHandler(Generic[S, C]):
    """Runs commands of one decider against the store, with retries and idempotency."""

    def __init__(
        self,
        store: EventStore,
        decider: Decider[S, C, DomainEvent],
        scope_of: Callable[[C], str],
        *,
        max_attempts: int = 5,
        cache_size: int = 4096,
    ) -> None:
        self._store = store
        self._decider = decider
        self._scope_of = scope_of
        self._max_attempts = max_attempts
        self._cache: OrderedDict[str, ScopeState[S]] = OrderedDict()
        self._cache_size = cache_size

    async def load(self, scope: str) -> ScopeState[S]:
        """The verified current state of a scope."""
        return await self._catch_up(scope, self._cached(scope))

    async def handle(
        self,
        command: C,
        *,
        idempotency_key: str | None = None,
        metadata: Metadata | None = None,
    ) -> CommandResult[S]:
        scope = self._scope_of(command)
        meters = _meters(scope.split(".", 1)[0])
        started = time.perf_counter()
        outcome = "error"
        span = CommandSpan(command)
        try:
            result = await self._handle(scope, command, idempotency_key, metadata)
            outcome = "duplicate" if result.duplicate else "accepted"
            return result
        except Rejected:
            outcome = "rejected"
            raise
        except ConcurrencyError:
            outcome = "conflict"
            raise
        finally:
            span.end(outcome)
            meters.outcomes[outcome].inc()
            meters.seconds.observe(time.perf_counter() - started)

    async def _handle(
        self,
        scope: str,
        command: C,
        idempotency_key: str | None,
        metadata: Metadata | None,
    ) -> CommandResult[S]:
        entry = self._cached(scope)
        verified = False
        digest = metadata.request_digest if metadata is not None else None
        for _ in range(self._max_attempts):
            applied = entry.applied.get(idempotency_key) if idempotency_key else None
            if applied is not None and idempotency_key is not None:
                applied.check(idempotency_key, digest)
                return CommandResult(
                    entry.state, applied.events, applied.first, applied.last, duplicate=True
                )
            try:
                events = list(self._decider.decide(entry.state, command))
            except Rejected:
                if verified:
                    raise
                entry, verified = await self._catch_up(scope, entry), True
                continue
            if not events:
                if verified:
                    return CommandResult(entry.state, (), entry.last_sequence, entry.last_sequence)
                entry, verified = await self._catch_up(scope, entry), True
                continue
            try:
                result = await self._store.append(
                    events,
                    expected=Expected(
                        scope, entry.last_sequence, entry.count, versions=entry.versions
                    ),
                    idempotency_key=idempotency_key,
                    metadata=metadata,
                )
            except (ConcurrencyConflict, AppendOutcomeUnknown):
                _meters(scope.split(".", 1)[0]).conflicts.inc()
                entry, verified = await self._catch_up(scope, entry), True
                continue
            sequences = range(result.first_sequence, result.last_sequence + 1)
            entry = entry.advance(
                self._decider,
                [
                    (seq, event, idempotency_key, digest)
                    for seq, event in zip(sequences, events, strict=True)
                ],
            )
            self._remember(scope, entry)
            return CommandResult(
                entry.state, tuple(events), result.first_sequence, result.last_sequence
            )
        raise ConcurrencyError(scope, self._max_attempts)

    async def _catch_up(self, scope: str, entry: ScopeState[S]) -> ScopeState[S]:
        records = None
        if entry.last_sequence == 0:
            # Nothing known of the scope: one cheap request answers for an aggregate whose
            # events this handler's appends numbered (``EventStore.read_aggregate``).
            records = await self._store.read_aggregate(scope)
        if records is None:
            records = await self._store.read(scope, after=entry.last_sequence)
        entry = entry.advance(
            self._decider,
            [
                (r.sequence, r.event, r.envelope.idempotencykey, r.envelope.requestdigest)
                for r in records
            ],
            # Foreign messages in the scope are stepped over, but the server's expectation
            # counts them: the next append must name the last one.
            through=records.last_sequence,
        )
        self._remember(scope, entry)
        return entry

    async def recorded(self, scope: str, key: str | None, digest: str | None) -> Applied | None:
        """What ``key`` already did in ``scope`` (the log's word, not only the cache's), for
        a use case whose checks before the command would refuse a retry; raises
        IdempotencyKeyReused when the key was sent with another request."""
        if key is None:
            return None
        applied = self._cached(scope).applied.get(key)
        if applied is None:
            applied = (await self.load(scope)).applied.get(key)
        if applied is not None:
            applied.check(key, digest)
        return applied

    def _cached(self, scope: str) -> ScopeState[S]:
        entry = self._cache.get(scope)
        if entry is None:
            return ScopeState(self._decider.initial_state())
        self._cache.move_to_end(scope)
        return entry

    def _remember(self, scope: str, entry: ScopeState[S]) -> None:
        current = self._cache.get(scope)
        if current is not None and current.last_sequence > entry.last_sequence:
            return  # a concurrent command already cached a newer state
        self._cache[scope] = entry
        self._cache.move_to_end(scope)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def forget(self, scope: str) -> None:
        self._cache.pop(scope, None)


@dataclass(frozen=True, slots=True)
class _Meters:
    outcomes: Mapping[str, Counter]
    seconds: Histogram
    conflicts: Counter


@functools.cache
def _meters(context: str) -> _Meters:
    """The labelled metrics of one context, looked up once (labels() takes a lock and
    hashes its arguments on every call, which shows on the append path)."""
    return _Meters(
        outcomes={
            outcome: COMMANDS.labels(context, outcome)
            for outcome in ("accepted", "duplicate", "rejected", "conflict", "error")
        },
        seconds=COMMAND_SECONDS.labels(context),
        conflicts=APPEND_CONFLICTS.labels(context),
    )


__all__ = [
    "Applied",
    "CommandHandler",
    "CommandResult",
    "ConcurrencyError",
    "IdempotencyKeyReused",
    "ScopeState",
]
