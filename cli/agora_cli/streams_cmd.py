"""``agora streams init|update|info|backup|restore``: create the context streams, add their
feed, show them, back them up and restore them (``backup_cmd``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from agora_events.settings import PRODUCTION_STREAM_REPLICAS
from agora_events.streams import (
    StreamAdminError,
    StreamReport,
    StreamSummary,
    add_republish,
    describe_streams,
    ensure_streams,
)

from . import backup_cmd, foreign_cmd
from .nats_cli import add_nats_url, connect_or_report, not_the_platform, whose_server


def default_replicas() -> int:
    local = os.environ.get("AGORA_ENV", "local") == "local"
    return 1 if local else PRODUCTION_STREAM_REPLICAS


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("streams", help="create or inspect the JetStream streams")
    add_nats_url(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create missing streams; report drift, never overwrite")
    init.add_argument(
        "--replicas",
        type=int,
        default=default_replicas(),
        help="replicas for new streams (default: 1, or "
        f"{PRODUCTION_STREAM_REPLICAS} when AGORA_ENV is not local, as the services)",
    )
    init.set_defaults(handler=lambda args: asyncio.run(_init(args.nats_url, args.replicas)))
    update = actions.add_parser(
        "update", help="make one named change to existing streams, leaving the rest as found"
    )
    update.add_argument(
        "--republish",
        action="store_true",
        required=True,
        help="add the live feed (republish <context>.> to feed.<context>.>) where it is missing",
    )
    update.set_defaults(handler=lambda args: asyncio.run(_update(args.nats_url)))
    info = actions.add_parser("info", help="show each stream's subjects, messages and sequences")
    info.set_defaults(handler=lambda args: asyncio.run(_info(args.nats_url)))
    foreign_cmd.add_to(actions)
    backup_cmd.add_to(actions)


async def _init(url: str, replicas: int) -> int:
    nc = await connect_or_report(url, "agora-cli")
    if nc is None:
        return 2
    try:
        reports = await ensure_streams(nc.jetstream(), replicas=replicas)
    finally:
        await nc.close()
    _print(reports)
    if any(report.status == "drifted" for report in reports):
        print(
            "agora: some streams differ from the expected configuration; they were left "
            "unchanged. Review the drift above and update them deliberately "
            "(a missing republish: `agora streams update --republish`).",
            file=sys.stderr,
        )
        return 3
    return 0


async def _update(url: str) -> int:
    nc = await connect_or_report(url, "agora-cli")
    if nc is None:
        return 2
    try:
        reports = await add_republish(nc)
    except StreamAdminError as error:
        print(f"agora: {error}", file=sys.stderr)
        return 1
    finally:
        await nc.close()
    _print(reports)
    if any(report.status in ("drifted", "missing") for report in reports):
        print(
            "agora: some streams were left unchanged: a missing one needs `agora streams init`, "
            "one that republishes elsewhere a deliberate `nats stream edit`.",
            file=sys.stderr,
        )
        return 3
    return 0


def _print(reports: list[StreamReport]) -> None:
    for report in reports:
        print(f"{report.name:<14} {report.status}")
        for drift in report.drift:
            print(f"  drift  {drift}")


async def _info(url: str) -> int:
    nc = await connect_or_report(url, "agora-cli")
    if nc is None:
        return 2
    try:
        summaries = await describe_streams(nc.jetstream())
        server = whose_server(nc, url)
    finally:
        await nc.close()
    if not any(isinstance(summary, StreamSummary) for summary in summaries):
        return _none_of_ours(url, server)
    print(f"{'stream':<14} {'subjects':<18} {'messages':>9} {'bytes':>11} {'first':>7} {'last':>7}")
    for summary in summaries:
        if isinstance(summary, StreamSummary):
            print(
                f"{summary.name:<14} {','.join(summary.subjects):<18} {summary.messages:>9} "
                f"{summary.bytes:>11} {summary.first_sequence:>7} {summary.last_sequence:>7}"
            )
        else:
            print(f"{summary:<14} (missing: run 'agora streams init')")
    return 0


def _none_of_ours(url: str, server: str) -> int:
    """A server without any of Agora's streams: most likely someone else's, so say whose
    rather than advise creating Agora's streams on it."""
    print(f"agora: {server} holds none of Agora's streams.", file=sys.stderr)
    elsewhere = not_the_platform(url)
    if elsewhere:
        print(elsewhere, file=sys.stderr)
    print(
        "Only if this server is meant to hold Agora's log: 'agora streams init' creates them "
        "there.",
        file=sys.stderr,
    )
    return 1
