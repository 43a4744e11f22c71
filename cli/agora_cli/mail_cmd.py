"""``agora mail``: the mails the local platform sent, as the mail catcher of ``agora up``
keeps them (one ``.eml`` file each under ``<home>/mail``), oldest first."""

from __future__ import annotations

import argparse
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from .home import default_home


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("mail", help="list the mails the local platform sent")
    parser.add_argument(
        "--home",
        type=Path,
        default=default_home(),
        help="the platform's home (default: $AGORA_HOME or %(default)s)",
    )
    parser.add_argument(
        "--show", type=int, metavar="N", help="print mail number N (as listed) in full"
    )
    parser.set_defaults(handler=run)


def _read(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def run(args: argparse.Namespace) -> int:
    folder: Path = args.home / "mail"
    files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
    if args.show is not None:
        if not 1 <= args.show <= len(files):
            print(f"agora mail: there is no mail {args.show}; {len(files)} in {folder}")
            return 2
        message = _read(files[args.show - 1])
        for header in ("From", "To", "Subject", "Date", "Message-ID", "Content-Language"):
            print(f"{header}: {message[header]}")
        body = message.get_body(preferencelist=("plain",))
        print()
        print(body.get_content() if body is not None else "")
        for part in message.iter_attachments():
            print(f"[attachment {part.get_filename()} {part.get_content_type()}]")
        return 0
    if not files:
        print(f"no mail in {folder} (`agora up` runs the catcher; mails arrive as they are sent)")
        return 0
    for number, path in enumerate(files, 1):
        message = _read(path)
        print(f"{number:>4}  {message['Date']}  {message['To']}  {message['Subject']}")
    print(f"{len(files)} mail(s) in {folder}; `agora mail --show N` prints one")
    return 0
