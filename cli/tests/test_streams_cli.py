from __future__ import annotations

import asyncio

import pytest

from agora_cli.main import main
from agora_events.connection import connect
from agora_events.nats_server import free_port


def test_streams_init_creates_then_reports_unchanged(
    nats_url: str, capsys: pytest.CaptureFixture[str], nats_client: object
) -> None:
    assert main(["streams", "--nats-url", nats_url, "init"]) == 0
    out = capsys.readouterr().out
    assert "AGENDA" in out and "unchanged" in out


def test_streams_info_lists_every_stream(
    nats_url: str, capsys: pytest.CaptureFixture[str], nats_client: object
) -> None:
    assert main(["streams", "--nats-url", nats_url, "info"]) == 0
    out = capsys.readouterr().out
    for name in ("REGISTRATION", "AGENDA", "DECLARATIONS", "NOTIFICATIONS"):
        assert name in out


def test_unreachable_nats_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    assert main(["streams", "--nats-url", url, "info"]) == 2
    assert "cannot reach NATS" in capsys.readouterr().err


def test_unknown_service_for_up_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    assert main(["up", "--home", str(tmp_path), "--only", "catering"]) == 2
    assert "unknown service" in capsys.readouterr().err


def test_a_password_in_the_nats_url_never_reaches_the_error_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"nats://admin:s3cret-Pa55@127.0.0.1:{free_port()}"
    assert main(["streams", "--nats-url", url, "info"]) == 2
    err = capsys.readouterr().err
    assert "nats://admin:***@127.0.0.1:" in err
    assert "s3cret" not in err


def _drop_republish(url: str, name: str) -> None:
    async def drop() -> None:
        nc = await connect(url, name="agora-tests")
        try:
            js = nc.jetstream()
            config = (await js.stream_info(name)).config
            await js.delete_stream(name)
            config.republish = None
            await js.add_stream(config)
        finally:
            await nc.close()

    asyncio.run(drop())


def test_streams_update_adds_the_feed_that_init_reports_missing(
    nats_url: str, capsys: pytest.CaptureFixture[str], nats_client: object
) -> None:
    _drop_republish(nats_url, "AGENDA")
    assert main(["streams", "--nats-url", nats_url, "init"]) == 3
    captured = capsys.readouterr()
    assert "drift  republish: expected 'agenda.> -> feed.agenda.>', found None" in captured.out
    assert "agora streams update --republish" in captured.err

    assert main(["streams", "--nats-url", nats_url, "update", "--republish"]) == 0
    out = capsys.readouterr().out
    assert "AGENDA         updated" in out and "REGISTRATION   unchanged" in out
    assert main(["streams", "--nats-url", nats_url, "init"]) == 0
