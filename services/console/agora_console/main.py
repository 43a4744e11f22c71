"""The console process: what it has, declared for the kernel's service shell, which connects,
starts, serves and stops it. Nothing connects at import time. It appends to no stream of its
own: its read models come from the other contexts' streams, its commands go to the
services' HTTP APIs.

python -m agora_console.main [serve]   the pages, their live updates and the projections
"""

from __future__ import annotations

from collections.abc import Sequence

from agora_events.projections import Projection
from agora_events.service import ServiceDefinition
from agora_events.service import main as shell_main
from agora_events.store import EventStore

from . import api
from .clients import Services
from .projections import all_projections
from .settings import ConsoleSettings


def load_settings() -> ConsoleSettings:
    return ConsoleSettings()


def projections() -> Sequence[Projection]:
    return all_projections()


def commands(store: EventStore, settings: ConsoleSettings) -> Services:
    return Services(settings)


CONSOLE: ServiceDefinition[ConsoleSettings, Services] = ServiceDefinition(
    context="console",
    title="console",
    summary="The web console: the programme, the declaration's status, the gates.",
    settings=load_settings,
    projections=projections,
    commands=commands,
    routers=api.routers,
    own_stream=False,
)


def main(argv: list[str] | None = None) -> int:
    return shell_main(CONSOLE, argv)


if __name__ == "__main__":
    raise SystemExit(main())
