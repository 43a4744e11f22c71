"""A burst of organiser commands on one agenda process, on a real nats-server.

The whole programme is one consistency scope (``agenda.>``). Within one process the use cases
queue commands on that scope (``agora_events.usecases.ScopeLocks``), so each one appends once
on the state the one before left: none of them races another into a concurrency conflict.
Two processes do race; the store's guard refuses the loser's append and it decides again on
the winner's events (see ``docs/architecture.md``, "Multi-event commands and bursts").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client as NATS
from pydantic import SecretStr

from agora_agenda.application import SCOPE, AgendaCommands, Outcome
from agora_agenda.domain import AddRoom, PlanEdition
from agora_agenda.main import AGENDA
from agora_agenda.settings import AgendaSettings
from agora_events.commands import ConcurrencyError
from agora_events.service import running
from agora_events.store import EventStore

TOKEN = "organiser-token-for-tests"
ORGANISER = {"Authorization": f"Bearer {TOKEN}"}
BURST = 50
EDITION = {
    "edition_id": "burst-2025",
    "name": "Forum 2025",
    "host_city": "Samarkand",
    "host_country": "UZB",
    "start_date": "2025-06-23",
    "end_date": "2025-06-25",
    "time_zone": "Asia/Samarkand",
}


@pytest.fixture
async def agenda(
    nats_client: NATS, nats_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = AgendaSettings(
        nats_url=nats_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'agenda.db'}",
        organiser_token=SecretStr(TOKEN),
        read_your_writes_timeout=10.0,
    )
    async with running(AGENDA, settings, nc=nats_client) as runtime:
        transport = httpx.ASGITransport(app=runtime.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://agenda", timeout=60
        ) as client:
            yield client


async def test_a_burst_of_fifty_room_additions_is_applied_without_a_conflict(
    agenda: httpx.AsyncClient,
) -> None:
    planned = await agenda.post("/editions", json=EDITION, headers=ORGANISER)
    assert planned.status_code == 201, planned.text

    async def add(number: int) -> httpx.Response:
        body = {"room_id": f"burst-room-{number}", "name": f"Room {number}", "capacity": 40}
        return await agenda.post("/editions/burst-2025/rooms", json=body, headers=ORGANISER)

    answers = await asyncio.gather(*(add(number) for number in range(BURST)))

    assert [a.status_code for a in answers] == [201] * BURST, [
        a.text for a in answers if a.status_code != 201
    ]
    sequences = sorted(a.json()["sequence"] for a in answers)
    assert len(set(sequences)) == BURST  # one append each, none repeated
    last = sequences[-1]
    edition = await agenda.get(
        "/editions/burst-2025", params={"after": last, "draft": "true"}, headers=ORGANISER
    )
    assert edition.status_code == 200, edition.text
    rooms = {room["room_id"] for room in edition.json()["rooms"]}
    assert rooms == {f"burst-room-{number}" for number in range(BURST)}


async def test_two_processes_bursting_on_the_programme_lose_nothing_and_half_apply_nothing(
    nats_client: NATS,
) -> None:
    """Two replicas, each with its own queue and cache: their appends race, and the loser of
    each race catches up and decides again. The replica whose append won has the current
    state and goes on winning while its queue lasts, so the other one's commands may run out
    of attempts: those are refused whole (409 over HTTP, safe to retry), never half-applied,
    and everything accepted is in the log once."""
    first = AgendaCommands(EventStore(nats_client, source="/agora"))
    second = AgendaCommands(EventStore(nats_client, source="/agora"))
    plan = PlanEdition(
        edition_id="twin-2025",
        name="Forum 2025",
        host_city="Samarkand",
        host_country="UZB",
        start_date=date(2025, 6, 23),
        end_date=date(2025, 6, 25),
        time_zone="Asia/Samarkand",
    )
    await first.execute(plan)

    def room(number: int) -> AddRoom:
        return AddRoom(f"twin-room-{number}", "twin-2025", f"Room {number}", 40)

    answers = await asyncio.gather(
        *((first if number % 2 else second).execute(room(number)) for number in range(BURST)),
        return_exceptions=True,
    )

    accepted = {n for n, answer in enumerate(answers) if isinstance(answer, Outcome)}
    refused = {n for n, answer in enumerate(answers) if isinstance(answer, ConcurrencyError)}
    assert accepted | refused == set(range(BURST)), answers
    state = (await first._handler.load(SCOPE)).state
    added = {room_id for room_id in state.rooms if room_id.startswith("twin-room-")}
    assert added == {f"twin-room-{n}" for n in accepted}
    for number in sorted(refused):  # a refused command, sent again, is applied
        await first.execute(room(number))
    state = (await first._handler.load(SCOPE)).state
    assert {f"twin-room-{n}" for n in range(BURST)} <= set(state.rooms)
