from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS
from nats.js.api import StreamConfig

from agora_events.streams import STREAMS, StreamSummary, describe_streams, ensure_streams


async def test_creates_the_four_context_streams_with_safe_settings(nats_client: NATS) -> None:
    js = nats_client.jetstream()
    for name, subject in [
        ("REGISTRATION", "registration.>"),
        ("AGENDA", "agenda.>"),
        ("DECLARATIONS", "declarations.>"),
        ("NOTIFICATIONS", "notifications.>"),
    ]:
        config = (await js.stream_info(name)).config
        assert config.subjects == [subject]
        assert getattr(config.storage, "value", config.storage) == "file"
        assert config.deny_delete and config.deny_purge and config.allow_direct
        assert config.duplicate_window and config.duplicate_window > 0


async def test_init_is_idempotent(nats_client: NATS) -> None:
    reports = await ensure_streams(nats_client.jetstream())
    assert {r.status for r in reports} == {"unchanged"}


async def test_reports_drift_without_overwriting(nats_client: NATS) -> None:
    js = nats_client.jetstream()
    config: StreamConfig = STREAMS["agenda"].config()
    config.allow_atomic = False
    config.duplicate_window = 60.0
    await js.update_stream(config)
    reports = {r.name: r for r in await ensure_streams(js)}
    drifted = reports["AGENDA"]
    assert drifted.status == "drifted"
    assert {d.setting for d in drifted.drift} == {"allow_atomic", "duplicate_window"}
    assert (await js.stream_info("AGENDA")).config.duplicate_window == 60.0  # left as found


async def test_refuses_to_delete_or_purge_events(nats_client: NATS) -> None:
    js = nats_client.jetstream()
    ack = await js.publish("agenda.room.r1.added", b"{}")
    with pytest.raises(Exception, match=r"(?i)delete|purge"):
        await js.purge_stream("AGENDA")
    with pytest.raises(Exception, match=r"(?i)delete"):
        await js.delete_msg("AGENDA", ack.seq)


async def test_describes_each_stream(nats_client: NATS) -> None:
    await nats_client.jetstream().publish("registration.participant.p1.registered", b"{}")
    described = await describe_streams(nats_client.jetstream())
    summaries = {s.name: s for s in described if isinstance(s, StreamSummary)}
    assert len(summaries) == len(described), "every stream exists after ensure_streams"
    assert summaries["REGISTRATION"].messages == 1
    assert summaries["AGENDA"].messages == 0
