"""``agora``: the platform's command line. Sub-commands live in their own modules."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Callable
from types import ModuleType

from . import audit_cmd, catalogue_cmd, mail_cmd, reset_cmd, status_cmd, streams_cmd, up

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agora", description="Run and operate the Agora forum platform."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _modules():
        module.register(subparsers)
    return parser


def _modules() -> list[ModuleType]:
    modules: list[ModuleType] = [
        up,
        status_cmd,
        reset_cmd,
        streams_cmd,
        catalogue_cmd,
        audit_cmd,
        mail_cmd,
    ]
    # Admin tools that arrive with the projection runner register the same way.
    for name in ("replay", "dead_letters", "read_models_cmd"):
        with contextlib.suppress(ImportError):
            modules.append(importlib.import_module(f"agora_cli.{name}"))
    return modules


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
