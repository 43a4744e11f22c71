"""Delivery that survives faults: the retry schedule followed (on a clock the test moves,
with the jitter drawn as 0), dead letters retried and discarded, endpoints that fail
disabled and re-enabled, replays, and no second send after a restart or a redelivery."""

from __future__ import annotations

import itertools
import socket
from typing import TYPE_CHECKING, Any

from nats.aio.client import Client as NatsClient
from standardwebhooks import Webhook

from agora_events.contracts.notifications import DeliveryAttemptFailed, NoticeDeadLettered
from agora_events.store import EventStore
from agora_notifications.delivery import Dispatcher
from agora_notifications.webhooks import signed_headers

if TYPE_CHECKING:
    from tests.conftest import Clock, Harness, Inbox, Receiver, ServiceStarter, Upstream


async def register(service: Harness, url: str, patterns: list[str]) -> dict[str, Any]:
    response = await service.client.post("/endpoints", json={"url": url, "event_types": patterns})
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    await service.runtime.wait_for(answer["sequence"])
    return answer


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def failures(store: EventStore, notice_id: str) -> list[DeliveryAttemptFailed]:
    history = await store.read(f"notifications.notice.{notice_id}.*")
    return [r.event for r in history if isinstance(r.event, DeliveryAttemptFailed)]


async def step(service: Harness, clock: Clock, attempts: int, seconds: float, **where: str) -> None:
    """Wait for ``attempts`` recorded attempts, then move the clock on ``seconds``."""
    await service.attempted(attempts, **where)
    clock.advance(seconds)
    service.tick()


async def test_with_the_smtp_relay_down_the_schedule_is_followed_then_a_dead_letter_is_retried_once(
    start_service: ServiceStarter,
    upstream: Upstream,
    inbox: Inbox,
    clock: Clock,
    event_store: EventStore,
) -> None:
    down = closed_port()
    clock.hold()
    clock.advance(10)
    async with start_service(smtp_port=down, retry_attempts=4) as service:
        participant = await upstream.participant()
        for attempts, wait in ((1, 1.0), (2, 2.0), (3, 4.0)):
            await step(service, clock, attempts, wait, recipient=participant)
        [dead] = await service.settled(1, recipient=participant)
        assert dead.status == "dead"
        failed = await failures(event_store, dead.notice_id)
        assert [f.attempt for f in failed] == [1, 2, 3, 4]
        planned = [f.next_attempt_at for f in failed[:-1]]
        gaps = [
            (later - earlier).total_seconds()
            for earlier, later in itertools.pairwise(planned)
            if earlier and later
        ]
        # Each wait doubles (1 s, 2 s, 4 s); the fourth attempt is the last.
        assert gaps == [2.0, 4.0]
        assert failed[-1].next_attempt_at is None
        assert all(f.error == "SMTPConnectError" for f in failed)
        listed = await service.client.get("/dead-letters")
        assert [d["notice_id"] for d in listed.json()] == [dead.notice_id]

        # The relay is back (on the port the service was told), and the dead letter retried.
        service.runtime.settings.smtp_port = inbox.port
        retried = await service.client.post(f"/dead-letters/{dead.notice_id}/retry")
        assert retried.status_code == 200, retried.text
        await service.runtime.wait_for(retried.json()["sequence"])
        service.tick()
        [delivered] = await service.settled(1, recipient=participant)
        again = await service.client.post(f"/dead-letters/{dead.notice_id}/retry")
    assert delivered.status == "delivered"
    assert len(inbox.messages) == 1
    assert again.status_code == 409


async def test_a_permanent_smtp_refusal_is_a_dead_letter_at_once_and_can_be_discarded(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox
) -> None:
    inbox.refuse_with = "550 mailbox unavailable"
    async with start_service() as service:
        participant = await upstream.participant()
        [dead] = await service.settled(1, recipient=participant)
        assert dead.status == "dead" and dead.reason == "SMTP 550"
        discarded = await service.client.post(
            f"/dead-letters/{dead.notice_id}/discard", json={"reason": "address gone"}
        )
        assert discarded.status_code == 200, discarded.text
        await service.runtime.wait_for(discarded.json()["sequence"])
        [row] = await service.notices(recipient=participant)
    assert row.status == "discarded"


async def test_an_endpoint_answering_500_is_retried_on_schedule_and_its_log_shows_each_attempt(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver, clock: Clock
) -> None:
    clock.hold()
    clock.advance(10)
    async with start_service() as service:
        endpoint = await register(service, receiver.url, ["agora.registration.*"])
        endpoint_id = endpoint["ids"]["endpoint_id"]
        receiver.answers = [500, 503]
        await upstream.participant()
        await step(service, clock, 1, 1.0, channel="webhook")
        await step(service, clock, 2, 2.0, channel="webhook")
        [row] = await service.settled(1, channel="webhook")
        log = (await service.client.get(f"/endpoints/{endpoint_id}/deliveries")).json()
    assert row.status == "delivered"
    assert [(a["attempt"], a["outcome"], a["status"]) for a in log] == [
        (3, "delivered", 204),
        (2, "failed", 503),
        (1, "failed", 500),
    ]
    assert all(isinstance(a["latency_ms"], int) for a in log)
    posts = receiver.posts()
    assert len(posts) == 3
    assert len({p.headers["webhook-id"] for p in posts}) == 1
    for post in posts:
        Webhook(endpoint["secret"]).verify(
            post.body, _now_stamped(post.headers, endpoint["secret"], post.body)
        )


def _now_stamped(headers: dict[str, str], secret: str, body: bytes) -> dict[str, str]:
    """The headers as signed at the held clock's time, re-signed now: the test clock runs
    ahead of standardwebhooks' tolerance, and only the signature scheme is checked here."""
    return signed_headers([secret], headers["webhook-id"], body)


async def test_an_endpoint_that_hangs_times_out_and_is_tried_again(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver, clock: Clock
) -> None:
    clock.hold()
    clock.advance(10)
    async with start_service(webhook_timeout=0.5) as service:
        await register(service, receiver.url, ["agora.registration.*"])
        receiver.answers = [None]
        await upstream.participant()
        [row] = await service.attempted(1, channel="webhook")
        assert row.reason == "timed out"
        receiver.release()
        clock.advance(1)
        service.tick()
        [row] = await service.settled(1, channel="webhook")
    assert row.status == "delivered" and row.attempts == 2


async def test_an_endpoint_answering_410_is_disabled_the_organisers_told_and_it_can_be_re_enabled(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver, inbox: Inbox
) -> None:
    async with start_service() as service:
        endpoint = await register(service, receiver.url, ["agora.registration.*"])
        endpoint_id = endpoint["ids"]["endpoint_id"]
        receiver.answers = [410]
        await upstream.participant()
        [dead] = await service.settled(1, channel="webhook")
        [told] = await inbox.wait_for(1, "organisers@forum.example")
        shown = (await service.client.get(f"/endpoints/{endpoint_id}")).json()
        assert shown["status"] == "disabled"
        enabled = await service.client.post(f"/endpoints/{endpoint_id}/enable")
        await service.runtime.wait_for(enabled.json()["sequence"])
        retried = await service.client.post(f"/dead-letters/{dead.notice_id}/retry")
        await service.runtime.wait_for(retried.json()["sequence"])
        service.tick()
        [row] = await service.settled(1, channel="webhook")
    assert dead.status == "dead" and dead.reason == "HTTP 410"
    assert told["Subject"] == f"Webhook endpoint {endpoint_id} disabled"
    assert row.status == "delivered"
    assert len(receiver.posts()) == 2


async def test_an_endpoint_failing_for_too_long_is_disabled_and_its_notices_dead_lettered(
    start_service: ServiceStarter,
    upstream: Upstream,
    receiver: Receiver,
    inbox: Inbox,
    clock: Clock,
    event_store: EventStore,
) -> None:
    clock.hold()
    clock.advance(10)
    async with start_service(disable_after=3600, retry_attempts=10) as service:
        endpoint = await register(service, receiver.url, ["agora.registration.*"])
        endpoint_id = endpoint["ids"]["endpoint_id"]
        receiver.answers = [500] * 10
        await upstream.participant()
        await step(service, clock, 1, 3600.0, channel="webhook")
        [told] = await inbox.wait_for(1, "organisers@forum.example")

        async def disabled() -> bool:
            shown = await service.client.get(f"/endpoints/{endpoint_id}")
            return bool(shown.json()["status"] == "disabled")

        await service.until(disabled, "the endpoint disabled in the read model")
        # Disabled after the second failure; the notice's next attempt finds it so.
        await step(service, clock, 2, 60.0, channel="webhook")
        [row] = await service.settled(1, channel="webhook")
    assert row.status == "dead"
    assert len(receiver.posts()) == 2
    history = await event_store.read(f"notifications.notice.{row.notice_id}.*")
    dead = [r.event for r in history if isinstance(r.event, NoticeDeadLettered)]
    assert [d.reason for d in dead] == ["endpoint disabled"]
    assert told["Subject"] == f"Webhook endpoint {endpoint_id} disabled"


async def test_a_replay_sends_the_endpoint_again_what_it_subscribes_to_from_a_stream_position(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver
) -> None:
    async with start_service() as service:
        first = await upstream.participant()
        await service.settled(1, recipient=first)  # handled before the endpoint exists
        endpoint = await register(service, receiver.url, ["agora.registration.*"])
        endpoint_id = endpoint["ids"]["endpoint_id"]
        await upstream.participant()
        await receiver.wait_for(1)
        replay = await service.client.post(
            f"/endpoints/{endpoint_id}/replay",
            json={"stream": "REGISTRATION", "after_sequence": 0},
        )
        assert replay.status_code == 202, replay.text
        assert replay.json()["notices"] == 2
        posts = await receiver.wait_for(3)
        await service.settled(3, channel="webhook")
    replayed = [Webhook(endpoint["secret"]).verify(p.body, p.headers) for p in posts[1:]]
    assert {e["data"]["participant_id"] for e in replayed} == {first, "p0000002"}
    assert len({p.headers["webhook-id"] for p in posts}) == 3


async def test_a_replay_from_a_time_sends_only_what_was_stored_since(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver, event_store: EventStore
) -> None:
    async with start_service() as service:
        first = await upstream.participant()
        await service.settled(1, recipient=first)
        second = await upstream.participant()
        await service.settled(1, recipient=second)
        endpoint = await register(service, receiver.url, ["agora.registration.*"])
        stored = await event_store.read("registration.>")
        assert stored[0].time < stored[1].time
        since = stored[0].time + (stored[1].time - stored[0].time) / 2
        replay = await service.client.post(
            f"/endpoints/{endpoint['ids']['endpoint_id']}/replay",
            json={"since": since.isoformat()},
        )
        assert replay.status_code == 202, replay.text
        [post] = await receiver.wait_for(1)
        await service.settled(1, channel="webhook")
    assert replay.json()["notices"] == 1
    assert (
        Webhook(endpoint["secret"]).verify(post.body, post.headers)["data"]["participant_id"]
        == second
    )


async def test_a_restart_that_sees_every_event_again_sends_nothing_twice(
    start_service: ServiceStarter, upstream: Upstream, inbox: Inbox, nats_client: NatsClient
) -> None:
    async with start_service() as service:
        for _ in range(3):
            await upstream.participant()
        await service.settled(3)
        durables = [c.durable for c in service.runtime.reactor.consumers.values()]
    js = nats_client.jetstream()
    for durable, stream in zip(
        durables, ("REGISTRATION", "AGENDA", "DECLARATIONS", "NOTIFICATIONS"), strict=True
    ):
        await js.delete_consumer(stream, durable)
    async with start_service() as service:
        await upstream.participant()
        await service.runtime.reactor.wait_for(
            (await js.stream_info("REGISTRATION")).state.last_seq,
            stream="REGISTRATION",
            timeout=30,
        )
        await service.settled(4)
        # Every event before was seen again, and decided no new notice.
        assert len(await service.notices()) == 4
    assert len(inbox.messages) == 4
    assert len({m["Message-ID"] for m in inbox.messages}) == 4


async def test_a_second_dispatcher_on_the_same_database_stands_by(
    start_service: ServiceStarter,
) -> None:
    async with start_service() as service:
        assert await service.dispatcher.take_lease()
        second = Dispatcher(service.commands, service.runtime.db, service.runtime.settings)
        try:
            assert not await second.take_lease()
        finally:
            await second.stop()
