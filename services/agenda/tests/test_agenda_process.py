"""The agenda as a process: ``python -m agora_agenda.main demo|import|serve``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from agora_events.nats_server import free_port


def environment(nats_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    return env | {
        "AGORA_NATS_URL": nats_url,
        "AGORA_AGENDA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'agenda.db'}",
        **extra,
    }


async def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agora_agenda.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_demo_imports_the_2025_programme_once(nats_client, nats_url, tmp_path):
    env = environment(nats_url, tmp_path)
    code, out, _ = await run("demo", env=env)
    assert code == 0
    first = json.loads(out)
    assert (first["edition_id"], first["events"]) == ("unpsf-2025", 102)
    code, out, _ = await run("demo", env=env)
    assert code == 0
    assert json.loads(out)["events"] == 0


@pytest.mark.slow
async def test_import_refuses_a_broken_programme_with_a_reason(nats_client, nats_url, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('[edition]\nid = "x"\n', encoding="utf-8")
    code, _, err = await run("import", str(broken), env=environment(nats_url, tmp_path))
    assert code == 1
    assert "broken.toml was not imported" in err
    assert "must be a non-empty string" in err


@pytest.mark.slow
async def test_serve_answers_and_stops_cleanly_on_sigterm(nats_client, nats_url, tmp_path):
    port = free_port()
    env = environment(nats_url, tmp_path, AGORA_AGENDA_HTTP_PORT=str(port))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agora_agenda.main", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    lines = []
    try:
        async for raw in process.stderr:  # JSON lines; wait for uvicorn to say it listens
            entry = json.loads(raw)
            lines.append(entry)
            if entry["message"].startswith("Uvicorn running on"):
                break
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["nats"] == "connected"
    finally:
        process.send_signal(signal.SIGTERM)
        rest = await process.stderr.read()
        code = await process.wait()
    assert code == 0
    lines += [json.loads(line) for line in rest.decode().splitlines()]
    assert any(entry["message"] == "agenda stopping" for entry in lines)
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in lines)
