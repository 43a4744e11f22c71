"""``agora reset --yes``: delete the local platform's home (its log, read models, logs and
recorded ports), so that the next ``agora up`` starts from an empty log with fresh demo data.
Refused while an ``agora up`` holds the home."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .home import HomeLock, HomeLocked, default_home


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "reset", help="delete the local platform's data (its whole home); asks for --yes"
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=default_home(),
        help="the platform's home (default: $AGORA_HOME or %(default)s)",
    )
    parser.add_argument(
        "--yes", action="store_true", help="really delete it: every event, read model and log"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    home: Path = args.home.resolve()
    if not home.exists():
        print(f"nothing to reset: {home} does not exist")
        return 0
    if not args.yes:
        print(
            f"agora reset: this deletes {home}: the local platform's whole event log, its "
            "read models, logs and recorded ports. Run 'agora reset --yes' to do it.",
            file=sys.stderr,
        )
        return 2
    lock = HomeLock(home)
    try:
        lock.acquire()
    except HomeLocked as exc:
        print(f"agora reset: refused: {exc}", file=sys.stderr)
        return 1
    try:
        shutil.rmtree(home)
    finally:
        lock.release()
    print(f"deleted {home}; the next 'agora up' starts from an empty log")
    return 0
