"""The agenda process: what it has, declared for the kernel's service shell, which connects,
starts, serves and stops it. Nothing connects at import.

python -m agora_agenda.main [serve]      HTTP API + projections until SIGTERM/SIGINT
python -m agora_agenda.main demo         import the bundled 2025 programme, unless the log
                                         already holds that edition (then nothing changes)
python -m agora_agenda.main import FILE  import a programme file; reports the edition's
                                         sessions the file no longer lists
python -m agora_agenda.main import FILE --cancel-missing
                                         … and cancels them
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from fastapi import FastAPI

from agora_events.decider import Rejected
from agora_events.projections import Projection
from agora_events.service import ServiceDefinition, Task, commands_on_nats
from agora_events.service import create_app as shell_app
from agora_events.service import main as shell_main
from agora_events.store import EventStore
from agora_events.usecases import Caller

from . import api
from .application import AgendaCommands, Outcome
from .importer import bundled_editions, load_edition
from .projections import all_projections
from .settings import AgendaSettings

DEMO_VERSION_LABEL = "Programme as imported from the bundled file"
CLI = Caller(actor="cli")


def load_settings() -> AgendaSettings:
    return AgendaSettings()


def projections() -> Sequence[Projection]:
    return all_projections()


def commands(store: EventStore, settings: AgendaSettings) -> AgendaCommands:
    return AgendaCommands(store)


async def import_file(
    settings: AgendaSettings, path: Path, *, cancel_missing: bool = False
) -> Outcome:
    command = load_edition(path, cancel_missing=cancel_missing)
    async with commands_on_nats(AGENDA, settings) as agenda:
        return await agenda.execute(command, CLI)


async def _demo(settings: AgendaSettings, args: argparse.Namespace) -> int:
    """Seed every bundled edition into a log that holds nothing of it, and publish it as a
    first version so the public programme has something to show; never rewrite what
    organisers changed since (``agora up`` runs this on every start). A JSON summary on
    stdout, the plain sentences on stderr."""
    editions: list[dict[str, object]] = []
    async with commands_on_nats(AGENDA, settings) as agenda:
        known = (await agenda.state()).editions
        for edition_id, path in bundled_editions().items():
            if edition_id in known:
                reason = f"the log already holds edition {edition_id}"
                editions.append({"edition_id": edition_id, "events": 0, "left_as_it_is": reason})
                print(f"demo: left as it is: {reason}", file=sys.stderr)
                continue
            try:
                imported = await agenda.execute(load_edition(path), CLI)
                published = await agenda.publish(edition_id, DEMO_VERSION_LABEL, CLI)
            except Rejected as exc:
                print(f"agora_agenda: {path.name} was not imported: {exc.reason}", file=sys.stderr)
                return 1
            events = len(imported.events) + len(published.events)
            editions.append({"edition_id": edition_id, "events": events, "imported": path.name})
            print(
                f"demo: imported edition {edition_id} from {path.name} and published it "
                f"({events} events)",
                file=sys.stderr,
            )
    total = sum(int(str(edition["events"])) for edition in editions)
    print(json.dumps({"editions": editions, "events": total}))
    return 0


async def _import(settings: AgendaSettings, args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        outcome = await import_file(settings, path, cancel_missing=args.cancel_missing)
    except Rejected as exc:
        print(f"agora_agenda: {path.name} was not imported: {exc.reason}", file=sys.stderr)
        return 1
    summary = {
        "imported": path.name,
        **outcome.ids,
        "events": len(outcome.events),
        "sequence": outcome.sequence,
        "missing": [asdict(ref) for ref in outcome.missing],
        "cancelled": [asdict(ref) for ref in outcome.cancelled],
    }
    print(json.dumps(summary))
    if outcome.missing:
        print(
            f"agora_agenda: {len(outcome.missing)} scheduled session(s) of "
            f"{outcome.ids['edition_id']} are not in {path.name} and were left as they are "
            "(import with --cancel-missing to cancel them): "
            + ", ".join(f"{ref.session_id} ({ref.title})" for ref in outcome.missing),
            file=sys.stderr,
        )
    return 0


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--cancel-missing",
        action="store_true",
        help="cancel the edition's scheduled sessions the file no longer lists "
        "(by default they are only reported)",
    )


AGENDA: ServiceDefinition[AgendaSettings, AgendaCommands] = ServiceDefinition(
    context="agenda",
    title="agenda",
    summary="Forum editions, rooms, sessions, speakers and published schedule versions.",
    settings=load_settings,
    projections=projections,
    commands=commands,
    routers=api.routers,
    tasks={
        "demo": Task("import and publish the bundled programmes the log does not hold yet", _demo),
        "import": Task("import a programme file (TOML)", _import, _import_arguments),
    },
)


def create_app(settings: AgendaSettings) -> FastAPI:
    return shell_app(AGENDA, settings)


def main(argv: list[str] | None = None) -> int:
    return shell_main(AGENDA, argv)


if __name__ == "__main__":
    raise SystemExit(main())
