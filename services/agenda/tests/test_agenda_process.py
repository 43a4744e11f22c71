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

from agora_agenda.domain import MISSING_REASON
from agora_agenda.importer import bundled_editions
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
async def test_demo_imports_and_publishes_each_bundled_programme_once(
    nats_client, nats_url, tmp_path
):
    env = environment(nats_url, tmp_path)
    code, out, _ = await run("demo", env=env)
    assert code == 0
    first = json.loads(out)
    assert [e["edition_id"] for e in first["editions"]] == list(bundled_editions())
    assert all(e["events"] > 1 for e in first["editions"])
    published = await nats_client.jetstream().stream_info("AGENDA", subjects_filter=">")
    versions = [s for s in (published.state.subjects or {}) if s.endswith(".schedule_published")]
    assert len(versions) == len(bundled_editions())
    code, out, err = await run("demo", env=env)
    assert code == 0
    assert json.loads(out)["events"] == 0
    assert err.count("left as it is") == len(bundled_editions())


@pytest.mark.slow
async def test_import_refuses_a_broken_programme_with_a_reason(nats_client, nats_url, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('[edition]\nid = "x"\n', encoding="utf-8")
    code, _, err = await run("import", str(broken), env=environment(nats_url, tmp_path))
    assert code == 1
    assert "broken.toml was not imported" in err
    assert "must be a non-empty string" in err


def programme_without(tmp_path: Path, session_id: str) -> Path:
    """The bundled 2025 programme with one session taken out, written beside the test."""
    text = bundled_editions()["unpsf-2025"].read_text(encoding="utf-8")
    start = text.index(f'[[sessions]]\nid = "{session_id}"\n')
    end = text.index("\n[[sessions]]\n", start) + 1
    path = tmp_path / "unpsf-2025-updated.toml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    return path


@pytest.mark.slow
async def test_import_reports_a_removed_session_and_cancel_missing_cancels_it_once(
    nats_client, nats_url, tmp_path
):
    env = environment(nats_url, tmp_path)
    assert (await run("demo", env=env))[0] == 0
    updated = programme_without(tmp_path, "2025-d2-cadgov-launch")
    removed = {
        "session_id": "2025-d2-cadgov-launch",
        "title": "Launch of the Central Asia Digital Governance Forum (CADGov)",
    }

    code, out, err = await run("import", str(updated), env=env)
    assert code == 0
    report = json.loads(out)
    assert (report["events"], report["missing"], report["cancelled"]) == (0, [removed], [])
    assert "2025-d2-cadgov-launch" in err
    assert "--cancel-missing" in err

    code, out, _ = await run("import", str(updated), "--cancel-missing", env=env)
    assert code == 0
    report = json.loads(out)
    assert (report["events"], report["missing"], report["cancelled"]) == (1, [], [removed])
    info = await nats_client.jetstream().stream_info("AGENDA")
    cancelled = await nats_client.jetstream().get_msg("AGENDA", info.state.last_seq)
    assert cancelled.subject == "agenda.session.2025-d2-cadgov-launch.cancelled"
    assert cancelled.data is not None
    assert json.loads(cancelled.data)["reason"] == MISSING_REASON

    code, out, err = await run("import", str(updated), "--cancel-missing", env=env)
    assert code == 0
    report = json.loads(out)
    assert (report["events"], report["missing"], report["cancelled"]) == (0, [], [])
    assert "2025-d2-cadgov-launch" not in err


@pytest.mark.slow
async def test_import_with_cancel_missing_refuses_a_broken_programme_and_cancels_nothing(
    nats_client, nats_url, tmp_path
):
    env = environment(nats_url, tmp_path)
    assert (await run("demo", env=env))[0] == 0
    before = (await nats_client.jetstream().stream_info("AGENDA")).state.messages
    broken = tmp_path / "broken.toml"
    broken.write_text('[edition]\nid = "unpsf-2025"\n', encoding="utf-8")
    code, out, err = await run("import", str(broken), "--cancel-missing", env=env)
    assert (code, out) == (1, "")
    assert "broken.toml was not imported" in err
    after = (await nats_client.jetstream().stream_info("AGENDA")).state.messages
    assert after == before


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
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["nats"] == "connected"
    finally:
        process.send_signal(signal.SIGTERM)
        rest = await process.stderr.read()
        code = await process.wait()
    assert code == 0
    lines += [json.loads(line) for line in rest.decode().splitlines()]
    assert [entry["message"] for entry in lines][-2:] == ["stopping", "stopped"]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in lines)
