"""``agora replay <service>``: rebuild read models from the log, or replay them up to a point.

* no ``--until``, no ``--database``: each projection is rebuilt from sequence 0 beside the
  live one and swapped into the service's database; a running service keeps answering and
  carries on from the swapped-in checkpoint.
* ``--database URL``: rebuild into that database instead (the live one is not touched).
* ``--until SEQ|TIME``: a point-in-time replay for an audit, into ``--database`` or a new
  SQLite file under ``.agora/replay/``; never into the live database.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence

from nats.aio.client import Client as NATS

from agora_events import contracts
from agora_events.catalogue import catalogue
from agora_events.projections import Projection
from agora_events.projections.progress import StderrProgress
from agora_events.projections.rebuild import (
    REPLAY_BATCH,
    Until,
    UntilError,
    parse_until,
    rebuild,
    replay,
)

from .read_models import (
    CliError,
    LoadedService,
    check_live,
    connect,
    load_service,
    open_database,
    run,
    same_database,
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "replay",
        help="rebuild read models from the event log, or replay them up to a point in time",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("service", help="the service whose projections to replay")
    parser.add_argument(
        "--projection",
        action="append",
        metavar="P",
        help="only this projection (repeatable; default: all of the service's)",
    )
    parser.add_argument(
        "--until",
        metavar="T|SEQ",
        help="stop after stream sequence SEQ, or at time T (ISO 8601 with a zone, e.g. "
        "2025-06-24T12:00:00Z; events stored later are left out)",
    )
    parser.add_argument("--database", metavar="URL", help="replay into this database")
    parser.add_argument("--nats-url", help="NATS server (default: the service's setting)")
    parser.add_argument(
        "--batch", type=int, default=REPLAY_BATCH, help="events per fetch and transaction"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    return run("replay", _replay(args))


async def _replay(args: argparse.Namespace) -> int:
    loaded = load_service(args.service)
    chosen = loaded.select(args.projection)
    until = _until(args.until, chosen)
    target = _target(loaded, args.database, until)
    if args.batch < 1:
        raise CliError("--batch must be at least 1")
    contracts.load_all()
    nc = await connect(args.nats_url or loaded.nats_url)
    try:
        if target is None:
            await _rebuild_live(nc, loaded, chosen, args.batch)
        else:
            await _replay_into(nc, target, chosen, until, args.batch)
    finally:
        await nc.close()
    return 0


def _until(text: str | None, chosen: Sequence[Projection]) -> Until | None:
    if text is None:
        return None
    try:
        until = parse_until(text)
    except UntilError as exc:
        raise CliError(f"--until: {exc}") from None
    several = [p for p in chosen if len(p.streams) > 1]
    if until.sequence is not None and several:
        streams = ", ".join(several[0].streams)
        raise CliError(
            f"--until {text} is ambiguous: projection {several[0].name!r} reads {streams}, "
            "each numbered on its own; give a time instead"
        )
    return until


def _target(loaded: LoadedService, database: str | None, until: Until | None) -> str | None:
    """The database to replay into, or None to rebuild and swap into the live one."""
    live = database is None or same_database(database, loaded.database_url)
    if until is None:
        return None if live else database
    if database is not None and live:
        raise CliError(
            "refusing to replay the live database back in time: pass --database with "
            "another database for a point-in-time replay"
        )
    return database or _default_audit_url(loaded.name, until)


def _default_audit_url(service: str, until: Until) -> str:
    slug = f"seq{until.sequence}" if until.time is None else until.time.strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(".agora", "replay", f"{service}-{slug}.db")
    return f"sqlite+aiosqlite:///{path}"


async def _rebuild_live(
    nc: NATS, loaded: LoadedService, chosen: Sequence[Projection], batch: int
) -> None:
    live = loaded.live_database()
    try:
        await check_live(live, chosen)
        for projection in chosen:
            report = await rebuild(
                nc,
                live,
                projection,
                registry=catalogue,
                progress=StderrProgress(),
                batch_size=batch,
            )
            events = sum(r.events for r in report.replayed)
            parked = sum(r.parked for r in report.replayed)
            reached = ", ".join(f"{s} up to {q}" for s, q in report.checkpoints.items())
            print(
                f"{projection.name}: rebuilt from the log and swapped into {live.display} "
                f"({reached}); {events} events in {report.seconds:.1f} s, {parked} parked"
            )
    finally:
        await live.dispose()


async def _replay_into(
    nc: NATS, url: str, chosen: Sequence[Projection], until: Until | None, batch: int
) -> None:
    target = open_database(url)
    try:
        reports = await replay(
            nc,
            target,
            chosen,
            until=until,
            registry=catalogue,
            progress=StderrProgress(),
            batch_size=batch,
        )
    finally:
        await target.dispose()
    point = f" (until {until})" if until else ""
    for report in reports:
        print(
            f"{report.projection} {report.stream}: {report.events} events up to sequence "
            f"{report.checkpoint}{point} into {_shown(url)}; {report.parked} parked, "
            f"{report.rate:,.0f} events/s"
        )


def _shown(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
