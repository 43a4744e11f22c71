"""Webhooks to the Standard Webhooks specification, checked by an independent
implementation (the ``standardwebhooks`` package from PyPI)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from agora_events.contracts.agenda import SessionCancelled
from agora_events.store import EventStore
from agora_notifications.application import Notifications
from agora_notifications.settings import NotificationsSettings
from agora_notifications.webhooks import TargetRefused, check_target, pinned, signed_headers

if TYPE_CHECKING:
    from tests.conftest import Clock, Harness, Receiver, ServiceStarter, Upstream


async def register(service: Harness, url: str, patterns: list[str], **more: Any) -> dict[str, Any]:
    response = await service.client.post(
        "/endpoints", json={"url": url, "event_types": patterns} | more
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    await service.runtime.wait_for(answer["sequence"])
    return answer


async def test_a_subscribed_event_arrives_as_a_signed_cloudevent_that_standardwebhooks_verifies(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver
) -> None:
    async with start_service() as service:
        endpoint = await register(service, f"{receiver.url}/hook", ["agora.registration.*"])
        participant = await upstream.participant()
        await upstream.append(SessionCancelled(session_id="x1", edition_id="e", reason="r"))
        [post] = await receiver.wait_for(1)
        [notice] = await service.settled(1, channel="webhook")
    assert endpoint["secret"].startswith("whsec_")
    body = Webhook(endpoint["secret"]).verify(post.body, post.headers)
    assert body["type"] == "agora.registration.participant.registered.v1"
    assert body["specversion"] == "1.0"
    assert body["data"]["participant_id"] == participant
    assert post.headers["webhook-id"] == f"msg_{notice.notice_id}"
    assert post.headers["content-type"] == "application/cloudevents+json"
    assert notice.status == "delivered"
    # The agenda event matched no pattern: one post only.
    assert len(receiver.posts()) == 1


async def test_the_secret_is_shown_once_and_never_by_a_read(
    start_service: ServiceStarter, receiver: Receiver
) -> None:
    async with start_service() as service:
        endpoint = await register(service, receiver.url, ["*"])
        endpoint_id = endpoint["ids"]["endpoint_id"]
        shown = await service.client.get(f"/endpoints/{endpoint_id}")
        listed = await service.client.get("/endpoints")
    assert shown.status_code == 200
    assert endpoint["secret"] not in shown.text
    assert endpoint["secret"] not in listed.text
    assert shown.json()["secret_generation"] == 1


async def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver, clock: Clock
) -> None:
    async with start_service(rotation_overlap=3600) as service:
        endpoint = await register(service, receiver.url, ["agora.registration.*"])
        endpoint_id = endpoint["ids"]["endpoint_id"]
        rotated = await service.client.post(f"/endpoints/{endpoint_id}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        await service.runtime.wait_for(rotated.json()["sequence"])
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint["secret"]
        await upstream.participant()
        [during] = await receiver.wait_for(1)
        clock.hold()
        clock.advance(3601)
        await upstream.participant()
        posts = await receiver.wait_for(2)
    assert len({p.headers["webhook-id"] for p in posts}) == 2, [p.headers for p in posts]
    after = posts[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], new_secret):
        Webhook(secret).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        # The post was signed at the held clock's time: verify it against the new secret
        # with headers re-stamped as now, so only the secret differs.
        Webhook(endpoint["secret"]).verify(
            after.body, _restamped(after.headers, new_secret, after.body)
        )
    Webhook(new_secret).verify(after.body, _restamped(after.headers, new_secret, after.body))


def _restamped(headers: dict[str, str], secret: str, body: bytes) -> dict[str, str]:
    return signed_headers([secret], headers["webhook-id"], body)


async def test_a_tampered_body_or_an_old_timestamp_fails_verification(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver
) -> None:
    async with start_service() as service:
        endpoint = await register(service, receiver.url, ["agora.registration.*"])
        await upstream.participant()
        [post] = await receiver.wait_for(1)
    verifier = Webhook(endpoint["secret"])
    verifier.verify(post.body, post.headers)
    tampered = json.loads(post.body)
    tampered["data"]["email"] = "someone.else@example.org"
    with pytest.raises(WebhookVerificationError):
        verifier.verify(json.dumps(tampered).encode(), post.headers)
    old = signed_headers(
        [endpoint["secret"]],
        post.headers["webhook-id"],
        post.body,
        timestamp=int(time.time()) - 3600,
    )
    with pytest.raises(WebhookVerificationError):
        verifier.verify(post.body, old)


async def test_a_ping_posts_a_signed_test_event_and_answers_what_the_endpoint_said(
    start_service: ServiceStarter, receiver: Receiver
) -> None:
    async with start_service() as service:
        endpoint = await register(service, receiver.url, ["*"])
        receiver.answers = [202]
        response = await service.client.post(f"/endpoints/{endpoint['ids']['endpoint_id']}/ping")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == 202 and response.json()["ok"]
    [post] = receiver.posts()
    body = Webhook(endpoint["secret"]).verify(post.body, post.headers)
    assert body["type"] == "agora.notifications.endpoint.ping.v1"


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver, clock: Clock
) -> None:
    async with start_service() as service:
        await register(service, f"{receiver.url}/hook", ["agora.registration.*"])
        receiver.answers = [302]
        clock.hold()
        clock.advance(60)  # due at once, and the retry a second later never comes
        await upstream.participant()
        await receiver.wait_for(1)
        [row] = await service.attempted(1, channel="webhook")
    assert row.status == "pending" and row.reason == "HTTP 302"
    assert [p.path for p in receiver.posts()] == ["/hook"]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "http://example.org/hook",
    ],
)
async def test_a_private_or_plain_http_target_is_refused_in_production(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_target(url, production=True)


async def test_registering_a_loopback_endpoint_in_production_is_refused_before_anything_is_recorded(
    event_store: EventStore,
) -> None:
    settings = NotificationsSettings(
        env="production",
        nats_url="nats://nats:4222",
        database_url="postgresql+asyncpg://db/notifications",
        organiser_token="a-long-organiser-token-for-tests",
        signing_secret="k" * 40,
    )
    with pytest.raises(TargetRefused, match="not public"):
        await Notifications(event_store, settings).register_endpoint(
            "https://127.0.0.1:8443/hook", ["*"]
        )
    assert not await event_store.read("notifications.>")


async def test_a_local_target_is_allowed_in_local_mode() -> None:
    await check_target("http://127.0.0.1:9/hook", production=False)


def test_an_attempt_connects_to_the_address_checked_keeping_the_name_for_host_and_tls() -> None:
    assert pinned("https://hooks.example.org/in?x=1", "93.184.215.14") == (
        "https://93.184.215.14/in?x=1",
        "hooks.example.org",
        "hooks.example.org",
    )
    assert pinned("https://hooks.example.org:8443/in", "2606:2800:21f:cb07::1") == (
        "https://[2606:2800:21f:cb07::1]:8443/in",
        "hooks.example.org:8443",
        "hooks.example.org",
    )


async def test_a_removed_endpoint_is_no_longer_listed_nor_sent_to(
    start_service: ServiceStarter, upstream: Upstream, receiver: Receiver
) -> None:
    async with start_service() as service:
        endpoint = await register(service, receiver.url, ["agora.registration.*"])
        endpoint_id = endpoint["ids"]["endpoint_id"]
        removed = await service.client.delete(f"/endpoints/{endpoint_id}")
        assert removed.status_code == 200, removed.text
        await service.runtime.wait_for(removed.json()["sequence"])
        participant = await upstream.participant()
        await service.settled(1, recipient=participant)
        listed = (await service.client.get("/endpoints")).json()
        shown = await service.client.get(f"/endpoints/{endpoint_id}")
        again = await service.client.delete(f"/endpoints/{endpoint_id}")
    assert listed == []
    assert shown.status_code == 404
    assert again.status_code == 404
    assert receiver.posts() == []
