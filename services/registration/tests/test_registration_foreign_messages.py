"""A stray message on a participant's subject never blocks that participant, a discarded dead
letter lets their record catch up, and edge input a read model cannot hold is refused; on a
real nats-server, with the read model on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from nats.aio.client import Client as NatsClient

from agora_events.envelope import Envelope

if TYPE_CHECKING:
    from tests.conftest import Api

AMENDED = "agora.registration.participant.contact_amended.v1"


async def poison(nats_client: NatsClient, participant_id: str) -> tuple[int, int]:
    """A message without CloudEvents headers and a known type with a body the model
    refuses, on the participant's subject, as anyone with publish rights could store."""
    js = nats_client.jetstream()
    subject = f"registration.participant.{participant_id}.contact_amended"
    bare = await js.publish(subject, b"hello")
    envelope = Envelope(
        id=str(uuid.uuid4()), source="/elsewhere", type=AMENDED, time=datetime.now(UTC), data=b""
    )
    body = b'{"participant_id": "%s", "email": 42}' % participant_id.encode()
    refused = await js.publish(subject, body, headers=envelope.to_headers())
    return bare.seq, refused.seq


async def test_a_poisoned_participant_can_still_be_amended(
    api: Api, nats_client: NatsClient
) -> None:
    pid, own = await api.approved()
    await poison(nats_client, pid)

    amended = await api.client.patch(
        f"/participants/{pid}", json={"email": "new@example.org"}, headers=own
    )

    assert amended.status_code == 200, amended.text


async def test_discarding_the_stray_messages_lets_the_participants_record_catch_up(
    api: Api, nats_client: NatsClient
) -> None:
    pid, own = await api.approved()
    bare, refused = await poison(nats_client, pid)
    amended = await api.client.patch(
        f"/participants/{pid}", json={"email": "new@example.org"}, headers=own
    )
    after = {"after": amended.json()["sequence"]}
    frozen = await api.client.get(f"/participants/{pid}", params=after, headers=own)
    assert frozen.json()["email"] != "new@example.org"  # waits behind the stray message
    runner = api.service.runner
    assert runner is not None
    letters = [
        letter for letter in await runner.dead_letters() if letter.sequence in (bare, refused)
    ]
    assert [(letter.sequence, letter.reason) for letter in letters] == [
        (bare, "undecodable"),
        (refused, "blocked"),
    ]

    for letter in letters:
        await runner.discard_dead_letter(letter.id, reason="stray publish", by="ops-1")

    record = await api.client.get(f"/participants/{pid}", params=after, headers=own)
    assert record.json()["email"] == "new@example.org"
    assert [
        letter for letter in await runner.dead_letters() if letter.aggregate.endswith(f"{pid}.")
    ] == []


async def test_a_name_with_a_nul_is_refused_with_422_naming_the_field(api: Api) -> None:
    body = {"name": "Ada\x00", "email": "ada@example.org", "category": "delegate"}

    refused = await api.client.post("/participants", json=body)
    registered = await api.register(name="Ada Lovelace")

    assert refused.status_code == 422
    assert refused.json()["reason"].startswith("name: must not contain U+0000")
    record = await api.client.get(
        f"/participants/{registered['ids']['participant_id']}",
        params={"after": registered["sequence"]},
        headers=api.bearer(registered["participant_token"]),
    )
    assert record.status_code == 200 and record.json()["name"] == "Ada Lovelace"


async def test_an_amendment_with_a_control_character_is_refused(api: Api) -> None:
    pid, own = await api.approved()

    refused = await api.client.patch(
        f"/participants/{pid}", json={"organisation": "Ministry\x85"}, headers=own
    )

    assert refused.status_code == 422
    assert refused.json()["reason"].startswith("organisation: must not contain U+0085")


@pytest.mark.parametrize("key", [b"key\twith-tab", "clé".encode()])
async def test_an_idempotency_key_with_a_control_character_or_non_ascii_is_refused(
    api: Api, key: bytes
) -> None:
    body = {"name": "Ada", "email": "ada@example.org", "category": "delegate"}

    response = await api.client.post("/participants", json=body, headers={b"Idempotency-Key": key})

    assert response.status_code == 422
    assert "1-200 printable ASCII characters" in response.json()["reason"]
