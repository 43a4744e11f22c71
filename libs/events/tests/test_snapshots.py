"""Backing a stream up and restoring it into another server, through JetStream's snapshot
API (``agora_events.snapshots``), on real nats-servers: the test session's as the source,
a new one with its own store as the target."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from agora_events.audit import export_log
from agora_events.connection import connect
from agora_events.contracts.agenda import RoomAdded, RoomRenamed
from agora_events.direct_get import StoredMessage, stored_messages
from agora_events.nats_server import EmbeddedNats
from agora_events.projections.source import PullReader
from agora_events.snapshots import (
    DATA_FILE,
    METADATA_FILE,
    BackupUnusable,
    NoSuchStream,
    SnapshotError,
    StreamExists,
    back_up_stream,
    read_backup,
    restore_stream,
    snapshot_stream,
    stream_exists,
)
from agora_events.store import EventStore, Expected, Metadata

EDITION = "unpsf-2025"
ROOMS = [("registan", "Registan Hall"), ("navoi", "Navoi Hall"), ("ulugbek", "Ulugbek Hall")]


@pytest.fixture
def target_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A second nats-server with a store of its own: where a lost stream comes back."""
    with EmbeddedNats(tmp_path / "restored-store") as server:
        yield server


@pytest.fixture
async def target(target_server: EmbeddedNats) -> AsyncIterator[NATS]:
    nc = await connect(target_server.url, name="agora-tests-target")
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture
async def agenda_log(event_store: EventStore) -> int:
    """Rooms added and renamed through the event store, each with its idempotency key and
    metadata, as a command would append them. Returns the last sequence."""
    last = 0
    for room_id, name in ROOMS:
        scope = f"agenda.room.{room_id}.*"
        added = RoomAdded(room_id=room_id, edition_id=EDITION, name=name, capacity=120)
        result = await event_store.append(
            [added],
            expected=Expected(scope),
            idempotency_key=f"add-{room_id}",
            metadata=Metadata(actor="organiser", correlation_id=f"corr-{room_id}"),
        )
        renamed = RoomRenamed(
            room_id=room_id, edition_id=EDITION, old_name=name, new_name=f"{name} (main)"
        )
        result = await event_store.append(
            [renamed], expected=Expected(scope, last_sequence=result.last_sequence, count=1)
        )
        last = result.last_sequence
    return last


async def messages_of(nc: NATS, stream: str) -> list[StoredMessage]:
    async with aclosing(stored_messages(nc, stream)) as messages:
        return [message async for message in messages]


async def test_a_restored_stream_keeps_every_sequence_subject_header_and_body(
    nats_client: NATS, agenda_log: int, target: NATS, tmp_path: Path
) -> None:
    folder = tmp_path / "night" / "AGENDA"
    backup = await back_up_stream(nats_client, "AGENDA", folder)
    assert sorted(path.name for path in folder.iterdir()) == [METADATA_FILE, DATA_FILE]
    metadata = json.loads((folder / METADATA_FILE).read_text())
    assert metadata["config"]["name"] == "AGENDA" and metadata["state"]["last_seq"] == agenda_log
    data = (folder / DATA_FILE).read_bytes()
    assert metadata["agora"]["sha256"] == hashlib.sha256(data).hexdigest()
    export = io.StringIO()
    assert backup.chain_head == (await export_log(nats_client, "AGENDA", export)).head

    restored = await restore_stream(target, folder)

    assert restored.matches, restored.differences
    assert (restored.messages, restored.first_sequence, restored.last_sequence) == (
        2 * len(ROOMS),
        1,
        agenda_log,
    )
    assert restored.chain_head == backup.chain_head
    original = await messages_of(nats_client, "AGENDA")
    assert await messages_of(target, "AGENDA") == original
    assert all(message.headers.get("ce-actor") for message in original[::2])


async def test_appends_to_a_restored_stream_continue_at_the_next_sequence(
    nats_client: NATS, agenda_log: int, target: NATS, tmp_path: Path
) -> None:
    await back_up_stream(nats_client, "AGENDA", tmp_path / "AGENDA")
    await restore_stream(target, tmp_path / "AGENDA")
    store = EventStore(target, source="/agora-test")
    room_id, name = ROOMS[0]
    history = await store.read(f"agenda.room.{room_id}.*")
    assert [event.sequence for event in history] == [1, 2]

    moved = RoomRenamed(room_id=room_id, edition_id=EDITION, old_name=name, new_name="Plenary")
    scope = f"agenda.room.{room_id}.*"
    result = await store.append(
        [moved], expected=Expected(scope, last_sequence=history.last_sequence, count=2)
    )

    assert result.last_sequence == agenda_log + 1


async def retry_first_room(nc: NATS) -> bool:
    """The first room's command sent again with its idempotency key: whether JetStream
    recognised it as a duplicate (and stored nothing)."""
    room_id, name = ROOMS[0]
    store = EventStore(nc, source="/agora-test")
    again = RoomAdded(room_id=room_id, edition_id=EDITION, name=name, capacity=120)
    return (await store.append([again], expected=None, idempotency_key=f"add-{room_id}")).duplicate


async def test_a_restored_stream_knows_its_duplicates_again_once_its_server_restarts(
    nats_client: NATS, agenda_log: int, target_server: EmbeddedNats, tmp_path: Path
) -> None:
    """A single nats-server (2.15) loads a restored stream's duplicate window only when it
    recovers the stream, which the restore says (docs/operations.md). This pins both halves,
    so a server that behaves otherwise shows up here and in the runbook. (A replicated
    stream's is loaded by the restore: tests/test_stream_backup_job.py.)"""
    await back_up_stream(nats_client, "AGENDA", tmp_path / "AGENDA")
    for attempt in ("right after the restore", "after a restart"):
        target_server.stop()
        shutil.rmtree(target_server.store_dir)
        target_server.start()
        nc = await connect(target_server.url, name="agora-tests-target")
        try:
            restored = await restore_stream(nc, tmp_path / "AGENDA")
            assert restored.duplicates_note and "restart it" in restored.duplicates_note
            if attempt == "after a restart":
                await nc.close()
                target_server.stop()
                target_server.start()
                nc = await connect(target_server.url, name="agora-tests-target")
            duplicate = await retry_first_room(nc)
        finally:
            await nc.close()
        assert duplicate == (attempt == "after a restart"), attempt


async def test_a_projection_resuming_from_its_checkpoint_on_the_restored_stream_sees_no_gap(
    nats_client: NATS, agenda_log: int, target: NATS, tmp_path: Path
) -> None:
    checkpoint = agenda_log - 2  # a read model that had applied all but the last two events
    await back_up_stream(nats_client, "AGENDA", tmp_path / "AGENDA")
    await restore_stream(target, tmp_path / "AGENDA")
    store = EventStore(target, source="/agora-test")
    added = RoomAdded(room_id="amir-temur", edition_id=EDITION, name="Amir Temur", capacity=40)
    appended = await store.append([added], expected=Expected("agenda.room.amir-temur.*"))

    reader = await PullReader.open(target, "AGENDA", ["agenda.>"], after=checkpoint)
    try:
        deliveries = await reader.fetch(100, wait=None)
    finally:
        await reader.close()

    assert [d.sequence for d in deliveries] == list(
        range(checkpoint + 1, appended.last_sequence + 1)
    )


async def test_the_snapshot_waits_for_each_acknowledgement_when_the_window_is_one_chunk(
    nats_client: NATS, agenda_log: int, target: NATS, tmp_path: Path
) -> None:
    store = EventStore(nats_client, source="/agora-test")
    for number in range(150):  # some kilobytes of snapshot: many chunks of 1 KiB
        room = RoomAdded(room_id=f"r{number}", edition_id=EDITION, name=f"R{number}", capacity=9)
        await store.append([room], expected=None)
    small = io.BytesIO()
    answer, digest, size = await snapshot_stream(
        nats_client, "AGENDA", small, chunk_size=1024, window_size=1024
    )
    assert size > 8 * 1024, "enough chunks for the flow control to matter"
    assert digest == hashlib.sha256(small.getvalue()).hexdigest()
    assert answer["state"]["last_seq"] == agenda_log + 150
    folder = tmp_path / "AGENDA"
    await back_up_stream(nats_client, "AGENDA", folder)
    (folder / DATA_FILE).write_bytes(small.getvalue())  # the same snapshot, in small chunks
    _record_checksum(folder)

    restored = await restore_stream(target, folder)

    assert restored.matches, restored.differences
    assert await messages_of(target, "AGENDA") == await messages_of(nats_client, "AGENDA")


async def test_a_backup_of_three_replicas_restores_on_a_single_server_with_one(
    nats_client: NATS, agenda_log: int, target: NATS, tmp_path: Path
) -> None:
    folder = tmp_path / "AGENDA"
    await back_up_stream(nats_client, "AGENDA", folder)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    metadata["config"]["num_replicas"] = 3  # as the production cluster's backups have it
    (folder / METADATA_FILE).write_text(json.dumps(metadata))

    with pytest.raises(SnapshotError, match=r"replicas > 1 not supported.*no stream AGENDA was"):
        await restore_stream(target, folder)
    restored = await restore_stream(target, folder, replicas=1)

    assert restored.matches, restored.differences
    assert (await target.jetstream().stream_info("AGENDA")).config.num_replicas == 1


async def test_restoring_a_stream_that_exists_is_refused_and_leaves_it_untouched(
    nats_client: NATS, agenda_log: int, tmp_path: Path
) -> None:
    await back_up_stream(nats_client, "AGENDA", tmp_path / "AGENDA")
    store = EventStore(nats_client, source="/agora-test")
    added = RoomAdded(room_id="later", edition_id=EDITION, name="Later Hall", capacity=10)
    await store.append([added], expected=None)  # the stream moved on since the backup
    before = await messages_of(nats_client, "AGENDA")

    with pytest.raises(StreamExists, match="exists already; it was left untouched"):
        await restore_stream(nats_client, tmp_path / "AGENDA")

    assert await messages_of(nats_client, "AGENDA") == before
    assert len(before) == agenda_log + 1


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("flip a byte", "is not the data backup.json describes"),
        ("cut it short", "is not the data backup.json describes"),
        ("remove the data", "holds no stream.tar.s2"),
        ("remove the metadata", "holds no backup.json: it is not a backup"),
        ("garble the metadata", "backup.json is not JSON"),
        ("drop the checksum", "records no checksum of the data"),
    ],
)
async def test_a_damaged_backup_is_refused_before_anything_is_created(
    nats_client: NATS,
    agenda_log: int,
    target: NATS,
    tmp_path: Path,
    damage: str,
    reason: str,
) -> None:
    folder = tmp_path / "AGENDA"
    await back_up_stream(nats_client, "AGENDA", folder)
    data, metadata = folder / DATA_FILE, folder / METADATA_FILE
    content = data.read_bytes()
    if damage == "flip a byte":
        middle = len(content) // 2
        data.write_bytes(content[:middle] + bytes([content[middle] ^ 1]) + content[middle + 1 :])
    elif damage == "cut it short":
        data.write_bytes(content[: len(content) // 2])
    elif damage == "remove the data":
        data.unlink()
    elif damage == "remove the metadata":
        metadata.unlink()
    elif damage == "garble the metadata":
        metadata.write_text(metadata.read_text()[:-40])
    else:
        recorded = json.loads(metadata.read_text())
        del recorded["agora"]
        metadata.write_text(json.dumps(recorded))

    with pytest.raises(BackupUnusable, match=reason):
        await restore_stream(target, folder)

    assert not await stream_exists(target, "AGENDA")


async def test_a_restore_the_server_fails_leaves_no_partial_stream(
    nats_client: NATS, agenda_log: int, target: NATS, tmp_path: Path
) -> None:
    """Data the checksum vouches for but the server cannot read (a backup written wrongly,
    say): the server refuses it, and no stream remains."""
    folder = tmp_path / "AGENDA"
    await back_up_stream(nats_client, "AGENDA", folder)
    content = (folder / DATA_FILE).read_bytes()
    (folder / DATA_FILE).write_bytes(content[:64] + bytes(len(content) - 64))
    _record_checksum(folder)

    with pytest.raises(SnapshotError, match="no stream AGENDA was created"):
        await restore_stream(target, folder)

    assert not await stream_exists(target, "AGENDA")


async def test_backing_up_a_stream_the_server_does_not_have_is_a_clear_error(
    nats_client: NATS, tmp_path: Path
) -> None:
    with pytest.raises(NoSuchStream, match="the server has no stream CATERING"):
        await back_up_stream(nats_client, "CATERING", tmp_path / "night" / "CATERING")
    assert not (tmp_path / "night").exists() or not list((tmp_path / "night").iterdir())


async def test_a_backup_never_overwrites_a_folder(
    nats_client: NATS, agenda_log: int, tmp_path: Path
) -> None:
    folder = tmp_path / "AGENDA"
    first = await back_up_stream(nats_client, "AGENDA", folder)
    with pytest.raises(SnapshotError, match="exists already; a backup goes into a new folder"):
        await back_up_stream(nats_client, "AGENDA", folder)
    assert read_backup(folder) == first
    assert sorted(path.name for path in tmp_path.iterdir()) == ["AGENDA"]  # noqa: ASYNC240


def _record_checksum(folder: Path) -> None:
    """Make ``backup.json`` vouch for whatever the data file now holds."""
    metadata = json.loads((folder / METADATA_FILE).read_text())
    content = (folder / DATA_FILE).read_bytes()
    metadata["agora"] |= {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
