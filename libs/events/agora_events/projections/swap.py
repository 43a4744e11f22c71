"""Swap a projection rebuilt elsewhere into the live database, in one transaction.

The live transaction first locks the projection's checkpoints, which stops the live runner
(in this process or another) between two batches. The rebuilt copy is then caught up to those
checkpoints, so it holds exactly the events the live rows held, and its rows, dead letters and
checkpoints replace the live ones. Queries keep reading the old rows until the commit (MVCC on
PostgreSQL, WAL on SQLite) and the new ones after it; nothing in query code changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy import Table, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from .bookkeeping import dead_letters, lock_checkpoint, read_checkpoints, save_checkpoint

if TYPE_CHECKING:
    from .database import ReadModelDatabase
    from .definition import Projection

COPY_CHUNK = 2000
CatchUp = Callable[[str, int], Awaitable[object]]


async def swap_in(
    live: ReadModelDatabase,
    rebuilt: ReadModelDatabase,
    projection: Projection,
    catch_up: CatchUp,
) -> dict[str, int]:
    """Replace ``projection`` in ``live`` by its copy in ``rebuilt``; returns the checkpoints.

    ``catch_up(stream, sequence)`` must bring ``rebuilt`` up to ``sequence`` on ``stream``."""
    async with live.writer() as target:
        live_checkpoints = {
            stream: await lock_checkpoint(target, projection.name, stream)
            for stream in projection.streams
        }
        for stream, sequence in live_checkpoints.items():
            await catch_up(stream, sequence)
        async with rebuilt.session() as source:
            final = {
                stream: sequence
                for (name, stream), sequence in (await read_checkpoints(source)).items()
                if name == projection.name
            }
            for table in reversed(projection.tables):
                await target.execute(delete(table))
            for table in projection.tables:
                await _copy_rows(source, target, table)
                await _realign_serial(target, table)
            await _copy_dead_letters(source, target, projection.name)
        for stream, sequence in final.items():
            await save_checkpoint(target, projection.name, stream, sequence)
    return final


async def _copy_rows(source: AsyncSession, target: AsyncSession, table: Table) -> None:
    result = await source.stream(select(table))
    async for rows in result.mappings().partitions(COPY_CHUNK):
        await target.execute(insert(table), [dict(row) for row in rows])


async def _realign_serial(target: AsyncSession, table: Table) -> None:
    """PostgreSQL: rows copied with their ids leave the id sequence behind them."""
    column = table.autoincrement_column
    if column is None or (await target.connection()).dialect.name != "postgresql":
        return
    highest = await target.scalar(select(func.coalesce(func.max(column), 0)))
    await target.execute(
        text("SELECT setval(pg_get_serial_sequence(:table, :column), :next, false)"),
        {"table": table.name, "column": column.name, "next": int(highest or 0) + 1},
    )


async def _copy_dead_letters(source: AsyncSession, target: AsyncSession, name: str) -> None:
    await target.execute(delete(dead_letters).where(dead_letters.c.projection == name))
    columns = [column for column in dead_letters.c if column.name != "id"]
    rows = await source.execute(select(*columns).where(dead_letters.c.projection == name))
    values = [dict(row) for row in rows.mappings()]
    if values:
        await target.execute(insert(dead_letters), values)
