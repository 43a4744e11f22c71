"""The notifications process: what it has, declared for the kernel's service shell.

python -m agora_notifications.main [serve]   HTTP API, projections, reactor and dispatcher
python -m agora_notifications.main catch-mail --port 8025 --dir .agora/mail
                                             a local SMTP server keeping every mail it is
                                             sent as a file (what `agora up` runs)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from agora_events.projections import Projection
from agora_events.reactor import Reactor as AnyReactor
from agora_events.service import ReactorParts, ServiceDefinition, Task
from agora_events.service import main as shell_main
from agora_events.store import EventStore

from . import api
from .application import Notifications
from .catcher import catch_mail, catcher_arguments
from .delivery import Dispatcher
from .projections import all_projections
from .reactor import Reactor
from .settings import NotificationsSettings


def load_settings() -> NotificationsSettings:
    return NotificationsSettings()


def projections() -> Sequence[Projection]:
    return all_projections()


def commands(store: EventStore, settings: NotificationsSettings) -> Notifications:
    return Notifications(store, settings)


def reactors(
    parts: ReactorParts[NotificationsSettings, Notifications],
) -> Sequence[AnyReactor]:
    if parts.db is None:
        raise RuntimeError("the notifications reactor needs the service's read-model database")
    dispatcher = Dispatcher(parts.commands, parts.db, parts.settings)
    return [Reactor(parts.broker, parts.commands, parts.db, parts.runner, dispatcher=dispatcher)]


async def demo(settings: NotificationsSettings, args: argparse.Namespace) -> int:
    """Nothing to seed: notices follow from the other services' demo data."""
    print(f"demo: nothing to seed; mails go to {settings.smtp_host}:{settings.smtp_port}")
    return 0


async def mail_catcher(settings: NotificationsSettings, args: argparse.Namespace) -> int:
    return await catch_mail(args.host, args.port, args.dir)


NOTIFICATIONS: ServiceDefinition[NotificationsSettings, Notifications] = ServiceDefinition(
    context="notifications",
    title="notifications",
    summary="Email and signed webhooks from every context, exactly once in effect.",
    settings=load_settings,
    projections=projections,
    commands=commands,
    routers=api.routers,
    reactors=reactors,
    tasks={
        "demo": Task("nothing to seed (notices follow from the other services' data)", demo),
        "catch-mail": Task(
            "a local SMTP server that keeps each mail as a file", mail_catcher, catcher_arguments
        ),
    },
)


def main(argv: list[str] | None = None) -> int:
    return shell_main(NOTIFICATIONS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
