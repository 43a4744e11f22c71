"""``agora read-models list|prune`` against a real PostgreSQL database of the test's own.

The service is a stand-in written to a temporary module (one projection, settings from the
environment). Releases are schemas prepared by the kernel; a replica's use of one is the row
its ``Heartbeat`` writes, stamped by an injected clock, so "an hour ago" needs no waiting."""

from __future__ import annotations

import asyncio
import importlib
import os
import textwrap
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import nats
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from agora_cli import services
from agora_cli.main import main
from agora_events.contracts.agenda import RoomAdded
from agora_events.projections.bookkeeping import utcnow
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.heartbeat import Heartbeat
from agora_events.projections.lease import Lease
from agora_events.projections.releases import release_schema
from agora_events.store import EventStore

POSTGRES_ENV = "AGORA_TEST_POSTGRES_URL"
OLD = "rooms_rm_0123456789ab"  # a release before this one

FAKE_SERVICE = textwrap.dedent(
    """
    import os
    from dataclasses import dataclass

    from sqlalchemy import Column, MetaData, String, Table, insert

    from agora_events.contracts.agenda import RoomAdded
    from agora_events.projections import Projection

    metadata = MetaData()
    rooms = Table("fake_rooms", metadata, Column("room_id", String(64), primary_key=True))
    room_list = Projection("room_list", subjects=["agenda.room.>"], metadata=metadata)

    @room_list.on(RoomAdded)
    async def _added(db, event, ctx):
        await db.execute(insert(rooms).values(room_id=event.room_id))

    @dataclass
    class Settings:
        database_url: str
        nats_url: str
        env: str = "production"

    def load_settings():
        return Settings(os.environ["FAKE_DATABASE_URL"], os.environ["FAKE_NATS_URL"])

    def projections():
        return [room_list]
    """
)


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def database_url() -> Iterator[str]:
    """A database of its own on the test server, as a service's is in production: prune
    looks at every schema in it."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"read-model releases are PostgreSQL schemas: set {POSTGRES_ENV}")
    name = f"agora_prune_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def install_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, nats_url: str
) -> ModuleType:
    name = f"fake_rooms_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FAKE_SERVICE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(services, "SERVICES", (services.ServiceEntry("rooms", name, 0),))
    monkeypatch.setenv("FAKE_DATABASE_URL", database_url)
    monkeypatch.setenv("FAKE_NATS_URL", nats_url)
    return importlib.import_module(name)


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> ModuleType:
    """The stand-in service on the test's database; NATS nowhere (prune needs none)."""
    return install_service(tmp_path, monkeypatch, database_url, "nats://127.0.0.1:1")


def current_schema(service: ModuleType, database_url: str) -> str:
    return release_schema("rooms", database_url, service.projections())


def release(
    url: str,
    schema: str,
    service: ModuleType,
    *,
    seen_ago: timedelta | None = None,
    instance: str = "rooms-5d8f-old/1",
    heartbeats: bool = True,
) -> None:
    """Prepare a release's read models in ``schema``; with ``seen_ago``, a replica of it
    started and stopped that long ago; without ``heartbeats``, as a release from before
    replicas recorded themselves left it."""

    async def go() -> None:
        db = ReadModelDatabase(url, schema=schema)
        try:
            await db.prepare(service.projections())
            if not heartbeats:
                async with db.engine.begin() as connection:
                    await connection.execute(text("DROP TABLE agora_replicas"))
            if seen_ago is not None:
                moment = utcnow() - seen_ago
                heartbeat = Heartbeat(db, instance=instance, clock=lambda: moment)
                await heartbeat.start()
                await heartbeat.stop()
        finally:
            await db.dispose()

    asyncio.run(go())


def schemas(url: str) -> dict[str, int]:
    """Every schema of the database but PostgreSQL's own → how many tables it holds."""

    async def go() -> dict[str, int]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text(
                        "SELECT n.nspname, count(t.tablename) FROM pg_namespace n "
                        "LEFT JOIN pg_tables t ON t.schemaname = n.nspname "
                        "WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' "
                        "GROUP BY n.nspname"
                    )
                )
                return {name: int(count) for name, count in rows}
        finally:
            await engine.dispose()

    return asyncio.run(go())


def make_schema(url: str, name: str, *, with_table: bool = True) -> None:
    statement = f'CREATE SCHEMA "{name}"'
    if with_table:
        statement += f'; CREATE TABLE "{name}".kept (id int)'

    async def go() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                for part in statement.split("; "):
                    await connection.execute(text(part))
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_prune_drops_an_old_release_idle_past_the_grace_and_keeps_this_releases_schema(
    service: ModuleType, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    current = current_schema(service, database_url)
    release(database_url, current, service, seen_ago=timedelta(seconds=5), instance="rooms-new/1")
    release(database_url, OLD, service, seen_ago=timedelta(hours=3))

    assert main(["read-models", "prune", "rooms", "--yes"]) == 0

    out = capsys.readouterr().out
    assert f"keeping {current}: this release's schema" in out
    assert f"dropped {OLD}: replica rooms-5d8f-old/1 was seen 3 h ago" in out
    left = schemas(database_url)
    assert OLD not in left
    assert left[current] > 0  # with its tables


def test_prune_refuses_an_old_release_a_replica_was_seen_in_within_the_grace(
    service: ModuleType, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    release(database_url, OLD, service, seen_ago=timedelta(minutes=10))
    before = schemas(database_url)

    assert main(["read-models", "prune", "rooms", "--yes"]) == 1

    out = capsys.readouterr().out
    assert (
        f"refusing to drop {OLD}: replica rooms-5d8f-old/1 was seen 10 min ago, within 1 h" in out
    )
    assert schemas(database_url) == before  # intact, every table of it

    assert main(["read-models", "prune", "rooms", "--keep-last-seen-within", "5m", "--yes"]) == 0
    assert f"dropped {OLD}" in capsys.readouterr().out
    assert OLD not in schemas(database_url)


def test_prune_refuses_an_old_release_a_running_process_projects_into(
    service: ModuleType, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A replica of a release from before heartbeats: no agora_replicas, but its projection
    # loop holds its lease.
    release(database_url, OLD, service, heartbeats=False)

    async def prune_while_the_lease_is_held() -> None:
        db = ReadModelDatabase(database_url, schema=OLD)
        lease = Lease(db, "room_list", "AGENDA")
        try:
            assert await lease.acquire()
            code = await asyncio.to_thread(
                main, ["read-models", "prune", "rooms", "--keep-last-seen-within", "0s", "--yes"]
            )
            assert code == 1
        finally:
            await lease.release()
            await db.dispose()

    asyncio.run(prune_while_the_lease_is_held())
    out = capsys.readouterr().out
    assert f"refusing to drop {OLD}: a running process projects into it now (room_list/AGENDA)" in (
        out
    )
    assert OLD in schemas(database_url)


def test_a_dry_run_says_what_it_would_drop_and_drops_nothing(
    service: ModuleType, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    release(database_url, OLD, service, seen_ago=timedelta(days=2))
    before = schemas(database_url)

    assert main(["read-models", "prune", "rooms", "--dry-run", "--yes"]) == 0

    assert f"would drop {OLD}: replica rooms-5d8f-old/1 was seen 2 d ago" in (
        capsys.readouterr().out
    )
    assert schemas(database_url) == before


def test_prune_without_yes_only_says_what_it_would_drop_and_exits_with_2(
    service: ModuleType, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    release(database_url, OLD, service, seen_ago=timedelta(hours=2))

    assert main(["read-models", "prune", "rooms"]) == 2

    captured = capsys.readouterr()
    assert f"would drop {OLD}" in captured.out
    assert "Run 'agora read-models prune rooms --yes' to do it" in captured.err
    assert OLD in schemas(database_url)


def test_prune_never_touches_another_services_schema_or_one_outside_the_release_naming(
    service: ModuleType, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    others = [
        "agenda_rm_0123456789ab",  # another service's release
        "roomsx_rm_0123456789ab",  # a service whose name begins with this one's
        "rooms_rm_backup",  # a name an operator chose
        f"{OLD}_rebuild_room_list",  # a rebuild's scratch copy
        "rooms",
    ]
    for name in others:
        make_schema(database_url, name)
    release(database_url, OLD, service, seen_ago=timedelta(hours=5))
    before = schemas(database_url)

    assert main(["read-models", "prune", "rooms", "--yes"]) == 0

    assert capsys.readouterr().out.count("dropped ") == 1
    after = schemas(database_url)
    assert set(before) - set(after) == {OLD}
    assert all(after[name] == before[name] == 1 for name in others)
    assert after["public"] == before["public"]


def test_an_old_release_made_before_heartbeats_goes_by_its_last_write(
    service: ModuleType, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    release(database_url, OLD, service, heartbeats=False)  # prepared just now

    assert main(["read-models", "prune", "rooms", "--yes"]) == 1
    assert "no replica recorded itself in it; its read models were written just now" in (
        capsys.readouterr().out
    )
    assert OLD in schemas(database_url)


def test_list_shows_each_release_schema_its_last_use_and_its_checkpoints_against_the_stream(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    nats_url: str,
    nats_client: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = install_service(tmp_path, monkeypatch, database_url, nats_url)
    current = current_schema(service, database_url)
    release(database_url, current, service, seen_ago=timedelta(seconds=5), instance="rooms-new/1")
    release(database_url, OLD, service, seen_ago=timedelta(hours=3))
    make_schema(database_url, "agenda_rm_0123456789ab")

    async def append() -> None:
        nc = await nats.connect(nats_url)
        store = EventStore(nc, source="/test")
        room = RoomAdded(room_id="hall-a", edition_id="unpsf-2025", name="Hall A", capacity=9)
        await store.append([room], expected=None)
        await nc.close()

    asyncio.run(append())

    assert main(["read-models", "list", "rooms"]) == 0

    out = capsys.readouterr().out
    assert "rooms: 2 release schema(s)" in out
    assert f"{current}  (this release)" in out
    assert "by rooms-new/1, stopped" in out
    assert f"{OLD}\n" in out
    assert "3 h ago) by rooms-5d8f-old/1" in out
    assert out.count("room_list AGENDA: checkpoint 0 of 1") == 2
    assert "agenda_rm_" not in out


def test_list_without_nats_still_shows_the_checkpoints(
    service: ModuleType, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    release(database_url, OLD, service, heartbeats=False)

    assert main(["read-models", "list", "rooms"]) == 0

    captured = capsys.readouterr()
    assert "showing checkpoints without the streams' ends" in captured.err
    assert "room_list AGENDA: checkpoint 0\n" in captured.out
    assert "last used: unknown (made before replicas recorded themselves)" in captured.out
    assert "this release's schema rooms_rm_" in captured.out  # not started yet


def test_a_service_on_sqlite_has_nothing_to_prune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_service(tmp_path, monkeypatch, f"sqlite+aiosqlite:///{tmp_path}/rooms.db", "nats://x")

    assert main(["read-models", "prune", "rooms", "--yes"]) == 0

    assert "nothing to prune: rooms keeps its read models in the SQLite file" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["read-models", "prune", "catering"], "no service named 'catering'; known services"),
        (
            ["read-models", "list", "rooms"],
            "cannot reach the database of rooms, postgresql+asyncpg://postgres@127.0.0.1:1/agora",
        ),
    ],
)
def test_an_unknown_service_or_an_unreachable_database_is_a_clear_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/agora"
    install_service(tmp_path, monkeypatch, unreachable, "nats://127.0.0.1:1")

    assert main(argv) in (1, 2)

    assert message in capsys.readouterr().err


def test_a_duration_the_cli_cannot_read_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["read-models", "prune", "rooms", "--keep-last-seen-within", "an hour"])
    assert exited.value.code == 2
    assert "cannot read 'an hour' as a duration" in capsys.readouterr().err
