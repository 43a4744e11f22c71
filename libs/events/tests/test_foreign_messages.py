"""A message in a stream that is not an Agora event never breaks reads or commands."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY

from agora_events.commands import CommandHandler
from agora_events.envelope import Envelope
from agora_events.foreign import find_foreign
from agora_events.store import EventStore, Expected, StoreError

from .counter import Counter, CounterOpened, Increment, Open, counter_decider, registry, scope

INCREMENTED = "agora.agenda.counter.incremented.v1"


def handler(store: EventStore) -> CommandHandler[Counter, object]:
    return CommandHandler(store, counter_decider, scope)


def ce_headers(event_type: str, **changes: str) -> dict[str, str]:
    envelope = Envelope(
        id="stray-1", source="/elsewhere", type=event_type, time=datetime.now(UTC), data=b""
    )
    return envelope.to_headers() | changes


async def publish(nc: NATS, subject: str, body: bytes, headers: dict[str, str] | None) -> int:
    ack = await nc.jetstream().publish(subject, body, headers=headers)
    return int(ack.seq)


def foreign_count(stream: str, reason: str) -> float:
    labels = {"stream": stream, "reason": reason}
    return REGISTRY.get_sample_value("agora_foreign_messages_total", labels) or 0.0


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (None, b"hello", "not-a-cloudevent"),
        ({"X-Other": "1"}, b"{}", "not-a-cloudevent"),
        (ce_headers(INCREMENTED, **{"ce-time": "yesterday"}), b"{}", "invalid-envelope"),
        (ce_headers("agora.agenda.counter.exploded.v1"), b"{}", "unknown-type"),
        (ce_headers(INCREMENTED), b'{"counter_id": "c1", "tag": 5}', "invalid-data"),
        (ce_headers(INCREMENTED), b"not json", "invalid-data"),
        (ce_headers(INCREMENTED), b"[1, 2]", "invalid-data"),
    ],
    ids=["no-headers", "no-ce-headers", "bad-time", "unknown-type", "refused", "not-json", "list"],
)
async def test_reading_history_steps_over_a_message_that_is_not_an_agora_event(
    store: EventStore,
    nats_client: NATS,
    headers: dict[str, str] | None,
    body: bytes,
    reason: str,
) -> None:
    opened = await store.append([CounterOpened(counter_id="c1")], expected=None)
    stray = await publish(nats_client, "agenda.counter.c1.incremented", body, headers)

    history = await store.read("agenda.counter.c1.*")

    assert [record.sequence for record in history] == [opened.last_sequence]
    assert [(f.sequence, f.subject, f.reason) for f in history.foreign] == [
        (stray, "agenda.counter.c1.incremented", reason)
    ]
    assert history.last_sequence == stray


async def test_a_refused_body_is_described_by_its_fields_never_by_its_values(
    store: EventStore, nats_client: NATS
) -> None:
    body = json.dumps({"counter_id": "c1", "tag": {"name": "Jane Doe"}}).encode()
    await publish(nats_client, "agenda.counter.c1.incremented", body, ce_headers(INCREMENTED))

    (foreign,) = (await store.read("agenda.counter.c1.*")).foreign

    assert foreign.detail == f"{INCREMENTED}: tag: string_type"
    assert "Jane" not in foreign.detail


async def test_a_foreign_message_is_counted_and_logged_once_without_its_payload(
    store: EventStore, nats_client: NATS, caplog: pytest.LogCaptureFixture
) -> None:
    before = foreign_count("AGENDA", "not-a-cloudevent")
    stray = await publish(nats_client, "agenda.counter.c2.opened", b"Jane Doe", None)

    with caplog.at_level(logging.WARNING, logger="agora.foreign"):
        await store.read("agenda.counter.c2.*")
        await store.read("agenda.>")

    assert foreign_count("AGENDA", "not-a-cloudevent") == before + 1
    (line,) = [r for r in caplog.records if r.name == "agora.foreign"]
    assert (line.stream, line.sequence, line.subject, line.reason) == (  # type: ignore[attr-defined]
        "AGENDA",
        stray,
        "agenda.counter.c2.opened",
        "not-a-cloudevent",
    )
    assert "Jane" not in caplog.text


async def test_a_cold_command_handler_works_on_a_scope_ending_in_a_foreign_message(
    store: EventStore, nats_client: NATS
) -> None:
    await handler(store).handle(Open("c3"))
    await publish(nats_client, "agenda.counter.c3.incremented", b"{}", ce_headers(INCREMENTED))

    result = await handler(store).handle(Increment("c3", "after"))

    assert result.state.tags == ("after",)


async def test_a_warm_command_handler_catches_up_past_a_foreign_message(
    store: EventStore, nats_client: NATS
) -> None:
    warm = handler(store)
    await warm.handle(Open("c4"))
    await publish(nats_client, "agenda.counter.c4.opened", b"", None)

    result = await warm.handle(Increment("c4", "after"))
    again = await warm.handle(Increment("c4", "again"))

    assert again.state.tags == ("after", "again")
    assert result.last_sequence < again.last_sequence


async def test_the_aggregate_version_counts_events_only(
    store: EventStore, nats_client: NATS
) -> None:
    await handler(store).handle(Open("c5"))
    await publish(nats_client, "agenda.counter.c5.opened", b"", None)

    await handler(store).handle(Increment("c5", "x"))

    versions = [r.envelope.aggregateversion for r in await store.read("agenda.counter.c5.*")]
    assert versions == [1, 2]


async def test_a_log_that_cannot_be_read_is_still_an_error(
    store: EventStore, nats_client: NATS
) -> None:
    await nats_client.jetstream().delete_stream("AGENDA")

    with pytest.raises(StoreError):
        await store.read("agenda.counter.c1.*")


async def test_find_foreign_lists_every_foreign_message_of_a_stream(
    store: EventStore, nats_client: NATS
) -> None:
    await store.append([CounterOpened(counter_id="c6")], expected=Expected("agenda.counter.c6.*"))
    first = await publish(nats_client, "agenda.counter.c6.opened", b"", None)
    second = await publish(nats_client, "agenda.other.x.y", b"{}", ce_headers("agora.x.y.z.v1"))

    found = [f async for f in find_foreign(nats_client, "AGENDA", registry)]

    assert [(f.sequence, f.reason) for f in found] == [
        (first, "not-a-cloudevent"),
        (second, "unknown-type"),
    ]
