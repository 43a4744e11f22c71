"""Log exports for audits, against a real nats-server."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import datetime

import pytest
from nats.aio.client import Client as NATS

from agora_events.audit import (
    AuditError,
    compare_with_stream,
    export_log,
    genesis,
    link,
    verify_export,
)
from agora_events.store import EventStore, Expected
from agora_events.testing.pytest_plugin import reset_streams

from .counter import CounterOpened, Incremented


async def append_counter(store: EventStore, counter_id: str, *tags: str) -> int:
    scope = f"agenda.counter.{counter_id}.*"
    result = await store.append([CounterOpened(counter_id=counter_id)], expected=Expected(scope))
    for count, tag in enumerate(tags, start=1):
        result = await store.append(
            [Incremented(counter_id=counter_id, tag=tag)],
            expected=Expected(scope, result.last_sequence, count),
        )
    return result.last_sequence


async def exported(
    nats_client: NATS, *, up_to: int | None = None, until: datetime | None = None
) -> list[str]:
    out = io.StringIO()
    await export_log(nats_client, "AGENDA", out, up_to=up_to, until=until)
    return out.getvalue().splitlines()


def edit(lines: list[str], number: int, **changes: object) -> list[str]:
    record = json.loads(lines[number - 1])
    record.update(changes)
    return [*lines[: number - 1], json.dumps(record, ensure_ascii=False), *lines[number:]]


async def test_an_export_holds_every_message_and_verifies_intact(
    nats_client: NATS, store: EventStore
) -> None:
    last = await append_counter(store, "c1", "Türkiye", "Côte d'Ivoire")
    await nats_client.jetstream().publish("agenda.raw.r1.noted", b"\xff\x00 not text")
    lines = await exported(nats_client)

    result = verify_export(lines)
    assert result.intact, result.problems
    assert [m.sequence for m in result.messages] == [*range(1, last + 1), last + 1]
    assert json.loads(lines[3])["data"] == '{"counter_id":"c1","tag":"Côte d\'Ivoire"}'
    assert result.messages[1].headers["ce-type"] == "agora.agenda.counter.incremented.v1"
    assert result.messages[-1].data == b"\xff\x00 not text"  # kept as base64, byte for byte
    assert json.loads(lines[-1])["head"] == result.head
    assert await compare_with_stream(nats_client, result) == []


async def test_an_edited_message_breaks_the_chain_at_its_line(
    nats_client: NATS, store: EventStore
) -> None:
    await append_counter(store, "c1", "a", "b")
    lines = await exported(nats_client)
    forged = edit(lines, 3, data='{"counter_id":"c1","tag":"z"}')  # sequence 2
    result = verify_export(forged)
    assert not result.intact
    assert result.problems[0].startswith("line 3 (sequence 2)")
    differences = await compare_with_stream(nats_client, result)
    assert differences == [
        "sequence 2 (agenda.counter.c1.incremented) differs between the stream and the export"
    ]


async def test_a_removed_message_and_a_cut_short_file_are_both_found(
    nats_client: NATS, store: EventStore
) -> None:
    await append_counter(store, "c1", "a", "b")
    lines = await exported(nats_client)
    without_second = [*lines[:2], *lines[3:]]
    problems = verify_export(without_second).problems
    assert problems[0].startswith("line 3 (sequence 3)")
    assert "the trailer counts 3 messages; the file holds 2" in problems

    assert verify_export(lines[:-1]).problems == ["the export has no trailer: it was cut short"]


async def test_a_rewritten_file_with_a_fresh_chain_fails_against_the_kept_head(
    nats_client: NATS, store: EventStore
) -> None:
    await append_counter(store, "c1", "a")
    lines = await exported(nats_client)
    kept_head = verify_export(lines).head

    # A forger changes a message and recomputes every chain value and the trailer.
    original = verify_export(lines).messages
    forged_message = replace(original[1], data=b'{"counter_id":"c1","tag":"forged"}')
    chain = genesis("AGENDA")
    rewritten = [lines[0]]
    for number, message in enumerate([original[0], forged_message], start=2):
        chain = link(chain, message)
        rewritten.append(
            json.dumps(
                json.loads(lines[number - 1])
                | {"data": message.data.decode(), "chain": chain.hex()}
            )
        )
    rewritten.append(json.dumps(json.loads(lines[-1]) | {"head": chain.hex()}))

    assert verify_export(rewritten).intact  # consistent in itself…
    problems = verify_export(rewritten, head=kept_head).problems
    assert len(problems) == 1 and "the file was rewritten" in problems[0]  # …but not the same
    assert await compare_with_stream(nats_client, verify_export(rewritten)) != []


async def test_a_stream_that_changed_since_the_export_is_named_message_by_message(
    nats_client: NATS, store: EventStore
) -> None:
    await append_counter(store, "c1", "a", "b")
    result = verify_export(await exported(nats_client))
    await reset_streams(nats_client)  # stands in for a store altered behind the server's back
    await append_counter(store, "c1", "a")
    assert await compare_with_stream(nats_client, result) == [
        "sequence 1 (agenda.counter.c1.opened) differs between the stream and the export",
        "sequence 2 (agenda.counter.c1.incremented) differs between the stream and the export",
        "sequence 3 is in the export but no longer in the stream",
    ]


async def test_an_export_stops_at_the_sequence_asked_for(
    nats_client: NATS, store: EventStore
) -> None:
    await append_counter(store, "c1", "a", "b", "c")
    result = verify_export(await exported(nats_client, up_to=2))
    assert result.intact
    assert [m.sequence for m in result.messages] == [1, 2]
    assert await compare_with_stream(nats_client, result) == []


async def test_an_export_stops_at_the_time_asked_for(nats_client: NATS, store: EventStore) -> None:
    await append_counter(store, "c1", "a")
    second = verify_export(await exported(nats_client)).messages[1]
    await append_counter(store, "c2", "b")
    result = verify_export(await exported(nats_client, until=second.moment))
    assert [m.sequence for m in result.messages] == [1, 2]


async def test_an_export_of_an_empty_stream_is_intact_and_empty(nats_client: NATS) -> None:
    result = verify_export(await exported(nats_client))
    assert result.intact and result.messages == []


def test_a_file_that_is_not_an_export_is_refused_with_the_reason() -> None:
    with pytest.raises(AuditError, match="empty"):
        verify_export([])
    with pytest.raises(AuditError, match="line 1 does not start"):
        verify_export(['{"hello": "world"}'])
    with pytest.raises(AuditError, match="line 2 is not JSON"):
        verify_export(['{"format": "agora-log-export/1", "stream": "AGENDA"}', "{oops"])
