"""``agora streams backup|restore``: the streams to a folder and back, by JetStream snapshots.

``backup DIR`` writes ``DIR/<STREAM>/`` for each stream: ``stream.tar.s2``, the snapshot as
the server sent it, and ``backup.json``, its configuration and state with the data's SHA-256
and the audit chain head (natscli's layout: ``nats stream restore DIR/<STREAM>`` reads it
too). A stream's folder appears only once its backup is complete.

``restore DIR`` creates each stream again from ``DIR/<STREAM>/`` (or from ``DIR`` itself when
it holds one stream's backup), then compares the server's stream with the backup: messages,
first and last sequence, chain head. It refuses, changing nothing, a stream that exists, a
backup without readable metadata and data that is not what the metadata describes. For a
replicated stream it then has the stream's leader step down: the next one loads the
duplicate window (``Nats-Msg-Id``) of the restored messages, which a single server does
only when it restarts (a ``note:`` says so).

Exit status: 0 done; 2 refused before anything changed (bad input, no NATS, a missing
stream, an existing one, an unusable backup); 1 failed on the way, or restored a stream that
differs from its backup (left for inspection). Each stream is tried even if another fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from nats.aio.client import Client as NATS

from agora_events.snapshots import (
    METADATA_FILE,
    BackupFolderExists,
    BackupUnusable,
    NoSuchStream,
    RestoredStream,
    SnapshotError,
    StreamBackup,
    StreamExists,
    back_up_stream,
    read_backup,
    restore_stream,
)
from agora_events.streams import STREAMS

from .nats_cli import connect_or_report

DONE = 0
FAILED = 1
REFUSED = 2
STREAMS_BY_NAME = {spec.name for spec in STREAMS.values()}


def add_to(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``backup`` and ``restore`` under ``agora streams``."""
    names = [spec.name for spec in STREAMS.values()]
    backup = actions.add_parser(
        "backup",
        help="snapshot streams into DIR/<STREAM>/ (data, checksum, chain head)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backup.add_argument(
        "dir",
        type=Path,
        metavar="DIR",
        help="the folder to write into (one a night); DIR/<STREAM> must not exist yet",
    )
    _add_streams(backup, names, "all of")
    backup.add_argument(
        "--no-chain-head",
        action="store_true",
        help="do not read the stream to record its audit chain head (a very large stream)",
    )
    backup.set_defaults(handler=lambda args: asyncio.run(_backup(args, args.stream or names)))
    restore = actions.add_parser(
        "restore",
        help="create lost streams again from DIR and check them against the backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore.add_argument(
        "dir", type=Path, metavar="DIR", help="a night's folder, or one stream's folder in it"
    )
    _add_streams(restore, names, "every stream backed up in DIR, of")
    restore.add_argument(
        "--replicas",
        type=int,
        choices=(1, 3, 5),
        help="replicas of the restored streams instead of the backup's (1 on a single server)",
    )
    restore.set_defaults(handler=lambda args: asyncio.run(_restore(args)))


def _add_streams(parser: argparse.ArgumentParser, names: list[str], default: str) -> None:
    parser.add_argument(
        "--stream",
        action="append",
        choices=names,
        metavar="NAME",
        help=f"only this stream (repeatable; default: {default} {', '.join(names)})",
    )


# -- backup ----------------------------------------------------------------------------------


async def _backup(args: argparse.Namespace, streams: list[str]) -> int:
    nc = await connect_or_report(args.nats_url, "agora-backup")
    if nc is None:
        return REFUSED
    outcomes = []
    try:
        for stream in dict.fromkeys(streams):
            outcomes.append(await _back_up_one(nc, stream, args.dir / stream, args.no_chain_head))
    finally:
        await nc.close()
    return _worst(outcomes)


async def _back_up_one(nc: NATS, stream: str, folder: Path, no_chain_head: bool) -> int:
    try:
        backup = await back_up_stream(nc, stream, folder, with_chain_head=not no_chain_head)
    except NoSuchStream as exc:
        return _report(f"{exc}; nothing was written for it", REFUSED)
    except BackupFolderExists as exc:
        return _report(f"{stream}: {exc}; it was left as it was", REFUSED)
    except SnapshotError as exc:
        return _report(f"{stream}: {exc}; no backup of it was written", FAILED)
    except OSError as exc:
        return _report(f"cannot write the backup of {stream} in {folder}: {exc}", FAILED)
    print(f"{stream:<14} backed up to {folder}: {_describe(backup)}")
    return DONE


def _describe(backup: StreamBackup) -> str:
    span = _span(backup.messages, backup.first_sequence, backup.last_sequence)
    head = f", chain head {backup.chain_head}" if backup.chain_head else ""
    return f"{backup.messages} messages ({span}), {backup.size} bytes{head}"


def _span(messages: int, first: int, last: int) -> str:
    return f"sequences {first}-{last}" if messages else f"empty, last sequence {last}"


# -- restore ---------------------------------------------------------------------------------


async def _restore(args: argparse.Namespace) -> int:
    try:
        folders = _backup_folders(args.dir, args.stream)
    except BackupUnusable as exc:
        return _report(str(exc), REFUSED)
    nc = await connect_or_report(args.nats_url, "agora-restore")
    if nc is None:
        return REFUSED
    outcomes = []
    try:
        for stream, folder in folders.items():
            outcomes.append(await _restore_one(nc, stream, folder, args.replicas))
    finally:
        await nc.close()
    return _worst(outcomes)


def _backup_folders(root: Path, wanted: list[str] | None) -> dict[str, Path]:
    """The folder of each stream to restore: the named ones, or all there are."""
    if (root / METADATA_FILE).exists():  # one stream's folder
        stream = read_backup(root, check_data=False).stream
        if wanted and set(wanted) != {stream}:
            raise BackupUnusable(f"{root} holds the backup of {stream}, not of {', '.join(wanted)}")
        return {stream: root}
    if not root.is_dir():
        raise BackupUnusable(f"{root} is not a folder")
    if wanted:
        return {stream: root / stream for stream in dict.fromkeys(wanted)}
    found = {
        folder.name: folder
        for folder in sorted(root.iterdir())
        if folder.name in STREAMS_BY_NAME and (folder / METADATA_FILE).exists()
    }
    if not found:
        raise BackupUnusable(f"{root} holds no stream backup (<STREAM>/{METADATA_FILE})")
    return found


async def _restore_one(nc: NATS, stream: str, folder: Path, replicas: int | None) -> int:
    try:
        backup = read_backup(folder, check_data=False)  # restore_stream checks the data
        if backup.stream != stream:
            raise BackupUnusable(f"{folder} holds the backup of {backup.stream}, not of {stream}")
        restored = await restore_stream(nc, folder, replicas=replicas)
    except (BackupUnusable, StreamExists) as exc:
        return _report(f"{stream}: {exc}; nothing was restored", REFUSED)
    except SnapshotError as exc:
        return _report(f"{stream}: {exc}", FAILED)
    return _verdict(backup, restored)


def _verdict(backup: StreamBackup, restored: RestoredStream) -> int:
    span = _span(restored.messages, restored.first_sequence, restored.last_sequence)
    print(f"{restored.stream:<14} restored: {restored.messages} messages ({span})")
    print(f"  chain head {restored.chain_head}")
    if restored.duplicates_note:
        print(f"  note: {restored.duplicates_note}")
    if restored.matches:
        checked = "and chain head " if backup.chain_head else ""
        print(f"  matches the backup's messages, sequences {checked}(taken {backup.taken_at})")
        return DONE
    for difference in restored.differences:
        print(f"  differs  {difference}")
    return _report(
        f"{restored.stream} was restored but differs from its backup (above); it was left "
        "as restored for inspection",
        FAILED,
    )


# -- reporting -------------------------------------------------------------------------------


def _report(message: str, code: int) -> int:
    print(f"agora: {message}", file=sys.stderr)
    return code


def _worst(outcomes: list[int]) -> int:
    """FAILED if anything failed on the way, else REFUSED if anything was refused."""
    if FAILED in outcomes:
        return FAILED
    return REFUSED if REFUSED in outcomes else DONE
