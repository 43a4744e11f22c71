"""Event contracts of every context. Importing this package registers them all."""

from importlib import import_module

CONTEXT_MODULES = ("agenda", "registration", "declarations", "notifications")


def load_all() -> None:
    for name in CONTEXT_MODULES:
        import_module(f"{__name__}.{name}")
