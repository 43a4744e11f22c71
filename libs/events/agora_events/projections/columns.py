"""Column types read models share, portable across SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """An instant, stored as naive UTC (the same on SQLite and PostgreSQL), read back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing a naive datetime: the read model stores instants")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")


class json_rows(FunctionElement[Any]):  # noqa: N801 (an SQL function, named as one)
    """The rows a SELECT aggregates, as one JSON array of objects (``[]`` for none), keyed by
    the names given: ``select(json_rows(gate=passages.c.gate, ...)).where(...)``, as a scalar
    subquery, puts a detail's child rows in its parent's row, one statement instead of one
    per table. The order of the array is not defined: sort it where it is read. Instants
    come back as the naive UTC text the database writes; ``instant`` reads them."""

    type = JSON()
    inherit_cache = True
    name = "json_rows"

    def __init__(self, **columns: ColumnElement[Any]) -> None:
        arguments: list[ColumnElement[Any]] = []
        for key, column in columns.items():
            if not _KEY.match(key):
                raise ValueError(f"json_rows keys are lower-case names, not {key!r}")
            arguments += [literal_column(f"'{key}'"), column]
        super().__init__(*arguments)


@compiles(json_rows, "sqlite")
def _json_rows_sqlite(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array(json_object({compiler.process(element.clauses, **kw)}))"


@compiles(json_rows, "postgresql")
def _json_rows_postgresql(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    objects = f"json_build_object({compiler.process(element.clauses, **kw)})"
    return f"coalesce(json_agg({objects}), '[]'::json)"


def instant(value: str) -> datetime:
    """An instant from a ``json_rows`` value: what ``UtcDateTime`` stores, as the database
    writes it in JSON (``2025-06-24 09:00:00.000000`` on SQLite, ``2025-06-24T09:00:00`` on
    PostgreSQL), read back aware."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)
