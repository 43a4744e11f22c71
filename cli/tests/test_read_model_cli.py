"""``agora replay`` and ``agora dead-letters`` against a real nats-server and SQLite files.

The service is a stand-in written to a temporary module: one projection of the agenda's real
room events, and settings read from the environment."""

from __future__ import annotations

import asyncio
import importlib
import textwrap
import uuid
from pathlib import Path
from types import ModuleType

import nats
import pytest
from sqlalchemy import text

from agora_cli import services
from agora_cli.main import main
from agora_events.contracts.agenda import RoomAdded, RoomRenamed
from agora_events.nats_server import free_port
from agora_events.projections.database import ReadModelDatabase
from agora_events.store import EventStore

FAKE_SERVICE = textwrap.dedent(
    """
    import os
    from dataclasses import dataclass

    from sqlalchemy import Column, Integer, MetaData, String, Table, insert, update

    from agora_events.contracts.agenda import RoomAdded, RoomRenamed
    from agora_events.projections import Projection

    metadata = MetaData()
    rooms = Table(
        "fake_rooms",
        metadata,
        Column("room_id", String(64), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("capacity", Integer, nullable=False),
    )
    EXTRA_COLUMN = os.environ.get("FAKE_EXTRA_COLUMN")
    if EXTRA_COLUMN:
        rooms.append_column(Column(EXTRA_COLUMN, String(20)))
    room_list = Projection("room_list", subjects=["agenda.room.>"], metadata=metadata)
    BROKEN = set()  # room names the handler fails on, until a test "deploys the fix"

    @room_list.on(RoomAdded)
    async def _added(db, event, ctx):
        if event.name in BROKEN:
            raise ValueError(f"cannot list room {event.name!r}")
        await db.execute(
            insert(rooms).values(room_id=event.room_id, name=event.name, capacity=event.capacity)
        )

    @room_list.on(RoomRenamed)
    async def _renamed(db, event, ctx):
        await db.execute(
            update(rooms).where(rooms.c.room_id == event.room_id).values(name=event.new_name)
        )

    @dataclass
    class Settings:
        database_url: str
        nats_url: str

    def load_settings():
        return Settings(os.environ["FAKE_DATABASE_URL"], os.environ["FAKE_NATS_URL"])

    def projections():
        return [room_list]
    """
)


@pytest.fixture
def service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nats_url: str, nats_client: object
) -> ModuleType:
    """A fake 'rooms' service whose database is a SQLite file in tmp_path (fresh streams)."""
    name = f"fake_rooms_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FAKE_SERVICE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(services, "SERVICES", (services.ServiceEntry("rooms", name, 0),))
    monkeypatch.setenv("FAKE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/rooms.db")
    monkeypatch.setenv("FAKE_NATS_URL", nats_url)
    return importlib.import_module(name)


def live_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/rooms.db"


def append_rooms(nats_url: str, *events: RoomAdded | RoomRenamed) -> list[int]:
    async def go() -> list[int]:
        nc = await nats.connect(nats_url)
        store = EventStore(nc, source="/test")
        sequences = [(await store.append([e], expected=None)).last_sequence for e in events]
        await nc.close()
        return sequences

    return asyncio.run(go())


def prepare(url: str, module: ModuleType) -> None:
    async def go() -> None:
        db = ReadModelDatabase(url)
        await db.prepare(module.projections())
        await db.dispose()

    asyncio.run(go())


def room_names(url: str) -> list[str]:
    async def go() -> list[str]:
        db = ReadModelDatabase(url)
        async with db.session() as session:
            names = list((await session.scalars(text("SELECT name FROM fake_rooms"))).all())
        await db.dispose()
        return sorted(names)

    return asyncio.run(go())


def room(room_id: str, name: str) -> RoomAdded:
    return RoomAdded(room_id=room_id, edition_id="unpsf-2025", name=name, capacity=100)


def test_replay_rebuilds_each_projection_and_swaps_it_into_the_service_database(
    service: ModuleType, tmp_path: Path, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(live_url(tmp_path), service)
    append_rooms(nats_url, room("hall-a", "Hall A"), room("hall-b", "Hall B"))
    assert main(["replay", "rooms"]) == 0
    captured = capsys.readouterr()
    assert "room_list: rebuilt from the log and swapped into" in captured.out
    assert "AGENDA up to 2" in captured.out
    assert "events" in captured.err and "/s" in captured.err  # the progress bar
    assert room_names(live_url(tmp_path)) == ["Hall A", "Hall B"]


def test_replay_until_a_sequence_writes_the_past_into_another_database(
    service: ModuleType, tmp_path: Path, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sequences = append_rooms(
        nats_url,
        room("hall-a", "Hall A"),
        RoomRenamed(
            room_id="hall-a", edition_id="unpsf-2025", old_name="Hall A", new_name="Plenary"
        ),
    )
    audit = f"sqlite+aiosqlite:///{tmp_path}/audit.db"
    until = str(sequences[0])
    assert main(["replay", "rooms", "--until", until, "--database", audit]) == 0
    assert (
        f"up to sequence {sequences[0]} (until sequence {sequences[0]})" in capsys.readouterr().out
    )
    assert room_names(audit) == ["Hall A"]
    assert not (tmp_path / "rooms.db").exists()  # the live database was never touched


def test_replay_refuses_to_take_the_live_database_back_in_time(
    service: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", "rooms", "--until", "5", "--database", live_url(tmp_path)])
    assert code == 2
    assert "refusing to replay the live database back in time" in capsys.readouterr().err


def test_replay_refuses_a_live_database_prepared_by_another_release(
    service: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prepare(live_url(tmp_path), service)
    monkeypatch.setenv("FAKE_EXTRA_COLUMN", "note")
    importlib.reload(service)  # this "release" declares one more column
    assert main(["replay", "rooms"]) == 2
    assert "holds another version of it" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "catering"], "no service named 'catering'; known services: rooms"),
        (
            ["replay", "rooms", "--projection", "seating"],
            "service 'rooms' has no projection 'seating'; its projections: room_list",
        ),
        (["replay", "rooms", "--until", "last tuesday"], "--until: cannot read 'last tuesday'"),
        (["replay", "rooms", "--until", "2025-06-24T12:00"], "has no time zone"),
        (["dead-letters", "list", "catering"], "no service named 'catering'"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_exit_code_2(
    service: ModuleType, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_nats_server_is_a_clear_error(
    service: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    assert main(["replay", "rooms", "--nats-url", url]) == 2
    assert f"cannot reach NATS at {url}" in capsys.readouterr().err


def test_dead_letters_are_listed_and_a_retry_after_the_fix_applies_them(
    service: ModuleType, tmp_path: Path, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(live_url(tmp_path), service)
    service.BROKEN.add("Hall B")
    sequences = append_rooms(nats_url, room("hall-a", "Hall A"), room("hall-b", "Hall B"))
    assert main(["replay", "rooms"]) == 0
    assert "1 parked" in capsys.readouterr().out

    assert main(["dead-letters", "list", "rooms"]) == 0
    listing = capsys.readouterr().out
    assert f"room_list AGENDA seq {sequences[1]} agenda.room.hall-b.added [failed" in listing
    assert "ValueError: cannot list room 'Hall B'" in listing

    assert main(["dead-letters", "retry", "rooms"]) == 1
    assert "still failing" in capsys.readouterr().out

    service.BROKEN.clear()
    assert main(["dead-letters", "retry", "rooms"]) == 0
    assert "1 parked event(s) applied" in capsys.readouterr().out
    assert room_names(live_url(tmp_path)) == ["Hall A", "Hall B"]
    assert main(["dead-letters", "list", "rooms"]) == 0
    assert "no dead letters" in capsys.readouterr().out


def test_retrying_an_unknown_dead_letter_is_refused(
    service: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(live_url(tmp_path), service)
    assert main(["dead-letters", "retry", "rooms", "--id", "42"]) == 2
    assert "no dead letter with id 42" in capsys.readouterr().err


def test_dead_letters_of_a_database_the_service_never_prepared_are_a_clear_error(
    service: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dead-letters", "list", "rooms"]) == 2
    assert "holds no read models yet" in capsys.readouterr().err
