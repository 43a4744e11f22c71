"""Connecting to NATS the same way everywhere.

nats-py treats ``max_reconnect_attempts=0`` as "forever", even for the first connection, so a
wrong URL would hang a CLI. Here the first connection always fails fast with a clear error;
a long-running service then switches to reconnecting forever.

With a CA bundle (``AGORA_NATS_TLS_CA_FILE``, production's client port) every connection is
TLS from its first byte, verifying the server against that CA only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import nats
from faststream.nats import NatsBroker
from faststream.nats.security import NatsSecurity
from nats.aio.client import Client as NATS
from nats.errors import NoServersError

log = logging.getLogger("agora.nats")

TLS_CA_FILE_VARIABLE = "AGORA_NATS_TLS_CA_FILE"
"""The platform's CA bundle for TLS to NATS; every process of Agora reads this one."""


class NatsUnavailable(ConnectionError):
    pass


def tls_context(ca_file: str | Path) -> ssl.SSLContext:
    """A client context that trusts only the CA certificates in ``ca_file`` (PEM) and checks
    the server's name. A file that is missing, unreadable or holds no certificate is a
    ``ValueError`` naming it."""
    path = os.fspath(ca_file)
    try:
        return ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise ValueError(
            f"{path}, the CA for TLS to NATS, holds no PEM certificate ({exc.reason})"
        ) from None
    except OSError as exc:
        raise ValueError(
            f"cannot read {path}, the CA for TLS to NATS: {exc.strerror or exc}"
        ) from None


def _tls(ca_file: str | Path | None) -> ssl.SSLContext | None:
    ca_file = ca_file or os.environ.get(TLS_CA_FILE_VARIABLE) or None
    if ca_file is None:
        return None
    try:
        return tls_context(ca_file)
    except ValueError as exc:
        raise NatsUnavailable(f"{exc} ({TLS_CA_FILE_VARIABLE})") from None


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


async def connect(
    url: str,
    *,
    name: str,
    persistent: bool = False,
    timeout: float = 3.0,
    tls_ca_file: str | Path | None = None,
) -> NATS:
    """A connection to ``url``; over TLS, verified against ``tls_ca_file`` (by default the
    file ``AGORA_NATS_TLS_CA_FILE`` names, if any), whatever the URL's scheme."""
    tls = _tls(tls_ca_file)
    failures: list[Exception] = []

    async def report(error: Exception) -> None:
        failures[:] = [error]
        await _report(error)

    try:
        # nats-py does not return from a failed TLS handshake (it waits for the plain socket
        # under it to close, which never happens), with a CA of ours or, against a server
        # that requires TLS, without one: bounded here (after both attempts could have timed
        # out), the handshake's error the reason.
        async with asyncio.timeout(2 * timeout + 1):
            nc = await nats.connect(
                servers=[url],
                name=name,
                connect_timeout=timeout,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
                error_cb=report,
                tls=tls,
                # TLS before the server's INFO: nothing can downgrade it to a plain connection.
                tls_handshake_first=tls is not None,
            )
    except TimeoutError as exc:  # before OSError, its base class
        reason = failures[-1] if failures else exc
        raise NatsUnavailable(f"cannot reach NATS at {redacted(url)}: {reason}") from exc
    except (NoServersError, OSError) as exc:
        raise NatsUnavailable(f"cannot reach NATS at {redacted(url)}: {exc}") from exc
    if persistent:
        # Read by nats-py on every reconnect; -1 means keep trying.
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 1.0
    return nc


def reactor_broker(
    url: str, *, name: str, graceful_timeout: float = 10.0, tls_ca_file: str | Path | None = None
) -> NatsBroker:
    """FastStream's broker for a service's reactors: its own connection (FastStream makes
    it on ``start``), failing fast the first time like ``connect``, then reconnecting for
    as long as the process lives; stopping waits up to ``graceful_timeout`` for the event
    in hand. TLS as ``connect``."""
    tls = _tls(tls_ca_file)
    return NatsBroker(
        url,
        name=name,
        connect_timeout=2,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        error_cb=_report,
        security=None if tls is None else NatsSecurity(ssl_context=tls, tls_handshake_first=True),
        graceful_timeout=graceful_timeout,
        # FastStream's own line per message stays at debug; the reactors log what matters.
        log_level=logging.DEBUG,
        # A logger of ours, so FastStream's lines (starting, stopping consumers) are JSON like
        # every other: its default writes coloured text to stdout with a handler of its own.
        logger=logging.getLogger("agora.faststream"),
    )
