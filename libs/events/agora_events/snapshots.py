"""Back a JetStream stream up into a folder, and restore it from one, through JetStream's own
snapshot and restore API (the one ``nats stream backup|restore`` drive), over nats-py.

A backup folder holds one stream:

* ``stream.tar.s2``: the snapshot, byte for byte as the server streamed it (an S2-compressed
  archive of the stream's store: its messages with their sequences, subjects, headers and
  storage times). Nothing here decodes it; only a server reads it back.
* ``backup.json``: ``config`` and ``state`` as the server reported them when it took the
  snapshot (the two keys natscli's ``nats stream restore`` reads, which ignores the rest),
  and ``agora``: the data file's SHA-256 and size, the audit chain head through the last
  sequence (``agora_events.audit``), when the backup was taken and from which server.

The protocol, as the server implements it:

* **Snapshot.** Subscribe to a fresh inbox, then ask ``$JS.API.STREAM.SNAPSHOT.<stream>``
  with it as ``deliver_subject``. The answer carries the config and state, or an error. The
  server then sends the data to the inbox in chunks, each with a reply subject that must be
  answered (empty) as flow control: it keeps at most a window of unanswered chunks in
  flight and gives up after a few seconds without an answer. An empty message ends the
  data: status 204 (or none) means complete, any other status (``408 No Flow Response``,
  ``500 <reason>``) that the snapshot failed.
* **Restore.** Ask ``$JS.API.STREAM.RESTORE.<stream>`` with the config and state; the answer
  names a ``deliver_subject`` (or refuses, for one when the stream exists). Publish the data
  there in chunks, each as a request: an empty answer acknowledges it, a JSON answer is an
  error. An empty request ends the data; its answer is the server's stream-create response
  for the restored stream, or the reason it could not be restored. The server forgets an
  upload that pauses for a few seconds; until the end of the data nothing is created.
* **After a restore** the server (2.15) has not loaded the stream's duplicate window (the
  ``Nats-Msg-Id`` of its recent messages), which it does when it recovers a stream: a
  replicated stream's leader is made to step down, whose successor loads it; a single
  server needs a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from .audit import genesis, link
from .direct_get import LogUnreadable, stored_messages

FORMAT = "agora-stream-backup/1"
METADATA_FILE = "backup.json"
DATA_FILE = "stream.tar.s2"

CHUNK_SIZE = 128 * 1024  # what the server sends; natscli asks for the same
WINDOW_SIZE = 8 * 1024 * 1024  # unacknowledged bytes the server may have in flight
UPLOAD_CHUNK_SIZE = 64 * 1024  # what a restore publishes, as natscli does
API_TIMEOUT = 10.0  # an API answer; a clustered restore waits for the meta leader
CHUNK_TIMEOUT = 10.0  # the next chunk of a snapshot, or the answer to an uploaded one
FINISH_TIMEOUT = 600.0  # the server unpacking and checking a whole restored stream

STREAM_NOT_FOUND = 10059
STREAM_EXISTS_CANNOT_RESTORE = 10130
_END_OF_DATA = "204"


class SnapshotError(Exception):
    """A backup or restore that did not happen; the message says why and what was left."""


class BackupUnusable(SnapshotError):
    """A backup folder that cannot be restored: metadata missing or unreadable, or a data
    file missing or not the one the metadata describes. Nothing was sent to a server."""


class StreamExists(SnapshotError):
    """The stream to restore exists already; it was left untouched."""


class NoSuchStream(SnapshotError):
    """The stream to back up does not exist on the server."""


class BackupFolderExists(SnapshotError):
    """The folder a backup was to go into exists already; it was left as it was."""


@dataclass(frozen=True, slots=True)
class StreamBackup:
    """What ``backup.json`` says about a backup."""

    folder: Path
    stream: str
    config: dict[str, Any]  # as the server reported it, every field kept
    state: dict[str, Any]
    sha256: str
    size: int
    chain_head: str | None  # None: not recorded (a backup made by natscli, say)
    taken_at: str | None

    @property
    def messages(self) -> int:
        return int(self.state.get("messages", 0))

    @property
    def first_sequence(self) -> int:
        return int(self.state.get("first_seq", 0))

    @property
    def last_sequence(self) -> int:
        return int(self.state.get("last_seq", 0))

    @property
    def data_file(self) -> Path:
        return self.folder / DATA_FILE


@dataclass(frozen=True, slots=True)
class RestoredStream:
    """The restored stream as the server holds it, compared with its backup."""

    stream: str
    messages: int
    first_sequence: int
    last_sequence: int
    chain_head: str
    differences: tuple[str, ...]  # empty: it matches the backup in every recorded respect
    # Whether JetStream knows the restored messages' ``Nats-Msg-Id`` again (see
    # ``reload_duplicate_window``); if not, why, and what to do.
    duplicates_note: str | None = None

    @property
    def matches(self) -> bool:
        return not self.differences


# -- the chain head --------------------------------------------------------------------------


async def chain_head(nc: NATS, stream: str, *, up_to: int) -> str:
    """The audit chain head (hex) over ``stream``'s messages through sequence ``up_to``: the
    head ``agora audit export --until <up_to>`` prints for the same messages."""
    chain = genesis(stream)
    if up_to < 1:
        return chain.hex()
    try:
        async with aclosing(stored_messages(nc, stream, up_to=up_to)) as messages:
            async for message in messages:
                chain = link(chain, message)
    except LogUnreadable as exc:
        raise SnapshotError(f"cannot read {stream} for its chain head: {exc}") from exc
    return chain.hex()


# -- backup ----------------------------------------------------------------------------------


async def back_up_stream(
    nc: NATS, stream: str, folder: Path, *, with_chain_head: bool = True
) -> StreamBackup:
    """Write a backup of ``stream`` into ``folder``, which must not exist yet.

    The files are made in a temporary folder beside it, renamed to ``folder`` only once both
    are complete: ``folder`` either holds a whole backup or does not exist. Raises
    ``NoSuchStream``, ``BackupFolderExists``, or ``SnapshotError`` for a snapshot the server
    refused or broke off."""
    if not await stream_exists(nc, stream):  # in a cluster, nobody answers a snapshot of none
        raise NoSuchStream(f"the server has no stream {stream}")
    work = _work_folder_for(folder)
    try:
        with (work / DATA_FILE).open("wb") as data:
            answer, digest, size = await snapshot_stream(nc, stream, data)
            data.flush()
            os.fsync(data.fileno())
        config, state = answer["config"], answer["state"]
        last = int(state.get("last_seq", 0))
        head = await chain_head(nc, stream, up_to=last) if with_chain_head else None
        metadata = {
            "config": config,
            "state": state,
            "agora": {
                "format": FORMAT,
                "stream": stream,
                "data_file": DATA_FILE,
                "sha256": digest,
                "size": size,
                "chain_head": head,
                "taken_at": _now(),
                "server": _server_of(nc),
            },
        }
        _write_json(work / METADATA_FILE, metadata)
        os.rename(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return read_backup(folder)


async def snapshot_stream(
    nc: NATS,
    stream: str,
    out: BinaryIO,
    *,
    chunk_size: int = CHUNK_SIZE,
    window_size: int = WINDOW_SIZE,
    chunk_timeout: float = CHUNK_TIMEOUT,
) -> tuple[dict[str, Any], str, int]:
    """Have the server snapshot ``stream`` (without its consumers) and write the data to
    ``out`` exactly as it arrives. Returns the server's answer (``config``, ``state``), the
    data's SHA-256 (hex) and its size. ``out`` holds part of a snapshot when this raises."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    try:
        request = {
            "deliver_subject": inbox,
            "no_consumers": True,
            "chunk_size": chunk_size,
            "window_size": window_size,
        }
        answer = await _api(nc, f"STREAM.SNAPSHOT.{stream}", request, stream=stream)
        if not isinstance(answer.get("config"), dict) or not isinstance(answer.get("state"), dict):
            raise SnapshotError(f"the server's snapshot of {stream} came without config or state")
        digest, size = hashlib.sha256(), 0
        async for chunk in _chunks(nc, subscription, stream, chunk_timeout):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    return answer, digest.hexdigest(), size


async def _chunks(
    nc: NATS, subscription: Subscription, stream: str, timeout: float
) -> AsyncGenerator[bytes, None]:
    """The snapshot's chunks in order, each acknowledged as it arrives (before the caller
    writes it, so a slow disk does not stall the server's flow control)."""
    while True:
        try:
            message = await subscription.next_msg(timeout=timeout)
        except NatsTimeoutError:
            raise SnapshotError(
                f"the snapshot of {stream} stopped: no data from the server for {timeout:g} s"
            ) from None
        if not message.data:
            _check_end_of_data(message, stream)
            return
        if message.reply:
            await nc.publish(message.reply, b"")
        yield message.data


def _work_folder_for(folder: Path) -> Path:
    """A new temporary folder beside ``folder``, which must not exist."""
    if folder.exists():
        raise BackupFolderExists(f"{folder} exists already; a backup goes into a new folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))


def _check_end_of_data(message: Msg, stream: str) -> None:
    headers = message.headers or {}
    status = headers.get("Status")
    if status and status != _END_OF_DATA:
        description = headers.get("Description", "")
        raise SnapshotError(
            f"the server abandoned the snapshot of {stream}: {status} {description}".rstrip()
        )


# -- reading a backup ------------------------------------------------------------------------


def read_backup(folder: Path, *, check_data: bool = True) -> StreamBackup:
    """The backup in ``folder``, its data file checked against the recorded SHA-256 and size
    (unless ``check_data`` is false). Raises ``BackupUnusable`` saying what is wrong."""
    metadata = _read_metadata(folder)
    config, state, agora = metadata.get("config"), metadata.get("state"), metadata.get("agora")
    if not isinstance(config, dict) or not _is_stream_name(config.get("name")):
        raise BackupUnusable(f"{folder / METADATA_FILE} has no stream configuration")
    if not isinstance(state, dict) or not all(
        isinstance(state.get(key), int) for key in ("messages", "first_seq", "last_seq")
    ):
        raise BackupUnusable(f"{folder / METADATA_FILE} has no stream state (sequences, count)")
    if (
        not isinstance(agora, dict)
        or not isinstance(agora.get("sha256"), str)
        or not isinstance(agora.get("size"), int)
    ):
        raise BackupUnusable(
            f"{folder / METADATA_FILE} records no checksum of the data: it was not made by "
            "`agora streams backup`, so nothing can show its data is whole"
        )
    backup = StreamBackup(
        folder=folder,
        stream=config["name"],
        config=config,
        state=state,
        sha256=agora["sha256"],
        size=agora["size"],
        chain_head=agora.get("chain_head"),
        taken_at=agora.get("taken_at"),
    )
    if check_data:
        _check_data(backup)
    return backup


def _is_stream_name(name: object) -> bool:
    """A name JetStream accepts: one subject token, no path separators."""
    return isinstance(name, str) and bool(name) and not any(c in name for c in ".*> \t\r\n/\\")


def _read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / METADATA_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackupUnusable(f"{folder} holds no {METADATA_FILE}: it is not a backup") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupUnusable(f"cannot read {path}: {exc}") from None
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackupUnusable(f"{path} is not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(metadata, dict):
        raise BackupUnusable(f"{path} is not a JSON object")
    return metadata


def _check_data(backup: StreamBackup) -> None:
    digest, size = hashlib.sha256(), 0
    try:
        with backup.data_file.open("rb") as data:
            for block in iter(lambda: data.read(1024 * 1024), b""):
                digest.update(block)
                size += len(block)
    except FileNotFoundError:
        raise BackupUnusable(f"{backup.folder} holds no {DATA_FILE}") from None
    except OSError as exc:
        raise BackupUnusable(f"cannot read {backup.data_file}: {exc.strerror}") from None
    if size != backup.size or digest.hexdigest() != backup.sha256:
        raise BackupUnusable(
            f"{backup.data_file} is not the data {METADATA_FILE} describes "
            f"({size} bytes, SHA-256 {digest.hexdigest()[:16]}…; recorded {backup.size} bytes, "
            f"{backup.sha256[:16]}…): it was changed or cut short"
        )


# -- restore ---------------------------------------------------------------------------------


async def restore_stream(
    nc: NATS,
    folder: Path,
    *,
    replicas: int | None = None,
    finish_timeout: float = FINISH_TIMEOUT,
) -> RestoredStream:
    """Create the stream of the backup in ``folder`` from it, then compare the server's
    stream with the backup's state and chain head. ``replicas`` replaces the configuration's
    number of replicas (a production backup on a single server needs 1); nothing else of the
    configuration can change.

    Refuses before sending anything when the backup is unusable (``BackupUnusable``) or the
    stream exists (``StreamExists``, the stream untouched). When the server fails the
    restore, a stream it may have created part of is deleted again (this stream did not exist
    before) and ``SnapshotError`` says so. A restore that completes but differs from the
    backup is returned with its ``differences``, and the stream left for inspection."""
    backup = read_backup(folder)
    if await stream_exists(nc, backup.stream):
        raise StreamExists(
            f"stream {backup.stream} exists already; it was left untouched. Restore only "
            "a stream that is gone (remove a damaged one first)"
        )
    try:
        await _upload(nc, backup, replicas, finish_timeout)
    except StreamExists:
        raise  # made by someone else meanwhile: not ours to remove
    except SnapshotError as exc:
        raise SnapshotError(f"{exc}; {await _remove_partial(nc, backup.stream)}") from None
    try:
        note = await reload_duplicate_window(nc, backup.stream)
    except SnapshotError as exc:
        note = f"the duplicate window could not be reloaded ({exc}): restart NATS node by node"
    try:
        # Direct gets may be answered by any replica: compare once every one holds it all.
        await replicated(nc, backup.stream)
        restored = await compare_with_backup(nc, backup)
    except SnapshotError as exc:
        raise SnapshotError(
            f"{backup.stream} was restored but not compared with its backup: {exc}"
        ) from None
    return replace(restored, duplicates_note=note)


async def _upload(
    nc: NATS, backup: StreamBackup, replicas: int | None, finish_timeout: float
) -> None:
    config = backup.config if replicas is None else {**backup.config, "num_replicas": replicas}
    request = {"config": config, "state": backup.state}
    answer = await _api(nc, f"STREAM.RESTORE.{backup.stream}", request, stream=backup.stream)
    deliver = answer.get("deliver_subject")
    if not isinstance(deliver, str) or not deliver:
        raise SnapshotError(f"the server named no subject to restore {backup.stream} to")
    for chunk in _file_chunks(backup.data_file):
        await _send(nc, deliver, chunk, CHUNK_TIMEOUT, backup.stream)
    final = await _send(nc, deliver, b"", finish_timeout, backup.stream)
    if not final:
        raise SnapshotError(f"the server did not confirm the restore of {backup.stream}")
    _raise_for_error(_decode(final, backup.stream), backup.stream)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as data:
        yield from iter(lambda: data.read(UPLOAD_CHUNK_SIZE), b"")


async def _send(nc: NATS, subject: str, chunk: bytes, timeout: float, stream: str) -> bytes:
    """Publish one chunk (or the empty end of data) and wait for its answer; a non-empty
    answer to a chunk is the server's refusal."""
    try:
        reply = await nc.request(subject, chunk, timeout=timeout)
    except NatsTimeoutError:
        what = "to finish the restore" if not chunk else "to acknowledge a chunk"
        raise SnapshotError(
            f"no answer from the server {what} of {stream} in {timeout:g} s"
        ) from None
    except NoRespondersError:
        raise SnapshotError(f"the server stopped accepting the restore of {stream}") from None
    if chunk and reply.data:
        _raise_for_error(_decode(reply.data, stream), stream)
    return reply.data


async def _remove_partial(nc: NATS, stream: str) -> str:
    """After a failed restore: delete what the server may have created, and say what is left."""
    try:
        if not await stream_exists(nc, stream):
            return f"no stream {stream} was created"
        await _api(nc, f"STREAM.DELETE.{stream}", None, stream=stream)
    except SnapshotError as exc:
        return f"stream {stream} may exist in part: check `agora streams info` ({exc})"
    return f"the part of stream {stream} the server had created was deleted"


async def stream_exists(nc: NATS, stream: str) -> bool:
    """Whether the server has ``stream`` (raises ``SnapshotError`` when it does not answer)."""
    try:
        await _api(nc, f"STREAM.INFO.{stream}", None, stream=stream)
    except NoSuchStream:
        return False
    return True


async def reload_duplicate_window(nc: NATS, stream: str, *, within: float = 60.0) -> str | None:
    """Have the server load the duplicate window of a stream it has just restored.

    nats-server (2.15) does not look at a restored stream's ``Nats-Msg-Id`` headers until it
    recovers the stream: a command retried with an idempotency key it used before the backup
    would be stored a second time. A replicated stream's new leader loads them, so its leader
    is asked to step down and the next one awaited. Returns None when that was done, else a
    note saying what to do instead (a single replica: restart the server)."""
    info = await _api(nc, f"STREAM.INFO.{stream}", None, stream=stream)
    if int(info.get("config", {}).get("num_replicas", 1)) < 2:
        return (
            "the server recognises retried commands (Nats-Msg-Id) of the restored messages only "
            "after it restarts: restart it before the services write again"
        )
    # The successor must hold every restored message: wait until each replica does.
    info = await replicated(nc, stream)
    cluster = info.get("cluster") or {}
    before = cluster.get("leader")
    # The successor named: a replica that is current, so it holds every restored message.
    current = [r["name"] for r in cluster.get("replicas", []) if r.get("current") and "name" in r]
    handover = {"placement": {"preferred": current[0]}} if current else None
    try:
        await _api(nc, f"STREAM.LEADER.STEPDOWN.{stream}", handover, stream=stream)
    except SnapshotError as exc:
        return f"its leader could not step down ({exc}): restart NATS node by node instead"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(SnapshotError):  # no leader to answer during the election
            answer = await _api(nc, f"STREAM.INFO.{stream}", None, stream=stream, timeout=1.0)
            cluster = answer.get("cluster")
            leader = (cluster or {}).get("leader")
            if leader and leader != before:
                return None
        await asyncio.sleep(0.05)  # polling the election: the server offers nothing to wait on
    return f"no new leader within {within:g} s: restart NATS node by node instead"


async def replicated(nc: NATS, stream: str, *, within: float = 60.0) -> dict[str, Any]:
    """The stream's info once it has a leader and every other replica is current and not
    lagging (at once for a single replica); ``SnapshotError`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(SnapshotError):  # no leader to answer during an election
            info = await _api(nc, f"STREAM.INFO.{stream}", None, stream=stream, timeout=2.0)
            if _all_replicas_current(info):
                return info
        if time.monotonic() >= deadline:
            raise SnapshotError(f"the replicas of {stream} did not catch up within {within:g} s")
        await asyncio.sleep(0.05)  # polling replication: the server offers nothing to wait on


def _all_replicas_current(info: dict[str, Any]) -> bool:
    if int(info.get("config", {}).get("num_replicas", 1)) < 2:
        return True
    cluster = info.get("cluster") or {}
    followers = cluster.get("replicas") or []
    expected = int(info["config"]["num_replicas"]) - 1
    return (
        bool(cluster.get("leader"))
        and len(followers) == expected
        and all(r.get("current") and not r.get("lag") for r in followers)
    )


async def compare_with_backup(nc: NATS, backup: StreamBackup) -> RestoredStream:
    """The stream as the server now holds it, and how it differs from ``backup``: its
    messages, first (unless empty) and last sequence, and (when the backup recorded one)
    chain head."""
    state = (await _api(nc, f"STREAM.INFO.{backup.stream}", None, stream=backup.stream))["state"]
    restored = {key: int(state.get(key, 0)) for key in ("messages", "first_seq", "last_seq")}
    # An empty stream's first sequence says nothing (a new one reports 0, a restored one 1).
    compared = (
        ("messages", "first_seq", "last_seq") if backup.messages else ("messages", "last_seq")
    )
    differences = [
        f"{key}: {restored[key]} restored, {int(backup.state.get(key, 0))} in the backup"
        for key in compared
        if restored[key] != int(backup.state.get(key, 0))
    ]
    head = await chain_head(nc, backup.stream, up_to=backup.last_sequence)
    if backup.chain_head is not None and head != backup.chain_head:
        differences.append(
            f"chain head: {head} restored, {backup.chain_head} in the backup "
            "(a message's subject, headers, body or time differs)"
        )
    return RestoredStream(
        stream=backup.stream,
        messages=restored["messages"],
        first_sequence=restored["first_seq"],
        last_sequence=restored["last_seq"],
        chain_head=head,
        differences=tuple(differences),
    )


# -- the JetStream API -----------------------------------------------------------------------


async def _api(
    nc: NATS,
    request: str,
    body: dict[str, Any] | None,
    *,
    stream: str,
    timeout: float = API_TIMEOUT,
) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    try:
        reply = await nc.request(f"$JS.API.{request}", payload, timeout=timeout)
    except NatsTimeoutError:
        raise SnapshotError(f"JetStream did not answer {request} in {timeout:g} s") from None
    except NoRespondersError:
        raise SnapshotError(f"JetStream is not available to answer {request}") from None
    answer = _decode(reply.data, stream)
    _raise_for_error(answer, stream)
    return answer


def _decode(data: bytes, stream: str) -> dict[str, Any]:
    try:
        answer = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SnapshotError(
            f"the server's answer about {stream} is not JSON: {data[:80]!r}"
        ) from None
    if not isinstance(answer, dict):
        raise SnapshotError(f"the server's answer about {stream} is not a JSON object")
    return answer


def _raise_for_error(answer: dict[str, Any], stream: str) -> None:
    error = answer.get("error")
    if not error:
        return
    code = error.get("err_code") if isinstance(error, dict) else None
    description = error.get("description", error) if isinstance(error, dict) else error
    if code == STREAM_NOT_FOUND:
        raise NoSuchStream(f"the server has no stream {stream}")
    if code == STREAM_EXISTS_CANNOT_RESTORE:
        raise StreamExists(f"stream {stream} exists already; it was left untouched")
    raise SnapshotError(f"the server refused ({stream}): {description}")


# -- files -----------------------------------------------------------------------------------


def _write_json(path: Path, value: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as out:
        json.dump(value, out, indent=2, ensure_ascii=False)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _server_of(nc: NATS) -> dict[str, str]:
    info = getattr(nc, "_server_info", None) or {}
    return {key: str(info[key]) for key in ("server_name", "version", "cluster") if key in info}
