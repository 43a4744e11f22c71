"""One PostgreSQL schema per release of a service's read models, so that a rolling update
never changes the tables the old replicas read.

Outside local mode, unless ``database_schema`` names one, a service keeps its read models in
the schema ``<context>_rm_<digest>``, the digest taken over every projection's fingerprint
(tables, indexes, subjects, version). A release whose read models differ gets a schema of its
own and builds them there from the log while the old replicas go on serving theirs; a
release with the same read models shares the schema. The service shell does not serve a read
model it is building until it has caught up (``/readyz`` 503, queries 503).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy.engine import make_url

from .definition import Projection
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
