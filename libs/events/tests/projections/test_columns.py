"""The column types and SQL functions read models share, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import BigInteger, Column, MetaData, Table, Text, insert, select, text

from agora_events.projections.columns import UtcDateTime, instant, json_rows
from agora_events.projections.database import ReadModelDatabase

metadata = MetaData()
gates = Table(
    "gates",
    metadata,
    Column("sequence", BigInteger, primary_key=True),
    Column("gate", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
NOON_IN_TASHKENT = datetime(2025, 6, 24, 12, 0, 0, 250001, tzinfo=timezone(timedelta(hours=5)))


async def test_json_rows_aggregates_the_rows_and_reads_back_their_instants(
    db: ReadModelDatabase,
) -> None:
    async with db.engine.begin() as connection:
        if db.schema is not None:  # PostgreSQL: the test's own schema, dropped after it
            await connection.execute(text(f'CREATE SCHEMA "{db.schema}"'))
        await connection.run_sync(metadata.create_all)
        await connection.execute(
            insert(gates),
            [
                {"sequence": 7, "gate": "North", "at": NOON_IN_TASHKENT},
                {"sequence": 3, "gate": "Süd «2»", "at": datetime(2025, 6, 23, tzinfo=UTC)},
            ],
        )
    aggregated = select(json_rows(sequence=gates.c.sequence, gate=gates.c.gate, at=gates.c.at))
    async with db.connect() as connection:
        rows = (await connection.execute(aggregated)).scalar_one()
        none = (await connection.execute(aggregated.where(gates.c.sequence > 99))).scalar_one()

    read = sorted((row["sequence"], row["gate"], instant(row["at"])) for row in rows)
    assert read == [
        (3, "Süd «2»", datetime(2025, 6, 23, tzinfo=UTC)),
        (7, "North", NOON_IN_TASHKENT),
    ]
    assert all(at.tzinfo is UTC for _, _, at in read)
    assert none == []


def test_json_rows_refuses_a_key_that_is_not_a_plain_name() -> None:
    with pytest.raises(ValueError, match="lower-case names"):
        json_rows(**{"gate') --": gates.c.gate})
