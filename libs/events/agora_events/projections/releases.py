"""One PostgreSQL schema per release of a service's read models, so that a rolling update
never changes the tables the old replicas read.

Outside local mode, unless ``database_schema`` names one, a service keeps its read models in
the schema ``<context>_rm_<digest>``, the digest taken over every projection's fingerprint
(tables, indexes, subjects, version). A release whose read models differ gets a schema of its
own and builds them there from the log while the old replicas go on serving theirs; a
release with the same read models shares the schema. The service shell does not serve a read
model it is building until it has caught up (``/readyz`` 503, queries 503).

An old release's schema stays until ``ReleaseSchemas.drop`` retires it (``agora read-models
prune``): never this release's, never while a process projects into it or a replica was
seen in it (``heartbeat``) within a grace, each drop in a transaction of its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from .bookkeeping import utcnow
from .definition import Projection
from .heartbeat import PREPARE_LOCK
from .schema import fingerprint


def release_schema(context: str, database_url: str, projections: Sequence[Projection]) -> str:
    """The schema of this release's read models in a PostgreSQL database."""
    dialect = make_url(database_url).get_dialect()()
    digest = hashlib.sha256()
    for found in sorted(fingerprint(p, dialect) for p in projections):
        digest.update(found.encode())
    return f"{context}_rm_{digest.hexdigest()[:12]}"


def read_model_schema(
    *,
    context: str,
    env: str,
    database_url: str,
    database_schema: str | None,
    projections: Sequence[Projection],
) -> str | None:
    """Where a service's read models live: the schema its settings name, else, outside local
    mode on PostgreSQL, its release's schema; else none (SQLite, or local mode)."""
    if database_schema is not None:
        return database_schema
    backend = make_url(database_url).get_backend_name()
    if env == "local" or backend != "postgresql" or not projections:
        return None
    return release_schema(context, database_url, projections)


# -- retiring old releases -----------------------------------------------------------------

PRUNE_GRACE = timedelta(hours=1)
"""By default a release's schema is kept while a replica was seen in it within this long."""
CONNECT_TIMEOUT = 10.0
"""Seconds to reach the database before a survey or drop gives up."""
DROP_LOCK_TIMEOUT = "10s"
"""A drop waits this long for a session still reading the schema's tables, then gives up."""


@dataclass(frozen=True, slots=True)
class Replica:
    """A service process that used a release's read models (its ``agora_replicas`` row)."""

    instance: str
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    projection: str
    stream: str
    sequence: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReleaseSchema:
    """What a database holds of one release of a service's read models."""

    name: str
    current: bool
    """The schema of the release the caller runs (or the one its settings name)."""
    checkpoints: tuple[Checkpoint, ...]
    replicas: tuple[Replica, ...]
    """Most recently seen first."""
    has_heartbeat: bool
    """False for a schema made before replicas recorded themselves (no ``agora_replicas``)."""
    prepared_at: datetime | None
    leases: tuple[str, ...]
    """``projection/stream`` of each projection loop a process runs on it right now."""

    @property
    def last_seen(self) -> Replica | None:
        return self.replicas[0] if self.replicas else None

    @property
    def last_written(self) -> datetime | None:
        """When its read models last changed (a checkpoint moved, a projection prepared)."""
        times = [c.updated_at for c in self.checkpoints]
        if self.prepared_at is not None:
            times.append(self.prepared_at)
        return max(times, default=None)


@dataclass(frozen=True, slots=True)
class Verdict:
    schema: ReleaseSchema
    action: Literal["drop", "keep", "refuse"]
    """keep: this release's; refuse: an old release's schema still (recently) in use."""
    reason: str


def judge(schema: ReleaseSchema, *, grace: timedelta, now: datetime) -> Verdict:
    """Whether an old release's schema may be dropped: not this release's, no projection
    loop running on it, and no replica seen in it within ``grace`` (for a schema without
    heartbeats, no write within ``grace``)."""
    if schema.current:
        return Verdict(schema, "keep", "this release's schema")
    if schema.leases:
        held = ", ".join(schema.leases)
        return Verdict(schema, "refuse", f"a running process projects into it now ({held})")
    newest = schema.last_seen
    if newest is not None:
        seen = f"replica {newest.instance} was seen {ago(now - newest.last_seen)}"
        if newest.last_seen > now - grace:
            return Verdict(schema, "refuse", f"{seen}, within {span(grace)}")
        return Verdict(schema, "drop", seen)
    written = schema.last_written
    if written is None:
        return Verdict(schema, "drop", "it holds no read models")
    what = f"no replica recorded itself in it; its read models were written {ago(now - written)}"
    if written > now - grace:
        return Verdict(schema, "refuse", f"{what}, within {span(grace)}")
    return Verdict(schema, "drop", what)


class ReleaseSchemas:
    """The release schemas ``<context>_rm_<digest>`` of one service in a PostgreSQL database."""

    def __init__(self, url: str, context: str, *, current: Collection[str]) -> None:
        if make_url(url).get_backend_name() != "postgresql":
            raise ValueError("release schemas are PostgreSQL schemas")
        self.context = context
        self.current = frozenset(current)
        self._pattern = re.compile(rf"^{re.escape(context)}_rm_[0-9a-f]{{12}}$")
        # An operator's tool: one connection at a time, and a host that does not answer is
        # an error within seconds, not a minute.
        self._engine = create_async_engine(
            url, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT}
        )

    def is_release_schema(self, name: str) -> bool:
        return bool(self._pattern.match(name))

    async def survey(self) -> list[ReleaseSchema]:
        """Every release schema of the service, this release's first, then by name."""
        async with self._engine.connect() as connection:
            names = await self._names(connection)
            found = [await self._survey(connection, name) for name in names]
        return sorted(found, key=lambda s: (not s.current, s.name))

    async def drop(
        self, name: str, *, grace: timedelta = PRUNE_GRACE, now: datetime | None = None
    ) -> Verdict:
        """Drop the schema ``name`` in a transaction of its own if ``judge`` still says so,
        looked at again under the lock a starting replica prepares its schema under."""
        if not self.is_release_schema(name):
            raise ValueError(f"{name!r} is not a release schema of {self.context!r}")
        async with self._engine.begin() as connection:
            await connection.execute(text(PREPARE_LOCK))
            await connection.execute(text(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
            if name not in await self._names(connection):
                raise LookupError(f"schema {name!r} does not exist (any more)")
            verdict = judge(await self._survey(connection, name), grace=grace, now=now or utcnow())
            if verdict.action == "drop":
                await connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        return verdict

    async def dispose(self) -> None:
        await self._engine.dispose()

    async def _names(self, connection: AsyncConnection) -> list[str]:
        prefix = f"{self.context}_rm_"
        rows = await connection.scalars(
            text("SELECT nspname FROM pg_namespace WHERE left(nspname, :n) = :prefix"),
            {"n": len(prefix), "prefix": prefix},
        )
        return sorted(name for name in rows if self.is_release_schema(name))

    async def _survey(self, connection: AsyncConnection, name: str) -> ReleaseSchema:
        tables = set(
            await connection.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"),
                {"schema": name},
            )
        )
        found: list[Checkpoint] = []
        if "agora_checkpoints" in tables:
            rows = await connection.execute(
                text(
                    f'SELECT projection, stream, sequence, updated_at FROM "{name}".'
                    "agora_checkpoints ORDER BY projection, stream"
                )
            )
            found = [Checkpoint(p, s, int(q), at) for p, s, q, at in rows]
        prepared_at = None
        if "agora_projections" in tables:
            prepared_at = await connection.scalar(
                text(f'SELECT max(prepared_at) FROM "{name}".agora_projections')
            )
        seen: list[Replica] = []
        if "agora_replicas" in tables:
            rows = await connection.execute(
                text(
                    "SELECT instance, started_at, last_seen, stopped_at FROM "
                    f'"{name}".agora_replicas ORDER BY last_seen DESC, instance'
                )
            )
            seen = [Replica(*row) for row in rows]
        return ReleaseSchema(
            name=name,
            current=name in self.current,
            checkpoints=tuple(found),
            replicas=tuple(seen),
            has_heartbeat="agora_replicas" in tables,
            prepared_at=prepared_at,
            leases=tuple(await _held_leases(connection, name, found)),
        )


async def _held_leases(
    connection: AsyncConnection, schema: str, found: Sequence[Checkpoint]
) -> list[str]:
    """The loops whose lease (``lease.Lease``: a session advisory lock on a hash of schema,
    projection and stream) some session of this database holds."""
    held = []
    for checkpoint in found:
        key = f"agora:{schema}:{checkpoint.projection}:{checkpoint.stream}"
        taken = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objsubid = 1 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND ((classid::bigint << 32) | objid::bigint) = hashtext(:key)::bigint"
            ),
            {"key": key},
        )
        if taken:
            held.append(f"{checkpoint.projection}/{checkpoint.stream}")
    return held


def ago(delta: timedelta) -> str:
    """``12 min ago``, ``just now``."""
    return "just now" if delta < timedelta(seconds=1) else f"{span(delta)} ago"


def span(delta: timedelta) -> str:
    """``1 h 30 min``, ``2 d 3 h``, ``45 s``."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    if not parts:
        parts.append(f"{seconds} s")
    return " ".join(parts)
