"""``agora audit export|verify`` against a real nats-server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from agora_cli.main import main


@pytest.fixture
async def agenda_log(nats_client: NATS) -> int:
    js = nats_client.jetstream()
    for number in range(1, 4):
        body = json.dumps({"session_id": f"ws{number}", "room": "Registan Hall"}).encode()
        await js.publish(f"agenda.session.ws{number}.scheduled", body)
    return 3


def head_of(err: str) -> str:
    return next(line.split()[1] for line in err.splitlines() if line.startswith("head "))


def test_exports_a_stream_then_verifies_it_against_the_head_and_the_stream(
    nats_url: str, agenda_log: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "agenda.jsonl"
    assert main(["audit", "--nats-url", nats_url, "export", "agenda", "-o", str(target)]) == 0
    err = capsys.readouterr().err
    assert "exported 3 messages of AGENDA (sequences 1-3)" in err
    head = head_of(err)

    command = ["audit", "--nats-url", nats_url, "verify", str(target), "--head", head]
    assert main([*command, "--against-stream"]) == 0
    assert "intact: 3 messages of AGENDA and matches the live stream" in capsys.readouterr().out


def test_a_tampered_export_fails_verification_with_exit_code_1(
    nats_url: str, agenda_log: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "agenda.jsonl"
    assert main(["audit", "--nats-url", nats_url, "export", "AGENDA", "-o", str(target)]) == 0
    capsys.readouterr()
    target.write_text(target.read_text().replace("Registan Hall", "Navoi Hall", 1))
    assert main(["audit", "verify", str(target)]) == 1
    out = capsys.readouterr().out
    assert "problem: line 2 (sequence 1)" in out and "NOT INTACT" in out


def test_refuses_an_unknown_stream_a_bad_until_and_a_file_that_is_no_export(
    nats_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--nats-url", nats_url, "export", "catering"]) == 2
    assert "no stream 'catering'; one of registration, agenda" in capsys.readouterr().err
    command = ["audit", "--nats-url", nats_url, "export", "agenda", "--until", "yesterday"]
    assert main(command) == 2
    assert "--until: cannot read 'yesterday'" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("minutes of the meeting\n")
    assert main(["audit", "verify", str(notes)]) == 2
    assert "line 1 is not JSON" in capsys.readouterr().err
    assert main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    nowhere = str(tmp_path / "no-such-directory" / "agenda.jsonl")
    assert main(["audit", "--nats-url", nats_url, "export", "agenda", "-o", nowhere]) == 2
    assert f"cannot write {nowhere}: No such file or directory" in capsys.readouterr().err


@pytest.fixture
async def declarations_gone(nats_client: NATS) -> None:
    await nats_client.jetstream().delete_stream("DECLARATIONS")


def test_an_export_that_fails_leaves_no_file_behind(
    nats_url: str, declarations_gone: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "declarations.jsonl"
    command = ["audit", "--nats-url", nats_url, "export", "declarations", "-o", str(target)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "no stream DECLARATIONS answers" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
