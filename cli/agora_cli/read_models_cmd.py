"""``agora read-models list|prune <service>``: the schemas the releases of a service keep their
read models in, on its PostgreSQL database, and retiring the old ones.

Outside local mode each release keeps its read models in ``<service>_rm_<digest>``; a new
release builds its own beside the old one, which stays until pruned.

* ``list`` shows each release schema: whether it is the schema of the release installed here,
  when a replica last used it (the replicas' heartbeats), and each projection's checkpoint
  against the end of its stream (when NATS answers).
* ``prune`` drops the release schemas that are not this release's, that no process projects
  into, and in which no replica was seen within ``--keep-last-seen-within`` (default 1h); a
  schema seen within it is refused, naming the replica and when. It touches nothing but
  ``<service>_rm_<digest>`` schemas, drops each in a transaction of its own, and drops
  nothing without ``--yes`` (``--dry-run`` only shows what it would drop). It exits with 1
  when it refused or failed to drop one.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta

from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from agora_events.projections.bookkeeping import utcnow
from agora_events.projections.heartbeat import HEARTBEAT_SECONDS
from agora_events.projections.releases import (
    PRUNE_GRACE,
    ReleaseSchema,
    ReleaseSchemas,
    Verdict,
    ago,
    judge,
    release_schema,
)
from agora_events.projections.source import last_sequence

from .read_models import FAILED, CliError, LoadedService, connect, load_service, run

DURATION = re.compile(r"(\d+)\s*(min|d|h|m|s)")
UNITS = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "read-models",
        help="list a service's read-model release schemas, or drop the old ones",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="each release schema: this release's or not, last used, checkpoints"
    )
    listing.add_argument("service", help="the service whose release schemas to show")
    listing.add_argument("--nats-url", help="NATS server (default: the service's setting)")
    prune = actions.add_parser(
        "prune",
        help="drop old release schemas no replica uses any more; asks for --yes",
        description="Drop the release schemas of SERVICE that are not this release's and "
        "in which no replica was seen within the grace. Without --yes it only says what it "
        "would drop.",
    )
    prune.add_argument("service", help="the service whose old release schemas to drop")
    prune.add_argument(
        "--keep-last-seen-within",
        dest="grace",
        metavar="DURATION",
        type=parse_duration,
        default=PRUNE_GRACE,
        help="keep a schema a replica was seen in within this long, e.g. 90s, 30m, 2h, 1d, "
        "1h30m (default: 1h)",
    )
    prune.add_argument("--dry-run", action="store_true", help="show what it would drop; drop none")
    prune.add_argument(
        "--yes", action="store_true", help="really drop them, with every table in them"
    )
    listing.set_defaults(handler=lambda args: run("read-models list", _list(args)))
    prune.set_defaults(handler=lambda args: run("read-models prune", _prune(args)))


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``."""
    compact = text.strip().lower()
    if not compact or DURATION.sub("", compact).strip():
        raise argparse.ArgumentTypeError(
            f"cannot read {text!r} as a duration: give e.g. 90s, 30m, 2h, 1d or 1h30m"
        )
    seconds = sum(int(n) * UNITS[unit] for n, unit in DURATION.findall(compact))
    return timedelta(seconds=seconds)


# -- list ----------------------------------------------------------------------------------


async def _list(args: argparse.Namespace) -> int:
    loaded = load_service(args.service)
    schemas = _schemas(loaded)
    if schemas is None:
        return 0
    try:
        found = await _survey(schemas, loaded)
    finally:
        await schemas.dispose()
    current = _current(loaded)
    print(f"{loaded.name}: {len(found)} release schema(s) in {_shown(loaded.database_url)}")
    if current not in {s.name for s in found}:
        print(f"this release's schema {current} does not exist yet (no replica of it started)")
    ends = await _stream_ends(args.nats_url or loaded.nats_url, found)
    now = utcnow()
    for schema in found:
        print(_describe(schema, ends, now))
    return 0


async def _stream_ends(url: str, found: list[ReleaseSchema]) -> dict[str, int | None] | None:
    """Each stream's last sequence (None: no such stream); None when NATS does not answer."""
    streams = sorted({c.stream for schema in found for c in schema.checkpoints})
    if not streams:
        return {}
    try:
        nc: NATS = await connect(url)
    except CliError as exc:
        print(f"agora: {exc}; showing checkpoints without the streams' ends", file=sys.stderr)
        return None
    ends: dict[str, int | None] = {}
    try:
        for stream in streams:
            try:
                ends[stream] = await last_sequence(nc, stream)
            except NotFoundError:
                ends[stream] = None
    finally:
        await nc.close()
    return ends


def _describe(schema: ReleaseSchema, ends: dict[str, int | None] | None, now: datetime) -> str:
    lines = [f"{schema.name}{'  (this release)' if schema.current else ''}"]
    newest = schema.last_seen
    if newest is not None:
        lines.append(
            f"    last used {_at(newest.last_seen)} ({ago(now - newest.last_seen)}) by "
            f"{newest.instance}, {_replica_state(newest.stopped_at, newest.last_seen, now)}; "
            f"{len(schema.replicas)} replica(s) recorded"
        )
    else:
        why = "no replica recorded itself in it"
        if not schema.has_heartbeat:
            why = "last used: unknown (made before replicas recorded themselves)"
        written = schema.last_written
        last = f"; last written {_at(written)}" if written is not None else ""
        lines.append(f"    {why}{last}")
    if schema.leases:
        lines.append(f"    projecting into it now: {', '.join(schema.leases)}")
    if not schema.checkpoints:
        lines.append("    no checkpoints (no read models prepared)")
    for checkpoint in schema.checkpoints:
        where = f"checkpoint {checkpoint.sequence}"
        if ends is not None:
            end = ends.get(checkpoint.stream)
            where += " (no such stream)" if end is None else f" of {end}"
        lines.append(f"    {checkpoint.projection} {checkpoint.stream}: {where}")
    return "\n".join(lines)


def _replica_state(stopped_at: datetime | None, last_seen: datetime, now: datetime) -> str:
    if stopped_at is not None:
        return f"stopped {_at(stopped_at)}"
    if now - last_seen <= timedelta(seconds=3 * HEARTBEAT_SECONDS):
        return "running"
    return "silent since (stopped without saying so, or cut off)"


# -- prune ---------------------------------------------------------------------------------


async def _prune(args: argparse.Namespace) -> int:
    loaded = load_service(args.service)
    schemas = _schemas(loaded, nothing="nothing to prune")
    if schemas is None:
        return 0
    grace: timedelta = args.grace
    try:
        found = await _survey(schemas, loaded)
        verdicts = [judge(schema, grace=grace, now=utcnow()) for schema in found]
        for verdict in verdicts:
            if verdict.action != "drop":
                print(_verdict_line(verdict))
        doomed = [v for v in verdicts if v.action == "drop"]
        refused = sum(v.action == "refuse" for v in verdicts)
        if not doomed:
            print(f"nothing to drop among {len(found)} release schema(s) of {loaded.name}")
            return FAILED if refused and not args.dry_run else 0
        if args.dry_run or not args.yes:
            for verdict in doomed:
                print(f"would drop {verdict.schema.name}: {verdict.reason}")
        if args.dry_run:
            return 0
        if not args.yes:
            print(
                f"agora read-models prune: this drops {len(doomed)} schema(s) with every "
                f"table in them. Run 'agora read-models prune {loaded.name} --yes' to do it.",
                file=sys.stderr,
            )
            return 2
        failed = 0
        for verdict in doomed:
            failed += await _drop(schemas, verdict.schema.name, grace)
    finally:
        await schemas.dispose()
    return FAILED if refused or failed else 0


async def _drop(schemas: ReleaseSchemas, name: str, grace: timedelta) -> int:
    """Drop one schema (it is judged again in the drop's transaction); 1 when it was not."""
    try:
        verdict = await schemas.drop(name, grace=grace)
    except LookupError as exc:
        print(f"skipped {name}: {exc}")  # dropped by someone else meanwhile
        return 0
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"agora: could not drop {name}: {reason}", file=sys.stderr)
        return 1
    if verdict.action == "drop":
        print(f"dropped {name}: {verdict.reason}")
        return 0
    print(_verdict_line(verdict))
    return 1


def _verdict_line(verdict: Verdict) -> str:
    name = verdict.schema.name
    if verdict.action == "keep":
        return f"keeping {name}: {verdict.reason}"
    return f"refusing to drop {name}: {verdict.reason}"


# -- shared --------------------------------------------------------------------------------


def _current(loaded: LoadedService) -> str:
    """The schema of the release installed here (the digest this code computes)."""
    return release_schema(loaded.name, loaded.database_url, loaded.projections)


def _schemas(
    loaded: LoadedService, *, nothing: str = "no release schemas"
) -> ReleaseSchemas | None:
    """The service's release schemas, or None (said why) when its database is SQLite."""
    url = make_url(loaded.database_url)
    shown = _shown(loaded.database_url)
    if url.get_backend_name() == "sqlite":
        print(
            f"{nothing}: {loaded.name} keeps its read models in the SQLite file "
            f"{url.database}; "
            "release schemas exist only on PostgreSQL"
        )
        return None
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "asyncpg":
        raise CliError(f"cannot use database {shown!r}: use postgresql+asyncpg://…")
    protected = {_current(loaded)}
    if loaded.database_schema is not None:
        protected.add(loaded.database_schema)  # the one its settings name, if they do
    return ReleaseSchemas(loaded.database_url, loaded.name, current=protected)


async def _survey(schemas: ReleaseSchemas, loaded: LoadedService) -> list[ReleaseSchema]:
    try:
        return await schemas.survey()
    except (OSError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError(
            f"cannot reach the database of {loaded.name}, {_shown(loaded.database_url)}: {reason}",
            FAILED,
        ) from None


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
