"""``agora streams init|info``: create the context streams, show their state."""

from __future__ import annotations

import argparse
import asyncio
import sys

from agora_events.streams import StreamSummary, describe_streams, ensure_streams

from .nats_cli import add_nats_url, connect_or_report


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("streams", help="create or inspect the JetStream streams")
    add_nats_url(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create missing streams; report drift, never overwrite")
    init.add_argument("--replicas", type=int, default=1, help="replicas for new streams")
    init.set_defaults(handler=lambda args: asyncio.run(_init(args.nats_url, args.replicas)))
    info = actions.add_parser("info", help="show each stream's subjects, messages and sequences")
    info.set_defaults(handler=lambda args: asyncio.run(_info(args.nats_url)))


async def _init(url: str, replicas: int) -> int:
    nc = await connect_or_report(url, "agora-cli")
    if nc is None:
        return 2
    try:
        reports = await ensure_streams(nc.jetstream(), replicas=replicas)
    finally:
        await nc.close()
    for report in reports:
        print(f"{report.name:<14} {report.status}")
        for drift in report.drift:
            print(f"  drift  {drift}")
    if any(report.status == "drifted" for report in reports):
        print(
            "agora: some streams differ from the expected configuration; they were left "
            "unchanged. Review the drift above and update them deliberately.",
            file=sys.stderr,
        )
        return 3
    return 0


async def _info(url: str) -> int:
    nc = await connect_or_report(url, "agora-cli")
    if nc is None:
        return 2
    try:
        summaries = await describe_streams(nc.jetstream())
    finally:
        await nc.close()
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
