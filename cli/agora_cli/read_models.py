"""What ``agora replay`` and ``agora dead-letters`` share: finding a service's projections and
database, reaching NATS, and turning failures into a message and an exit code."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from sqlalchemy.engine import make_url

from agora_events import connection
from agora_events.projections import Projection
from agora_events.projections.database import DatabaseConfigError, ReadModelDatabase
from agora_events.projections.releases import read_model_schema
from agora_events.projections.schema import verify

from .home import read_endpoints
from .services import UnknownService, service

BAD_INPUT = 2
FAILED = 1


class CliError(Exception):
    """A failure to report as ``agora: <message>`` with an exit code."""

    def __init__(self, message: str, code: int = BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class LoadedService:
    name: str
    database_url: str
    nats_url: str
    projections: list[Projection]
    database_schema: str | None = None  # PostgreSQL: where the service keeps its tables

    def live_database(self) -> ReadModelDatabase:
        return open_database(self.database_url, self.database_schema)

    def select(self, names: Sequence[str] | None) -> list[Projection]:
        """The projections called ``names`` (all when None), in the service's order."""
        if not names:
            return list(self.projections)
        known = {projection.name: projection for projection in self.projections}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise CliError(
                f"service {self.name!r} has no projection {unknown[0]!r}; "
                f"its projections: {', '.join(known) or 'none'}"
            )
        return [known[name] for name in dict.fromkeys(names)]


def load_service(name: str) -> LoadedService:
    try:
        entry = service(name)
    except UnknownService as exc:
        raise CliError(str(exc)) from None
    try:
        module = entry.load()
    except ImportError as exc:
        raise CliError(f"service {name!r} cannot be loaded: {exc}") from None
    settings = module.load_settings()
    database_url, nats_url = str(settings.database_url), str(settings.nats_url)
    # Unless the environment says otherwise: the local platform ``agora up`` recorded.
    recorded = read_endpoints()
    if recorded is not None:
        if not {f"{entry.env_prefix}NATS_URL", "AGORA_NATS_URL"} & os.environ.keys():
            nats_url = recorded.nats_url
        local = recorded.services.get(name)
        if local and local.database_url and f"{entry.env_prefix}DATABASE_URL" not in os.environ:
            database_url = local.database_url
    projections = list(module.projections())
    return LoadedService(
        name=name,
        database_url=database_url,
        nats_url=nats_url,
        projections=projections,
        # Where the service of this release keeps them (its release's schema in production).
        database_schema=read_model_schema(
            context=name,
            env=getattr(settings, "env", "local"),
            database_url=database_url,
            database_schema=getattr(settings, "database_schema", None),
            projections=projections,
        ),
    )


def open_database(url: str, schema: str | None = None) -> ReadModelDatabase:
    try:
        return ReadModelDatabase(url, schema=schema)
    except DatabaseConfigError as exc:
        raise CliError(f"cannot use database {url!r}: {exc}") from None


async def check_live(db: ReadModelDatabase, projections: Sequence[Projection]) -> None:
    """Refuse to touch a database whose read models this release did not prepare."""
    problems = await verify(db, projections)
    if problems:
        lines = [f"{name}: {reason}" for name, reason in problems.items()]
        raise CliError("cannot work on the live read models:\n  " + "\n  ".join(lines))


def same_database(first: str, second: str) -> bool:
    one, other = make_url(first), make_url(second)
    if one.get_backend_name() == "sqlite" and other.get_backend_name() == "sqlite":
        return Path(one.database or "").resolve() == Path(other.database or "").resolve()
    return one.render_as_string(hide_password=False) == other.render_as_string(hide_password=False)


async def connect(url: str) -> NATS:
    """The kernel's connection (fails fast; a password in the URL never reaches a message)."""
    try:
        return await connection.connect(url, name="agora-cli")
    except connection.NatsUnavailable as exc:
        raise CliError(str(exc)) from None


def run(action: str, work: Coroutine[Any, Any, int]) -> int:
    """Run ``work``; report failures as ``agora: …`` on stderr with an exit code."""
    try:
        return asyncio.run(work)
    except CliError as exc:
        print(f"agora: {exc}", file=sys.stderr)
        return exc.code
    except NotFoundError as exc:
        print(
            f"agora: {action} failed: a stream or consumer does not exist ({exc.description}); "
            "run 'agora streams init'",
            file=sys.stderr,
        )
        return FAILED
    except Exception as exc:  # an operator needs the reason, not a traceback
        print(f"agora: {action} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILED
