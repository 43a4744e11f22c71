"""Schema creation and upgrades for disposable read models, without migrations.

A read model is a cache of the log, so an upgrade does not need to preserve its rows: when
the DDL of a projection's tables, its subjects or its ``version`` change, ``prepare`` drops
its tables, creates the new ones, resets its checkpoints to zero and forgets its dead letters;
the runner then rebuilds it from the log. Each projection's fingerprint (a SHA-256 of the
compiled CREATE TABLE / CREATE INDEX statements plus subjects and version) is stored in
``agora_projections``. Alembic would add a migration per change for data we can recompute.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, Dialect, delete, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateIndex, CreateTable

from .bookkeeping import (
    BOOKKEEPING_TABLES,
    bookkeeping,
    checkpoints,
    database_id,
    dead_letters,
    ensure_checkpoint,
    projection_versions,
    utcnow,
)

if TYPE_CHECKING:
    from .database import ReadModelDatabase
    from .definition import Projection

log = logging.getLogger("agora.projections")


@dataclass(frozen=True, slots=True)
class Preparation:
    projection: str
    action: Literal["created", "unchanged", "reset"]
    reason: str = ""


def fingerprint(projection: Projection, dialect: Dialect) -> str:
    digest = hashlib.sha256()
    digest.update(f"version {projection.version}\n".encode())
    digest.update(f"subjects {sorted(projection.subjects)}\n".encode())
    for table in projection.tables:
        digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
    return digest.hexdigest()


def check_ownership(projections: Sequence[Projection]) -> None:
    """Each table belongs to one projection, since a rebuild drops and refills them."""
    names: dict[str, str] = {}
    metadata_owner: dict[int, str] = {}
    for projection in projections:
        owner = metadata_owner.setdefault(id(projection.metadata), projection.name)
        if owner != projection.name:
            raise ValueError(
                f"projections {owner!r} and {projection.name!r} share one MetaData; give each "
                "projection its own, since a projection's tables are rebuilt together"
            )
        for table in projection.tables:
            if table.name in BOOKKEEPING_TABLES:
                raise ValueError(f"table name {table.name!r} is reserved for the runner")
            claimed = names.setdefault(table.name, projection.name)
            if claimed != projection.name:
                raise ValueError(f"table {table.name!r} is in {claimed!r} and {projection.name!r}")


async def prepare(
    db: ReadModelDatabase, projections: Sequence[Projection], *, reset: bool = False
) -> list[Preparation]:
    if len({p.name for p in projections}) != len(projections):
        raise ValueError("projection names must be unique")
    check_ownership(projections)
    async with db.writer() as session:
        await _lock_schema(session, db)
        await session.run_sync(lambda s: bookkeeping.create_all(s.connection()))
        await database_id(session)
        results = [await _prepare_one(session, p, reset=reset) for p in projections]
    for result in results:
        if result.action == "reset":
            log.warning(
                "projection %s will be rebuilt from the log: %s", result.projection, result.reason
            )
    return results


async def _lock_schema(session: AsyncSession, db: ReadModelDatabase) -> None:
    if db.is_sqlite:
        return  # BEGIN IMMEDIATE already serialises writers
    # Two replicas starting at once must not both create tables.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('agora.prepare'))"))
    if db.schema is not None:
        await session.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))


async def _prepare_one(
    session: AsyncSession, projection: Projection, *, reset: bool
) -> Preparation:
    connection = await session.connection()
    wanted = fingerprint(projection, connection.dialect)
    stored = (
        await session.execute(
            select(projection_versions.c.fingerprint, projection_versions.c.tables).where(
                projection_versions.c.projection == projection.name
            )
        )
    ).first()
    existing = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    tables = [table.name for table in projection.tables]
    if stored is None:
        action: Literal["created", "unchanged", "reset"] = "created"
        reason = "new projection"
        stale = [name for name in tables if name in existing]
    elif stored.fingerprint != wanted:
        action, reason, stale = "reset", "its tables, subjects or version changed", stored.tables
    elif not set(tables) <= existing:
        action, reason, stale = "reset", "some of its tables are missing", stored.tables
    elif reset:
        action, reason, stale = "reset", "a replay from zero was asked for", stored.tables
    else:
        action, reason, stale = "unchanged", "", []
    if action != "unchanged":
        await connection.run_sync(_recreate, projection, [n for n in stale if n in existing])
        await _reset_bookkeeping(session, projection, wanted, tables, first=stored is None)
    for stream in projection.streams:
        await ensure_checkpoint(session, projection.name, stream)
    return Preparation(projection.name, action, reason)


def _recreate(connection: Connection, projection: Projection, stale: list[str]) -> None:
    quote = connection.dialect.identifier_preparer.quote
    cascade = " CASCADE" if connection.dialect.name == "postgresql" else ""
    current = {table.name for table in projection.tables}
    # Children before parents, then tables the projection no longer declares.
    for table in reversed(projection.tables):
        if table.name in stale:
            connection.execute(text(f"DROP TABLE IF EXISTS {quote(table.name)}{cascade}"))
    for name in stale:
        if name not in current:
            connection.execute(text(f"DROP TABLE IF EXISTS {quote(name)}{cascade}"))
    projection.metadata.create_all(connection)


async def _reset_bookkeeping(
    session: AsyncSession, projection: Projection, wanted: str, tables: list[str], *, first: bool
) -> None:
    await session.execute(delete(checkpoints).where(checkpoints.c.projection == projection.name))
    await session.execute(delete(dead_letters).where(dead_letters.c.projection == projection.name))
    values = {"fingerprint": wanted, "tables": tables, "prepared_at": utcnow()}
    if first:
        await session.execute(
            insert(projection_versions).values(projection=projection.name, **values)
        )
    else:
        await session.execute(
            update(projection_versions)
            .where(projection_versions.c.projection == projection.name)
            .values(**values)
        )


async def verify(db: ReadModelDatabase, projections: Sequence[Projection]) -> dict[str, str]:
    """Projections not prepared in ``db`` from exactly these definitions, and why.

    Tools working on a live database (a swap, a retry) check this instead of preparing it:
    a release with other table definitions must not reset the service's read models."""
    async with db.session() as session:
        connection = await session.connection()
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        if projection_versions.name not in tables:
            return {p.name: f"{db.display} holds no read models yet" for p in projections}
        rows = await session.execute(
            select(projection_versions.c.projection, projection_versions.c.fingerprint)
        )
        stored: dict[str, str] = dict(rows.all())
    problems = {}
    for projection in projections:
        found = stored.get(projection.name)
        if found is None:
            problems[projection.name] = f"{db.display} has never held it"
        elif found != fingerprint(projection, db.engine.dialect):
            problems[projection.name] = (
                f"{db.display} holds another version of it (prepared by a different release); "
                "start the service of this release to upgrade it"
            )
    return problems
