"""What every NATS-using command shares: the ``--nats-url`` option and a connection that
reports an unreachable server as a one-line error instead of a traceback.

The server is, in this order: ``--nats-url``, ``$AGORA_NATS_URL``, the NATS of the local
platform that ``agora up`` recorded in the current home's ``endpoints.json``, 4222.
"""

from __future__ import annotations

import argparse
import sys

from nats.aio.client import Client as NATS

from agora_events.connection import NatsUnavailable, connect, redacted

from .home import DEFAULT_NATS_URL, ENDPOINTS_FILE, default_home, default_nats_url, read_endpoints

DEFAULT_URL = DEFAULT_NATS_URL


def add_nats_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nats-url",
        default=default_nats_url(),
        help="NATS server (default: $AGORA_NATS_URL, else the local platform's in "
        f"$AGORA_HOME/{ENDPOINTS_FILE}, else {DEFAULT_URL}; now %(default)s)",
    )


async def connect_or_report(url: str, name: str) -> NATS | None:
    """A connection, or None after printing why there is none."""
    try:
        return await connect(url, name=name)
    except NatsUnavailable as exc:
        print(f"agora: {exc}{platform_hint(url)}", file=sys.stderr)
        return None


def platform_hint(url: str) -> str:
    """When ``url`` is the local platform's NATS: a reminder of where that comes from."""
    recorded = read_endpoints()
    if recorded is None or recorded.nats_url != url:
        return ""
    return (
        f" (the local platform's NATS, recorded in {default_home() / ENDPOINTS_FILE}: "
        "is './agora up' running? --nats-url chooses another server)"
    )


def whose_server(nc: NATS, url: str) -> str:
    """Which server ``nc`` is connected to: its URL, name and version."""
    info = getattr(nc, "_server_info", None) or {}
    name = info.get("server_name") or info.get("server_id") or "?"
    version = info.get("version") or "?"
    return f"the server at {redacted(url)} (server name {name!r}, nats-server {version})"


def not_the_platform(url: str) -> str | None:
    """When the current home's platform runs its NATS elsewhere than ``url``: saying so."""
    recorded = read_endpoints()
    if recorded is None or recorded.nats_url == url:
        return None
    return (
        "It is not the local platform's: 'agora up' runs its NATS at "
        f"{redacted(recorded.nats_url)} (recorded in {default_home() / ENDPOINTS_FILE}); "
        "leave out --nats-url and $AGORA_NATS_URL to talk to that one."
    )
