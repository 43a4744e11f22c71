"""Webhooks to the Standard Webhooks specification (standardwebhooks.com).

* ``webhook-id``: from the notice id, the same on every attempt;
* ``webhook-timestamp``: seconds since the epoch, when the attempt is made;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per
  secret in force, space-separated (during a rotation the previous secret signs too).

An endpoint's secret is never stored: it is derived from the service's signing key and the
endpoint's secret generation, and shown once, when it is made (``whsec_`` + base64).

Targets: outside local mode only ``https``, and never an address that is private, loopback,
link-local, reserved or multicast, checked on the addresses the name resolves to, when the
endpoint is registered and before every attempt, and the attempt connects to an address the
check approved (the Host header and the TLS server name stay the URL's), so a name that
resolves elsewhere the second time is not followed. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

SECRET_PREFIX = "whsec_"


class TargetRefused(ValueError):
    """A webhook URL this service will not post to."""


def endpoint_secret(signing_secret: str, endpoint_id: str, generation: int) -> str:
    raw = hmac.new(
        signing_secret.encode(),
        f"webhook-secret:{endpoint_id}:{generation}".encode(),
        hashlib.sha256,
    ).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key(s), content, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def signed_headers(
    secrets: Sequence[str], webhook_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    at = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(at),
        "webhook-signature": sign(secrets, webhook_id, at, body),
        "content-type": "application/cloudevents+json",
    }


def body_of(cloudevent: dict[str, Any]) -> bytes:
    return json.dumps(cloudevent, separators=(",", ":"), sort_keys=True).encode()


# -- targets -----------------------------------------------------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


async def check_target(url: str, *, production: bool) -> list[str]:
    """Refuse a URL outside the rules (see the module's notes), resolving its host; the
    addresses checked (none in local mode, where nothing is resolved here)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"{url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise TargetRefused("a webhook URL must not carry credentials")
    if not production:
        return []
    if parts.scheme != "https":
        raise TargetRefused("outside local mode a webhook URL must use https")
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise TargetRefused(f"the host {parts.hostname!r} does not resolve") from exc
    addresses = {str(info[4][0]) for info in found}
    refused = sorted(a for a in addresses if not _public(a))
    if refused or not addresses:
        raise TargetRefused(
            f"the host {parts.hostname!r} resolves to an address that is not public "
            f"({', '.join(refused) or 'none'}): private, loopback and link-local targets are "
            "refused"
        )
    return sorted(addresses)


def pinned(url: str, address: str) -> tuple[str, str, str]:
    """The URL aimed at ``address`` (one the check approved), with the Host header and the
    TLS server name of the original, so the connection goes where the check looked and the
    certificate is still checked against the name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    return parts._replace(netloc=netloc).geturl(), parts.netloc, host


# -- posting -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Posted:
    status: int | None
    """None: no answer (refused, timed out)."""
    latency_ms: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks never to be sent to again."""
        return self.status == 410


class WebhookPoster:
    def __init__(self, *, timeout: float, production: bool) -> None:
        self._production = production
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"user-agent": "agora-notifications/1"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Posted:
        started = time.perf_counter()
        try:
            addresses = await check_target(url, production=self._production)
            extensions: dict[str, str] = {}
            if addresses:
                url, host, server_name = pinned(url, addresses[0])
                headers = headers | {"host": host}
                extensions["sni_hostname"] = server_name
            response = await self._client.post(
                url, content=body, headers=headers, extensions=extensions
            )
        except TargetRefused as exc:
            return Posted(None, 0, f"target refused: {exc}")
        except httpx.TimeoutException:
            return Posted(None, _ms(started), "timed out")
        except httpx.HTTPError as exc:
            return Posted(None, _ms(started), type(exc).__name__)
        return Posted(response.status_code, _ms(started))

    async def close(self) -> None:
        await self._client.aclose()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
