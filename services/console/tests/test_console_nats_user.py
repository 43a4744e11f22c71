"""The console under its own NATS user of deploy/base/nats.yaml, on a real nats-server: it
builds its read models and follows the live feed, and cannot append to any context."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from agora_console.live import changes
from agora_console.main import CONSOLE
from agora_console.settings import ConsoleSettings
from agora_events.contracts.agenda import EditionPlanned
from agora_events.nats_server import EmbeddedNats
from agora_events.service import running
from agora_events.store import AppendOutcomeUnknown, EventStore, Expected
from tests.test_nats_authorization import admin, connected, secured_server, streams, url

from .conftest import next_change

__all__ = ["admin", "secured_server", "streams"]  # the fixtures, shared with that module


def planned(edition_id: str) -> EditionPlanned:
    return EditionPlanned(
        edition_id=edition_id,
        name="A forum",
        host_city="Samarkand",
        host_country="UZB",
        start_date=date(2025, 6, 23),
        end_date=date(2025, 6, 25),
        time_zone="Asia/Samarkand",
    )


async def test_the_console_reads_the_streams_and_follows_the_feed_under_its_own_user(
    streams: EmbeddedNats, admin: NATS, tmp_path: Path
) -> None:
    settings = ConsoleSettings(
        nats_url=url(streams, "console"), database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db"
    )
    log = EventStore(admin, source="/agora-test")
    async with running(CONSOLE, settings) as console:
        before = (await log.append([planned("forum-a")], expected=None)).last_sequence
        await console.projections.wait_for(before, stream="AGENDA", timeout=20)
        feed = changes(console.nc, console.projections, "agenda", before)
        await anext(feed)  # subscribed to feed.agenda.>

        after = (await log.append([planned("forum-b")], expected=None)).last_sequence

        heard = await asyncio.wait_for(next_change(feed), timeout=60)
        await feed.aclose()
    assert heard == f"event: changed\ndata: {after}\n\n"


async def test_the_console_user_cannot_append_to_any_context(
    streams: EmbeddedNats, admin: NATS
) -> None:
    nc = await connected(streams, "console")
    try:
        store = EventStore(nc, timeout=0.5)
        before = (await admin.jetstream().stream_info("AGENDA")).state.messages
        with pytest.raises(AppendOutcomeUnknown):  # the server drops it; no ack comes
            await store.append([planned("forged")], expected=Expected("agenda.edition.forged.*"))
        assert (await admin.jetstream().stream_info("AGENDA")).state.messages == before
    finally:
        await nc.close()
