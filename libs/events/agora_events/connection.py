"""Connecting to NATS the same way everywhere.

nats-py treats ``max_reconnect_attempts=0`` as "forever", even for the first connection, so a
wrong URL would hang a CLI. Here the first connection always fails fast with a clear error;
a long-running service then switches to reconnecting forever.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import nats
from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from nats.errors import NoServersError

log = logging.getLogger("agora.nats")


class NatsUnavailable(ConnectionError):
    pass


def redacted(url: str) -> str:
    """The URL as it may be shown: a password in it (``nats://agenda:secret@nats:4222``)
    becomes ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


async def _report(error: Exception) -> None:
    log.warning("nats connection problem", extra={"error": str(error)})


async def connect(url: str, *, name: str, persistent: bool = False, timeout: float = 3.0) -> NATS:
    try:
        nc = await nats.connect(
            servers=[url],
            name=name,
            connect_timeout=timeout,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            error_cb=_report,
        )
    except (NoServersError, OSError) as exc:
        raise NatsUnavailable(f"cannot reach NATS at {redacted(url)}: {exc}") from exc
    if persistent:
        # Read by nats-py on every reconnect; -1 means keep trying.
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 1.0
    return nc


def reactor_broker(url: str, *, name: str, graceful_timeout: float = 10.0) -> NatsBroker:
    """FastStream's broker for a service's reactors: its own connection (FastStream makes
    it on ``start``), failing fast the first time like ``connect``, then reconnecting for
    as long as the process lives; stopping waits up to ``graceful_timeout`` for the event
    in hand."""
    return NatsBroker(
        url,
        name=name,
        connect_timeout=2,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        error_cb=_report,
        graceful_timeout=graceful_timeout,
        # FastStream's own line per message stays at debug; the reactors log what matters.
        log_level=logging.DEBUG,
        # A logger of ours, so FastStream's lines (starting, stopping consumers) are JSON like
        # every other: its default writes coloured text to stdout with a handler of its own.
        logger=logging.getLogger("agora.faststream"),
    )
