"""``agora catalogue write|check``: the JSON Schemas of every event type in docs/events/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agora_events.catalogue import catalogue, stale_schemas, write_schemas
from agora_events.contracts import load_all

DEFAULT_DIR = Path("docs/events/schemas")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("catalogue", help="generate or check the event schemas")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="default: %(default)s")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("write", help="regenerate the committed schemas").set_defaults(
        handler=_write
    )
    actions.add_parser("check", help="fail when the committed schemas are stale").set_defaults(
        handler=_check
    )


def _write(args: argparse.Namespace) -> int:
    load_all()
    names = write_schemas(catalogue, args.dir)
    print(f"wrote {len(names)} schemas to {args.dir}")
    return 0


def _check(args: argparse.Namespace) -> int:
    load_all()
    stale = stale_schemas(catalogue, args.dir)
    if stale:
        print(
            f"agora: {len(stale)} schema file(s) in {args.dir} are stale: {', '.join(stale)}\n"
            "run 'agora catalogue write' and commit the result",
            file=sys.stderr,
        )
        return 1
    print(f"{args.dir}: all schemas current")
    return 0
