"""``agora streams foreign [--stream S]``: messages in a stream that are not Agora events.

Reads the whole stream (batched direct gets) and lists each message that has no valid
CloudEvents envelope, an unknown type or a body the current model refuses: its sequence,
subject, reason and what was wrong (field names, never values). Readers of history step over
such messages; this shows what they stepped over. Exit status 1 when any was found.
"""

from __future__ import annotations

import argparse
import asyncio

from agora_events import contracts
from agora_events.catalogue import catalogue
from agora_events.foreign import find_foreign
from agora_events.streams import STREAMS

from .nats_cli import connect_or_report

FOUND = 1


def add_to(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``foreign`` under ``agora streams``."""
    names = [spec.name for spec in STREAMS.values()]
    foreign = actions.add_parser(
        "foreign",
        help="list messages in a stream that are not Agora events",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    foreign.add_argument(
        "--stream",
        action="append",
        choices=names,
        metavar="S",
        help=f"only this stream (repeatable; default: all of {', '.join(names)})",
    )
    foreign.set_defaults(
        handler=lambda args: asyncio.run(_foreign(args.nats_url, args.stream or names))
    )


async def _foreign(url: str, streams: list[str]) -> int:
    contracts.load_all()
    nc = await connect_or_report(url, "agora-cli")
    if nc is None:
        return 2
    found = 0
    try:
        for stream in streams:
            async for message in find_foreign(nc, stream, catalogue):
                found += 1
                print(
                    f"{message.stream} seq {message.sequence} {message.subject} "
                    f"[{message.reason}] type {message.event_type or '?'}: {message.detail}"
                )
    finally:
        await nc.close()
    if not found:
        print(f"no foreign messages in {', '.join(streams)}")
        return 0
    print(f"{found} foreign message(s)")
    return FOUND
