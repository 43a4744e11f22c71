"""A local mail catcher (aiosmtpd): accepts every mail and keeps it as an ``.eml`` file in a
folder, so a newcomer reads what the platform sends (``agora mail``). Local use only."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession


class Keeper:
    """aiosmtpd handler: one file per mail, named so a listing sorts by arrival."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: SmtpSession, envelope: SmtpEnvelope
    ) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        content = envelope.original_content or b""
        temporary = path.with_suffix(".part")
        temporary.write_bytes(content)
        temporary.rename(path)  # a reader never sees half a mail
        return "250 OK"


def catcher_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path(".agora/mail"))


async def catch_mail(host: str, port: int, folder: Path) -> int:
    controller = Controller(Keeper(folder), hostname=host, port=port)
    controller.start()
    print(f"catching mail on {host}:{port}, kept in {folder}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            controller.stop()
    return 0
