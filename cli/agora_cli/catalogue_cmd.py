"""``agora catalogue write|check|release``: the event contracts committed in docs/events/.

``write`` regenerates the schemas, the AsyncAPI document and the index; ``check`` (CI) fails
when they are stale or when a released type changed incompatibly within its major version;
``release`` records the current schemas as released, in docs/events/baseline/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agora_events.catalogue import catalogue, stale_schemas, write_schemas
from agora_events.contracts import load_all
from agora_events.evolution import incompatibilities, release

DEFAULT_DIR = Path("docs/events/schemas")
BASELINE = "baseline"
"""Beside the schemas: docs/events/baseline/<type>.json."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("catalogue", help="generate, check or release the contracts")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="default: %(default)s")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="the released schemas (default: baseline/ beside --dir)",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("write", help="regenerate the committed schemas").set_defaults(
        handler=_write
    )
    actions.add_parser(
        "check", help="fail when the schemas are stale or break a released version"
    ).set_defaults(handler=_check)
    actions.add_parser(
        "release", help="record the current schemas as released (refused if incompatible)"
    ).set_defaults(handler=_release)


def _baseline(args: argparse.Namespace) -> Path:
    chosen: Path | None = args.baseline
    return chosen if chosen is not None else Path(args.dir).parent / BASELINE


def _write(args: argparse.Namespace) -> int:
    load_all()
    names = write_schemas(catalogue, args.dir)
    print(f"wrote {len(names)} schemas to {args.dir}")
    return 0


def _check(args: argparse.Namespace) -> int:
    load_all()
    failed = False
    stale = stale_schemas(catalogue, args.dir)
    if stale:
        print(
            f"agora: {len(stale)} schema file(s) in {args.dir} are stale: {', '.join(stale)}\n"
            "run 'agora catalogue write' and commit the result",
            file=sys.stderr,
        )
        failed = True
    baseline = _baseline(args)
    problems = incompatibilities(catalogue, baseline)
    if problems:
        print(
            f"agora: {len(problems)} incompatible change(s) to released event types "
            f"(baseline {baseline}):\n" + "\n".join(f"  {problem}" for problem in problems),
            file=sys.stderr,
        )
        failed = True
    if failed:
        return 1
    print(f"{args.dir}: all schemas current and compatible with {baseline}")
    return 0


def _release(args: argparse.Namespace) -> int:
    load_all()
    baseline = _baseline(args)
    try:
        written = release(catalogue, baseline)
    except ValueError as exc:
        print(f"agora: not released, incompatible changes:\n{exc}", file=sys.stderr)
        return 1
    print(f"{baseline}: {len(written)} schema(s) released" + "".join(f"\n  {t}" for t in written))
    return 0
