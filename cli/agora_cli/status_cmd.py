"""``agora status``: what the local platform runs, where, and whether each piece answers.

Reads the home's ``endpoints.json`` (``$AGORA_HOME`` or ``.agora``), tells from its lock
whether an ``agora up`` holds it, and asks NATS's monitoring ``/healthz`` and each service's
``/readyz``. Exits 0 when everything is up and ready, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path

from agora_events.connection import redacted

from .home import ENDPOINTS_FILE, default_home, holder, read_endpoints

NOT_ALL_READY = 1
TIMEOUT = 2.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "status", help="show what the local platform runs, where, and whether it is ready"
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=default_home(),
        help="the platform's home (default: $AGORA_HOME or %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    home: Path = args.home.resolve()
    recorded = read_endpoints(home)
    if recorded is None:
        print(f"no local platform in {home} (no {ENDPOINTS_FILE}): './agora up' starts one")
        return NOT_ALL_READY
    pid = holder(home)
    if pid is None:
        print(f"platform in {home}: not running (last run: pid {recorded.pid})")
    else:
        print(f"platform in {home}: running, 'agora up' pid {pid if pid > 0 else '?'}")
    nats = _answer(f"{recorded.monitor_url}/healthz")
    rows = [
        ("nats", redacted(recorded.nats_url), recorded.nats_pid, nats),
        *(
            (name, service.url, service.pid, _answer(f"{service.url}/readyz"))
            for name, service in recorded.services.items()
        ),
    ]
    print(f"{'what':<13} {'where':<28} {'pid':>8}  state")
    for name, where, child, state in rows:
        print(f"{name:<13} {where:<28} {child or '-':>8}  {state}")
    print(f"monitoring    {recorded.monitor_url}")
    ready = pid is not None and all(state == "ready" for *_, state in rows)
    return 0 if ready else NOT_ALL_READY


def _answer(url: str) -> str:
    """``ready``, ``not ready: <why>`` or ``not answering``."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return "ready" if response.status == 200 else f"not ready: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"not ready: {_problems(error.read()) or f'HTTP {error.code}'}"
    except (urllib.error.URLError, OSError):
        return "not answering"


def _problems(body: bytes) -> str:
    try:
        report = json.loads(body)
        checks = report.get("checks", {})
        problems = checks.get("problems") or []
        return "; ".join(str(p) for p in problems) or str(report.get("status", ""))
    except (ValueError, AttributeError):
        return ""
