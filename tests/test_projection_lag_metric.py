"""A stuck projection shows: `agora_projection_lag` keeps rising with the log while the
projection applies nothing, /metrics and /readyz give the same lag, and /readyz turns 503 once
the checkpoint has stood still for `projection_stall_seconds`."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agora_agenda.importer import bundled_editions
from agora_agenda.main import AGENDA, import_file
from agora_agenda.projections import all_projections
from agora_agenda.settings import AgendaSettings
from agora_events.nats_server import EmbeddedNats
from agora_events.service import running

STUCK = "programme"


async def scraped_lag(client: httpx.AsyncClient, projection: str) -> float:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "agora_projection_lag" and sample.labels["projection"] == projection:
                return float(sample.value)
    raise AssertionError(f"/metrics has no agora_projection_lag for {projection}")


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    answer = await client.get("/readyz")
    return answer.status_code, answer.json()


def lag_of(report: dict[str, Any], projection: str) -> int:
    (check,) = [p for p in report["checks"]["projections"] if p["projection"] == projection]
    return int(check["lag"])


async def eventually(probe: Any, what: str, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await probe():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.1)


async def test_the_lag_metric_rises_while_a_projection_is_stuck_and_readyz_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    projections = all_projections()
    (stuck,) = [p for p in projections if p.name == STUCK]
    entered, release = asyncio.Event(), asyncio.Event()
    apply = stuck.apply

    async def hanging(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await apply(*args, **kwargs)

    monkeypatch.setattr(stuck, "apply", hanging)
    definition = dataclasses.replace(AGENDA, projections=lambda: projections)
    with EmbeddedNats(tmp_path / "nats") as server:
        settings = AgendaSettings(
            nats_url=server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'agenda.db'}",
            projection_stall_seconds=1.0,
        )
        async with (
            running(definition, settings) as runtime,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=runtime.app), base_url="http://agenda"
            ) as client,
        ):
            first = await import_file(settings, bundled_editions()["unpsf-2025"])
            await asyncio.wait_for(entered.wait(), 30)
            lag = await scraped_lag(client, STUCK)
            _, report = await readiness(client)
            assert lag == lag_of(report, STUCK) == first.sequence

            second = await import_file(settings, bundled_editions()["unpsf-2024"])
            risen = await scraped_lag(client, STUCK)
            assert risen == second.sequence > lag
            _, report = await readiness(client)
            assert lag_of(report, STUCK) == risen

            async def stalled() -> bool:
                code, report = await readiness(client)
                return code == 503 and any(
                    f"projection {STUCK} on AGENDA is stalled" in problem
                    for problem in report["checks"]["problems"]
                )

            await eventually(stalled, "/readyz 503 naming the stalled projection")

            release.set()

            async def caught_up() -> bool:
                code, _ = await readiness(client)
                return code == 200 and await scraped_lag(client, STUCK) == 0

            await eventually(caught_up, "ready again with lag 0 once the projection moves")
