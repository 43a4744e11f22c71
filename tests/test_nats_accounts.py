"""The accounts of deploy/base/nats.yaml on a real nats-server: only a context's own service
can make its stream store a message, by no route, and nobody reads another account's replies.

The routes tried are those a client controls without a publish permission on the subject: the
reply subject of a JetStream API request (the server publishes its answer there), the reply
subject of a direct get (a stored event copied there), and a push consumer's deliver subject.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig
from nats.js.errors import BadRequestError

from agora_events.audit import read_log
from agora_events.nats_server import EmbeddedNats
from agora_events.streams import CONTEXTS, STREAMS
from tests.test_nats_authorization import admin, connected, secured_server, streams

__all__ = ["admin", "secured_server", "streams"]  # the fixtures, shared with that module

CLIENTS = ("subscriber", "agenda", "registration", "declarations")
VICTIM = "registration.participant.p0000042.registered"
# A request a client may send, answered by the server to whatever reply subject it names.
REQUESTS = {
    "account info": ("$JS.API.INFO", b""),
    "direct get by sequence": ("$JS.API.DIRECT.GET.REGISTRATION", b'{"seq": 1}'),
    "direct get batch": ("$JS.API.DIRECT.GET.REGISTRATION", b'{"seq": 1, "batch": 5}'),
    "direct get by subject": (f"$JS.API.DIRECT.GET.REGISTRATION.{VICTIM}", b""),
}


def forged(context: str, how: str) -> str:
    return f"{context}.forged.{how.replace(' ', '-')}.planned"


@pytest.fixture
async def victim(admin: NATS) -> int:
    """A stored registration event for the direct gets to copy."""
    return (await admin.jetstream().publish(VICTIM, b'{"participant_id":"p0000042"}')).seq


async def counts(admin: NATS) -> dict[str, int]:
    js = admin.jetstream()
    return {s.name: (await js.stream_info(s.name)).state.messages for s in STREAMS.values()}


async def stored_under(admin: NATS, subject: str) -> bool:
    """Whether the subject's stream holds a message on it (the last one, by direct get)."""
    stream = STREAMS[subject.split(".", 1)[0]].name
    answer = await admin.request(f"$JS.API.DIRECT.GET.{stream}.{subject}", b"", timeout=2)
    return not (answer.headers and answer.headers.get("Status") == "404")


async def settled(*connections: NATS) -> None:
    """Everything these connections sent has been handled: a round trip on each, then a
    pause for the server's internal answers (a stream would have stored them by then)."""
    for nc in connections:
        await nc.flush()
    await asyncio.sleep(0.3)


@pytest.fixture
async def clients(streams: EmbeddedNats) -> AsyncIterator[dict[str, NATS]]:
    opened = {user: await connected(streams, user) for user in CLIENTS}
    yield opened
    for nc in opened.values():
        await nc.close()


@pytest.mark.parametrize("user", CLIENTS)
@pytest.mark.parametrize("request_name", REQUESTS)
async def test_no_answer_to_a_request_is_stored_whatever_reply_subject_it_names(
    admin: NATS, clients: dict[str, NATS], victim: int, user: str, request_name: str
) -> None:
    nc = clients[user]
    subject, payload = REQUESTS[request_name]
    before = await counts(admin)
    for context in CONTEXTS:
        await nc.publish(subject, payload, reply=forged(context, request_name))
    await settled(nc, admin)
    assert await counts(admin) == before
    for context in CONTEXTS:
        assert not await stored_under(admin, forged(context, request_name))


@pytest.mark.parametrize("user", ["agenda", "registration", "declarations"])
async def test_a_push_consumer_aimed_at_a_context_delivers_nothing_into_its_stream(
    admin: NATS, clients: dict[str, NATS], victim: int, user: str
) -> None:
    js = clients[user].jetstream()
    before = await counts(admin)
    names = []
    for source in ("AGENDA", "REGISTRATION"):
        for context in CONTEXTS:
            name = f"push-{user}-{source}-{context}".lower()
            config = ConsumerConfig(
                durable_name=name, deliver_subject=forged(context, f"push {user}")
            )
            if source.lower() == context:  # into the stream itself: refused as a cycle
                with pytest.raises(BadRequestError):
                    await js.add_consumer(source, config)
                continue
            await js.add_consumer(source, config)
            names.append((source, name))
    await admin.jetstream().publish("agenda.room.r-push.renamed", b"{}")
    await asyncio.sleep(1.0)  # a push consumer delivers at once, when it delivers at all
    after = await counts(admin)
    assert after == {**before, "AGENDA": before["AGENDA"] + 1}
    for context in CONTEXTS:
        assert not await stored_under(admin, forged(context, f"push {user}"))
    for source, name in names:
        await admin.jetstream().delete_consumer(source, name)


async def test_a_subscriber_listening_on_every_inbox_hears_no_one_elses_replies(
    admin: NATS, clients: dict[str, NATS], victim: int
) -> None:
    eavesdropper = await clients["subscriber"].subscribe("_INBOX.>")
    await clients["subscriber"].flush()
    await admin.jetstream().stream_info("REGISTRATION")
    for user in ("agenda", "registration", "declarations"):
        await clients[user].jetstream().stream_info("AGENDA")
        reply = await clients[user].request(
            "$JS.API.DIRECT.GET.REGISTRATION", json.dumps({"seq": victim}).encode(), timeout=2
        )
        assert reply.headers and reply.headers["Nats-Subject"] == VICTIM
    with pytest.raises(NatsTimeout):
        await eavesdropper.next_msg(timeout=0.5)


async def test_no_subscriber_nor_service_can_put_a_message_on_the_feed(
    admin: NATS, clients: dict[str, NATS]
) -> None:
    feed = await clients["subscriber"].subscribe("feed.agenda.>")
    await clients["subscriber"].jetstream().account_info()  # the subscription is in place
    for user in CLIENTS:
        await clients[user].publish("feed.agenda.session.s-forged.moved", b"{}")
    await settled(*clients.values())
    with pytest.raises(NatsTimeout):
        await feed.next_msg(timeout=0.3)

    # What the agenda service stores, and only that, comes out on the feed.
    outcome = await clients["agenda"].jetstream().publish("agenda.session.s-live.moved", b"{}")
    republished = await feed.next_msg(timeout=2)
    assert republished.subject == "feed.agenda.session.s-live.moved"
    assert republished.headers and republished.headers["Nats-Sequence"] == str(outcome.seq)


async def test_a_subscriber_reads_every_stream_by_direct_get(
    clients: dict[str, NATS], victim: int
) -> None:
    history = [message async for message in read_log(clients["subscriber"], "REGISTRATION")]
    assert [m.subject for m in history if m.sequence == victim] == [VICTIM]
    for spec in STREAMS.values():
        info = await clients["subscriber"].jetstream().stream_info(spec.name)
        assert info.config.subjects == spec.subjects
