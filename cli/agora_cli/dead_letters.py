"""``agora dead-letters list|retry|discard <service>``: events a projection could not apply.

``list`` shows each parked event: its identity in the log, why it is parked, how often it was
tried and the last error. ``retry`` applies parked events again, per aggregate and in order,
once the cause is fixed (a handler corrected, a missing contract deployed); it works while
the service runs. It exits with 1 when some events still fail. ``discard`` gives up on one
parked event for good (a stray message, data no contract will accept), recording who, when
and why, and retries the events of the same aggregate that waited behind it.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Sequence

from agora_events import contracts
from agora_events.catalogue import catalogue
from agora_events.projections.bookkeeping import DeadLetter
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.dead_letters import (
    discard_dead_letter,
    list_dead_letters,
    retry_dead_letters,
)

from .read_models import FAILED, CliError, check_live, load_service, open_database, run


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "dead-letters",
        help="list, retry or discard events a projection could not apply",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show parked events and their errors")
    retry = actions.add_parser("retry", help="apply parked events again, in order")
    retry.add_argument(
        "--id",
        dest="ids",
        type=int,
        action="append",
        metavar="N",
        help="only the chain (same aggregate) holding dead letter N (repeatable)",
    )
    discard = actions.add_parser(
        "discard", help="give up on one parked event (recorded), retry what waited behind it"
    )
    discard.add_argument("--reason", required=True, help="why; recorded with who and when")
    discard.add_argument(
        "--by", default=None, help="who discards it (default: $AGORA_OPERATOR, else the login)"
    )
    for action in (listing, retry, discard):
        action.add_argument("service", help="the service whose read models to look at")
        action.add_argument("--projection", action="append", metavar="P", help="only this one")
        action.add_argument("--database", metavar="URL", help="default: the service's database")
    discard.add_argument("id", type=int, help="the dead letter's id, as `list` shows it")
    listing.set_defaults(handler=lambda args: run("dead-letters list", _list(args)))
    retry.set_defaults(handler=lambda args: run("dead-letters retry", _retry(args)))
    discard.set_defaults(handler=lambda args: run("dead-letters discard", _discard(args)))


async def _list(args: argparse.Namespace) -> int:
    loaded = load_service(args.service)
    chosen = loaded.select(args.projection)
    db = open_database(args.database) if args.database else loaded.live_database()
    try:
        await check_live(db, chosen)
        letters = [
            letter
            for projection in chosen
            for letter in await list_dead_letters(db, projection.name)
        ]
    finally:
        await db.dispose()
    if not letters:
        print(f"no dead letters in {db.display}")
        return 0
    print(f"{len(letters)} dead letter(s) in {db.display}")
    for letter in letters:
        print(describe(letter))
    return 0


def describe(letter: DeadLetter) -> str:
    error = letter.error.strip().splitlines()[-1] if letter.error.strip() else ""
    return (
        f"#{letter.id} {letter.projection} {letter.stream} seq {letter.sequence} "
        f"{letter.subject} [{letter.reason}, {letter.attempts} attempt(s)]\n"
        f"    type {letter.event_type or '?'}, event id {letter.event_id or '?'}, "
        f"parked {letter.parked_at:%Y-%m-%d %H:%M:%S} UTC\n"
        f"    {error}"
    )


async def _retry(args: argparse.Namespace) -> int:
    loaded = load_service(args.service)
    chosen = loaded.select(args.projection)
    contracts.load_all()
    db = open_database(args.database) if args.database else loaded.live_database()
    try:
        await check_live(db, chosen)
        await _check_ids(db, args.ids, [p.name for p in chosen])
        outcome = await retry_dead_letters(db, chosen, registry=catalogue, ids=args.ids)
    finally:
        await db.dispose()
    print(f"{len(outcome.applied)} parked event(s) applied")
    for letter, error in outcome.failed:
        last_line = error.strip().splitlines()[-1] if error.strip() else error
        print(f"still failing: #{letter.id} {letter.projection} seq {letter.sequence}: {last_line}")
    if outcome.still_waiting:
        print(f"{len(outcome.still_waiting)} event(s) still wait behind them")
    return 0 if outcome.clean else FAILED


async def _discard(args: argparse.Namespace) -> int:
    loaded = load_service(args.service)
    chosen = loaded.select(args.projection)
    contracts.load_all()
    db = open_database(args.database) if args.database else loaded.live_database()
    try:
        await check_live(db, chosen)
        outcome = await discard_dead_letter(
            db, chosen, args.id, reason=args.reason, by=_operator(args.by), registry=catalogue
        )
    except (LookupError, ValueError) as exc:
        raise CliError(str(exc).strip("'\"")) from exc
    finally:
        await db.dispose()
    letter = outcome.discarded
    print(f"discarded #{letter.id} {letter.projection} {letter.stream} seq {letter.sequence}")
    retried = outcome.retried
    if retried.applied:
        print(f"{len(retried.applied)} event(s) that waited behind it applied")
    for waiting, error in retried.failed:
        last_line = error.strip().splitlines()[-1] if error.strip() else error
        print(f"still failing: #{waiting.id} seq {waiting.sequence}: {last_line}")
    if retried.still_waiting:
        print(f"{len(retried.still_waiting)} event(s) still wait behind it")
    return 0 if retried.clean else FAILED


def _operator(given: str | None) -> str:
    if given:
        return given
    try:
        return os.environ.get("AGORA_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


async def _check_ids(
    db: ReadModelDatabase, ids: Sequence[int] | None, projections: list[str]
) -> None:
    if not ids:
        return
    known = {letter.id for name in projections for letter in await list_dead_letters(db, name)}
    missing = [str(number) for number in ids if number not in known]
    if missing:
        raise CliError(f"no dead letter with id {', '.join(missing)}")
