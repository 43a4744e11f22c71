"""What every NATS-using command shares: the ``--nats-url`` option and a connection that
reports an unreachable server as a one-line error instead of a traceback."""

from __future__ import annotations

import argparse
import os
import sys

from nats.aio.client import Client as NATS

from agora_events.connection import NatsUnavailable, connect

DEFAULT_URL = "nats://127.0.0.1:4222"


def add_nats_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("AGORA_NATS_URL", DEFAULT_URL),
        help="NATS server (default: $AGORA_NATS_URL or %(default)s)",
    )


async def connect_or_report(url: str, name: str) -> NATS | None:
    """A connection, or None after printing why there is none."""
    try:
        return await connect(url, name=name)
    except NatsUnavailable as exc:
        print(f"agora: {exc}", file=sys.stderr)
        return None
