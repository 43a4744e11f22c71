"""The registration process: what it has, declared for the kernel's service shell, which
connects, starts, serves and stops it. Nothing connects at import time.

python -m agora_registration.main [serve]   HTTP API, projections and reactor
python -m agora_registration.main demo      load the demo participants, then exit
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
from .application import Registration
from .demo import load_demo
from .projections import all_projections
from .reactor import Reactor
from .settings import RegistrationSettings


def load_settings() -> RegistrationSettings:
    return RegistrationSettings()


def projections() -> Sequence[Projection]:
    return all_projections()


def commands(store: EventStore, settings: RegistrationSettings) -> Registration:
    return Registration(store)


def reactors(parts: ReactorParts[RegistrationSettings, Registration]) -> Sequence[AnyReactor]:
    return [Reactor(parts.broker, parts.store, parts.commands)]


async def demo(settings: RegistrationSettings, args: argparse.Namespace) -> int:
    async with commands_on_nats(REGISTRATION, settings) as registration:
        report = await load_demo(registration)
    print(
        f"demo: {report.participants} roundtable participants; "
        f"{report.registered} newly registered, {report.approved} newly approved"
    )
    return 0


REGISTRATION: ServiceDefinition[RegistrationSettings, Registration] = ServiceDefinition(
    context="registration",
    title="registration",
    summary="Participants, accreditation, badges, check-in and workshop enrolment.",
    settings=load_settings,
    projections=projections,
    commands=commands,
    routers=api.routers,
    reactors=reactors,
    tasks={"demo": Task("load the demo participants (idempotent)", demo)},
)


def main(argv: list[str] | None = None) -> int:
    return shell_main(REGISTRATION, argv)


if __name__ == "__main__":
    raise SystemExit(main())
