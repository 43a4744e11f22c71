"""The one place that lists the platform's services. A new service is one entry here.

Every service package has the same ``main`` module, which provides:

* ``load_settings()`` → its settings (``database_url``, ``nats_url``, ``http_port``, …);
* ``projections()`` → its read-model projections;
* ``main(argv)`` → the process entry point: ``serve`` (default) runs HTTP and projections,
  ``demo`` loads demo data idempotently.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    name: str
    module: str
    default_port: int
    demo: bool = True
    """Whether it has a ``demo`` task (the console has none: it shows the others' data)."""

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    @property
    def env_prefix(self) -> str:
        return f"AGORA_{self.name.upper()}_"


SERVICES: tuple[ServiceEntry, ...] = (
    ServiceEntry("agenda", "agora_agenda.main", 8101),
    ServiceEntry("registration", "agora_registration.main", 8102),
    ServiceEntry("declarations", "agora_declarations.main", 8103),
    ServiceEntry("notifications", "agora_notifications.main", 8104),
    ServiceEntry("console", "agora_console.main", 8105, demo=False),
)


class UnknownService(LookupError):
    pass


def service(name: str) -> ServiceEntry:
    for entry in SERVICES:
        if entry.name == name:
            return entry
    known = ", ".join(entry.name for entry in SERVICES)
    raise UnknownService(f"no service named {name!r}; known services: {known}")
