"""The declarations process: what it has, declared for the kernel's service shell, which
connects, starts, serves and stops it. Nothing connects at import time.

python -m agora_declarations.main [serve]   HTTP API, projections and reactor
python -m agora_declarations.main demo      draft and open the Samarkand declaration in a
                                            log that does not hold it yet, then exit
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from agora_events.projections import Projection
from agora_events.reactor import Reactor as AnyReactor
from agora_events.service import ReactorParts, ServiceDefinition, Task, commands_on_nats
from agora_events.service import main as shell_main
from agora_events.store import EventStore

from . import api
from .application import Declarations
from .demo import load_demo, samarkand
from .projections import all_projections
from .reactor import Reactor
from .settings import DeclarationsSettings


def load_settings() -> DeclarationsSettings:
    return DeclarationsSettings()


def projections() -> Sequence[Projection]:
    return all_projections()


def commands(store: EventStore, settings: DeclarationsSettings) -> Declarations:
    return Declarations(store)


def reactors(parts: ReactorParts[DeclarationsSettings, Declarations]) -> Sequence[AnyReactor]:
    return [Reactor(parts.broker, parts.store, parts.commands)]


async def demo(settings: DeclarationsSettings, args: argparse.Namespace) -> int:
    """Open the demo declaration in a log that holds none; never touch it again after (``agora
    up`` runs this on every start)."""
    async with commands_on_nats(DECLARATIONS, settings) as declarations:
        done = await load_demo(declarations)
    facts = samarkand()
    if done:
        print(f"demo: {facts.declaration_id} drafted and opened for signature (placeholder text)")
    else:
        print(f"demo: left as it is: the log already holds {facts.declaration_id}")
    return 0


DECLARATIONS: ServiceDefinition[DeclarationsSettings, Declarations] = ServiceDefinition(
    context="declarations",
    title="declarations",
    summary="Declarations opened for signature by States, and the depositary's status table.",
    settings=load_settings,
    projections=projections,
    commands=commands,
    routers=api.routers,
    reactors=reactors,
    tasks={"demo": Task("open the demo declaration in a log without it", demo)},
)


def main(argv: list[str] | None = None) -> int:
    return shell_main(DECLARATIONS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
