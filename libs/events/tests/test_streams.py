from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS
from nats.js.api import RePublish, StreamConfig

from agora_events.streams import (
    STREAMS,
    StreamSummary,
    add_republish,
    describe_streams,
    ensure_streams,
)


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


async def test_each_stream_republishes_what_it_stores_on_its_feed(nats_client: NATS) -> None:
    republish = (await nats_client.jetstream().stream_info("AGENDA")).config.republish
    assert republish is not None
    assert (republish.src, republish.dest) == ("agenda.>", "feed.agenda.>")
    assert not republish.headers_only


async def without_republish(nc: NATS, name: str) -> None:
    """The stream as it was before the feed: created without republish."""
    js = nc.jetstream()
    config = (await js.stream_info(name)).config
    await js.delete_stream(name)
    config.republish = None
    await js.add_stream(config)


async def test_reports_a_missing_republish_as_drift_and_leaves_it(nats_client: NATS) -> None:
    await without_republish(nats_client, "AGENDA")
    reports = {r.name: r for r in await ensure_streams(nats_client.jetstream())}
    assert reports["AGENDA"].status == "drifted"
    assert [str(d) for d in reports["AGENDA"].drift] == [
        "republish: expected 'agenda.> -> feed.agenda.>', found None"
    ]
    assert (await nats_client.jetstream().stream_info("AGENDA")).config.republish is None


async def test_adds_the_missing_republish_and_changes_nothing_else(nats_client: NATS) -> None:
    js = nats_client.jetstream()
    await without_republish(nats_client, "AGENDA")
    drifted = STREAMS["agenda"].config()
    drifted.republish, drifted.duplicate_window, drifted.max_msgs = None, 60.0, 12345
    await js.update_stream(drifted)
    await js.publish("agenda.room.r1.added", b"{}")

    reports = {r.name: r.status for r in await add_republish(nats_client)}

    assert reports == {
        "REGISTRATION": "unchanged",
        "AGENDA": "updated",
        "DECLARATIONS": "unchanged",
        "NOTIFICATIONS": "unchanged",
    }
    info = await js.stream_info("AGENDA")
    assert info.config.republish is not None and info.config.republish.dest == "feed.agenda.>"
    assert (info.config.duplicate_window, info.config.max_msgs) == (60.0, 12345)
    assert info.state.messages == 1
    remaining = {r.name: r for r in await ensure_streams(js)}["AGENDA"].drift
    assert {d.setting for d in remaining} == {"duplicate_window"}, "the rest is left as found"


async def test_leaves_a_stream_that_republishes_elsewhere(nats_client: NATS) -> None:
    js = nats_client.jetstream()
    config = STREAMS["agenda"].config()
    config.republish = RePublish(src="agenda.>", dest="elsewhere.>")
    await js.update_stream(config)
    report = {r.name: r for r in await add_republish(nats_client)}["AGENDA"]
    assert report.status == "drifted"
    assert (await js.stream_info("AGENDA")).config.republish == config.republish
