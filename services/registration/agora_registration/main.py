"""The registration process: what it has, declared for the kernel's service shell, which
connects, starts, serves and stops it. Nothing connects at import time.

python -m agora_registration.main [serve]   HTTP API, projections and reactor
python -m agora_registration.main demo      load the demo participants into a log that holds
                                            none of them yet, then exit
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
from .demo import demo_participants, held_demo_participants, load_demo
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
    """Seed the demo participants into a log that holds none of them; never touch what
    organisers did with them since (``agora up`` runs this on every start)."""
    async with commands_on_nats(REGISTRATION, settings) as registration:
        held = await held_demo_participants(registration)
        if held:
            print(
                f"demo: left as it is: the log already holds {held} of the "
                f"{len(demo_participants())} roundtable participants"
            )
            return 0
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
    tasks={"demo": Task("load the demo participants into a log without them", demo)},
)


def main(argv: list[str] | None = None) -> int:
    return shell_main(REGISTRATION, argv)


if __name__ == "__main__":
    raise SystemExit(main())
