"""``agora audit export|verify``: hand an auditor a stream's log, and check it later."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from agora_events.audit import AuditError, compare_with_stream, export_log, verify_export
from agora_events.projections.rebuild import UntilError, parse_until
from agora_events.streams import STREAMS

from .nats_cli import add_nats_url, connect_or_report

TAMPERED = 1
USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "audit", help="export a stream's log with a hash chain; verify an export"
    )
    add_nats_url(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write every message of a stream, in order")
    export.add_argument("stream", help="a context (agenda) or a stream name (AGENDA)")
    export.add_argument("--until", help="last sequence (1234) or time (2025-06-24T12:00:00Z)")
    export.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    export.set_defaults(handler=lambda args: asyncio.run(_export(args)))
    verify = actions.add_parser("verify", help="check an export's chain, and the live stream")
    verify.add_argument("file", type=Path)
    verify.add_argument("--head", help="the head the export printed, kept with the audit")
    verify.add_argument(
        "--against-stream",
        action="store_true",
        help="also read the same sequences from the live stream and compare",
    )
    verify.set_defaults(handler=lambda args: asyncio.run(_verify(args)))


def stream_name(text: str) -> str | None:
    for context, spec in STREAMS.items():
        if text in (context, spec.name):
            return spec.name
    return None


async def _export(args: argparse.Namespace) -> int:
    stream = stream_name(args.stream)
    if stream is None:
        known = ", ".join(STREAMS)
        print(f"agora: no stream {args.stream!r}; one of {known}", file=sys.stderr)
        return USAGE
    try:
        until = parse_until(args.until) if args.until else None
    except UntilError as exc:
        print(f"agora: --until: {exc}", file=sys.stderr)
        return USAGE
    nc = await connect_or_report(args.nats_url, "agora-audit")
    if nc is None:
        return USAGE
    try:
        with _output(args.output) as out:
            summary = await export_log(
                nc,
                stream,
                out,
                up_to=until.sequence if until else None,
                until=until.time if until else None,
            )
    except AuditError as exc:
        outcome = "the output above is incomplete" if args.output == "-" else "nothing was written"
        print(f"agora: {exc}; {outcome}", file=sys.stderr)
        return USAGE
    except OSError as exc:  # the output file: a missing directory, no permission, a full disk
        print(f"agora: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return USAGE
    finally:
        await nc.close()
    where = "stdout" if args.output == "-" else args.output
    span = (
        f"sequences {summary.first_sequence}-{summary.last_sequence}"
        if summary.messages
        else "empty"
    )
    print(f"exported {summary.messages} messages of {stream} ({span}) to {where}", file=sys.stderr)
    for first, last in summary.gaps:
        print(f"warning: sequences {first}-{last} are no longer in the stream", file=sys.stderr)
    print(f"head {summary.head}", file=sys.stderr)
    print(
        "keep the head with the audit record: `agora audit verify FILE --head …`", file=sys.stderr
    )
    return 0


@contextlib.contextmanager
def _output(target: str) -> Iterator[TextIO]:
    """stdout, or a file that appears only once the export is complete."""
    if target == "-":
        yield sys.stdout
        return
    path = Path(target)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            yield out
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


async def _verify(args: argparse.Namespace) -> int:
    try:
        with args.file.open(encoding="utf-8") as lines:
            result = verify_export(lines, head=args.head)
    except OSError as exc:
        print(f"agora: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return USAGE
    except (AuditError, UnicodeDecodeError) as exc:
        print(f"agora: {args.file}: {exc}", file=sys.stderr)
        return USAGE
    problems = list(result.problems)
    if args.against_stream:
        nc = await connect_or_report(args.nats_url, "agora-audit")
        if nc is None:
            return USAGE
        try:
            problems += await compare_with_stream(nc, result)
        except AuditError as exc:
            print(f"agora: {exc}", file=sys.stderr)
            return USAGE
        finally:
            await nc.close()
    for problem in problems:
        print(f"problem: {problem}")
    count = len(result.messages)
    if problems:
        print(f"NOT INTACT: {len(problems)} problem(s) in {count} messages of {result.stream}")
        return TAMPERED
    checked = " and matches the live stream" if args.against_stream else ""
    print(f"intact: {count} messages of {result.stream}{checked}; head {result.head}")
    return 0
