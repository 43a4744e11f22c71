"""``agora streams backup|restore`` against real nats-servers, and the runbook's restore
(docs/operations.md, "Backups and restore") followed step by step."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agora_cli.main import main
from agora_events.connection import connect
from agora_events.contracts.agenda import RoomAdded
from agora_events.nats_server import EmbeddedNats
from agora_events.store import EventStore, Expected

STREAMS = ("REGISTRATION", "AGENDA", "DECLARATIONS", "NOTIFICATIONS")


async def _append_rooms(url: str, count: int) -> int:
    nc = await connect(url, name="agora-tests")
    try:
        store = EventStore(nc, source="/agora-test")
        last = 0
        for number in range(1, count + 1):
            room = RoomAdded(
                room_id=f"room-{number}",
                edition_id="unpsf-2025",
                name=f"Room {number}",
                capacity=80,
            )
            scope = f"agenda.room.room-{number}.*"
            last = (await store.append([room], expected=Expected(scope))).last_sequence
        return last
    finally:
        await nc.close()


async def _delete_stream(url: str, stream: str) -> None:
    """What ``nats stream rm`` does: the loss the runbook recovers from."""
    nc = await connect(url, name="agora-tests")
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@pytest.fixture
def agenda_events(nats_url: str, nats_client: object) -> int:
    """Fresh streams, AGENDA holding a few rooms; the last sequence."""
    return asyncio.run(_append_rooms(nats_url, 5))


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(tmp_path / "new-store") as server:
        yield server


def head_of(err: str) -> str:
    return next(line.split()[1] for line in err.splitlines() if line.startswith("head "))


def test_the_runbooks_restore_brings_a_lost_stream_back_as_it_was(
    nats_url: str, agenda_events: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every night: the CronJob's command.
    night = tmp_path / "backup" / "2025-06-24"
    assert main(["streams", "--nats-url", nats_url, "backup", str(night)]) == 0
    out = capsys.readouterr().out
    for stream in STREAMS:
        assert f"{stream:<14} backed up to {night / stream}" in out
    assert f"5 messages (sequences 1-{agenda_events})" in out
    # An audit export, kept with its head.
    export = tmp_path / "agenda.jsonl"
    assert main(["audit", "--nats-url", nats_url, "export", "agenda", "-o", str(export)]) == 0
    head = head_of(capsys.readouterr().err)
    assert f"chain head {head}" in out, "the backup records the head an export prints"

    asyncio.run(_delete_stream(nats_url, "AGENDA"))  # the loss

    # Step 2: restore the lost stream from the night's folder.
    restore = ["streams", "--nats-url", nats_url, "restore", str(night), "--stream", "AGENDA"]
    assert main(restore) == 0
    out = capsys.readouterr().out
    assert f"AGENDA         restored: 5 messages (sequences 1-{agenda_events})" in out
    assert f"chain head {head}" in out
    assert "matches the backup's messages, sequences and chain head" in out
    # Step 4: check it, and an export against it.
    assert main(["streams", "--nats-url", nats_url, "info"]) == 0
    (agenda,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("AGENDA")]
    messages, _bytes, first, last = agenda.split()[2:]
    assert (messages, first, last) == ("5", "1", str(agenda_events))
    verify = ["audit", "--nats-url", nats_url, "verify", str(export), "--head", head]
    assert main([*verify, "--against-stream"]) == 0
    assert "intact: 5 messages of AGENDA and matches the live stream" in capsys.readouterr().out
    # Running the restore again changes nothing.
    assert main(restore) == 2
    assert "stream AGENDA exists already; it was left untouched" in capsys.readouterr().err


def test_a_whole_night_restores_into_a_new_server(
    nats_url: str,
    agenda_events: int,
    new_server: EmbeddedNats,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    night = tmp_path / "night"
    assert main(["streams", "--nats-url", nats_url, "backup", str(night)]) == 0
    capsys.readouterr()

    assert main(["streams", "--nats-url", new_server.url, "restore", str(night)]) == 0

    out = capsys.readouterr().out
    for stream in STREAMS:
        assert f"{stream:<14} restored:" in out
    assert out.count("matches the backup") == len(STREAMS)
    assert main(["streams", "--nats-url", new_server.url, "init"]) == 0  # nothing drifted
    assert capsys.readouterr().out.count("unchanged") == len(STREAMS)


def test_one_streams_folder_restores_as_nats_stream_restore_takes_it(
    nats_url: str,
    agenda_events: int,
    new_server: EmbeddedNats,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    night = tmp_path / "night"
    backup = ["streams", "--nats-url", nats_url, "backup", str(night), "--stream", "AGENDA"]
    assert main(backup) == 0
    assert sorted(path.name for path in night.iterdir()) == ["AGENDA"]
    assert sorted(path.name for path in (night / "AGENDA").iterdir()) == [
        "backup.json",
        "stream.tar.s2",
    ]

    assert main(["streams", "--nats-url", new_server.url, "restore", str(night / "AGENDA")]) == 0
    assert "AGENDA         restored: 5 messages" in capsys.readouterr().out


def test_a_corrupted_backup_is_refused_with_exit_2_and_nothing_is_created(
    nats_url: str,
    agenda_events: int,
    new_server: EmbeddedNats,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    night = tmp_path / "night"
    assert (
        main(["streams", "--nats-url", nats_url, "backup", str(night), "--stream", "AGENDA"]) == 0
    )
    data = night / "AGENDA" / "stream.tar.s2"
    data.write_bytes(data.read_bytes()[:-1])  # cut short by one byte
    capsys.readouterr()

    assert main(["streams", "--nats-url", new_server.url, "restore", str(night)]) == 2

    err = capsys.readouterr().err
    assert "agora: AGENDA:" in err and "is not the data backup.json describes" in err
    assert "nothing was restored" in err
    assert main(["streams", "--nats-url", new_server.url, "info"]) == 1  # holds no stream


def test_a_folder_without_metadata_is_refused_with_exit_2(
    nats_url: str, new_server: EmbeddedNats, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "night" / "AGENDA").mkdir(parents=True)
    command = ["streams", "--nats-url", new_server.url, "restore", str(tmp_path / "night")]
    assert main(command) == 2
    assert "holds no stream backup (<STREAM>/backup.json)" in capsys.readouterr().err
    assert main([*command, "--stream", "AGENDA"]) == 2
    assert "holds no backup.json: it is not a backup" in capsys.readouterr().err
    (tmp_path / "night" / "AGENDA" / "backup.json").write_text("{")
    assert main(command) == 2
    assert "backup.json is not JSON" in capsys.readouterr().err


def test_a_backup_of_a_stream_the_server_lacks_exits_2_and_writes_nothing_for_it(
    nats_url: str, nats_client: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_delete_stream(nats_url, "NOTIFICATIONS"))
    night = tmp_path / "night"

    assert main(["streams", "--nats-url", nats_url, "backup", str(night)]) == 2

    err = capsys.readouterr().err
    assert "agora: the server has no stream NOTIFICATIONS; nothing was written for it" in err
    assert sorted(path.name for path in night.iterdir()) == [
        "AGENDA",
        "DECLARATIONS",
        "REGISTRATION",
    ]


def test_a_stream_that_is_not_agoras_is_refused_by_name(
    nats_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["streams", "--nats-url", nats_url, "backup", str(tmp_path), "--stream", "CATERING"])
    assert exit_.value.code == 2
    assert "invalid choice: 'CATERING'" in capsys.readouterr().err


def test_a_backup_never_writes_over_an_earlier_one(
    nats_url: str, agenda_events: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["streams", "--nats-url", nats_url, "backup", str(tmp_path), "--stream", "AGENDA"]
    assert main(command) == 0
    kept = (tmp_path / "AGENDA" / "backup.json").read_bytes()
    assert main(command) == 2
    assert "exists already; a backup goes into a new folder" in capsys.readouterr().err
    assert (tmp_path / "AGENDA" / "backup.json").read_bytes() == kept


def test_the_backup_metadata_holds_what_the_restore_checks(
    nats_url: str, agenda_events: int, tmp_path: Path
) -> None:
    assert (
        main(["streams", "--nats-url", nats_url, "backup", str(tmp_path), "--stream", "AGENDA"])
        == 0
    )
    metadata = json.loads((tmp_path / "AGENDA" / "backup.json").read_text())
    data = (tmp_path / "AGENDA" / "stream.tar.s2").read_bytes()
    assert metadata["config"]["name"] == "AGENDA"
    assert metadata["config"]["subjects"] == ["agenda.>"]
    state = metadata["state"]
    assert (state["messages"], state["first_seq"], state["last_seq"]) == (5, 1, agenda_events)
    agora = metadata["agora"]
    assert agora["sha256"] == hashlib.sha256(data).hexdigest() and agora["size"] == len(data)
    assert len(agora["chain_head"]) == 64 and agora["taken_at"].endswith("Z")
