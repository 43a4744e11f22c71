"""The HTTP API: webhook endpoints (register, rotate, ping, disable, enable, replay, their
delivery log), notices, and dead letters (retry, discard). Every route is the organisers'."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, Field

from agora_events.catalogue import validate_aggregate_id
from agora_events.decider import NotFound
from agora_events.http import CallerOf, CommandAccepted, accepted, organiser_required
from agora_events.service import Reader, commands_of
from agora_events.text import Line

from . import queries
from .application import EndpointOutcome, Notifications
from .settings import NotificationsSettings
from .webhooks import TargetRefused, WebhookPoster, body_of, signed_headers

Commands = Annotated[Notifications, Depends(commands_of(Notifications))]
ORGANISER = "organiser"
Limit = Annotated[int, Query(ge=1, le=1000)]


class EndpointRequest(BaseModel):
    url: str = Field(min_length=8, max_length=2000)
    event_types: list[str] = Field(
        min_length=1,
        max_length=32,
        description="ce-type patterns: 'agora.agenda.session.moved.v1', or a prefix ending "
        "in '*' such as 'agora.registration.*'",
    )
    description: Line | None = Field(default=None, max_length=300)


class SecretAccepted(CommandAccepted):
    secret: str = Field(description="the signing secret (whsec_…): shown in this answer only")


class DisableRequest(BaseModel):
    reason: Line = Field(min_length=1, max_length=300)


class DiscardRequest(BaseModel):
    reason: Line | None = Field(default=None, max_length=300)


class PingResult(BaseModel):
    webhook_id: str
    status: int | None
    latency_ms: int
    error: str | None
    ok: bool


class ReplayRequest(BaseModel):
    stream: Literal["REGISTRATION", "AGENDA", "DECLARATIONS"] | None = Field(
        default=None, description="only this stream (with after_sequence); every one if absent"
    )
    after_sequence: int | None = Field(default=None, ge=0)
    since: AwareDatetime | None = None


class ReplayAccepted(BaseModel):
    replay_id: str
    notices: int


def _secret(outcome: EndpointOutcome) -> SecretAccepted:
    return SecretAccepted(**accepted(outcome).model_dump(), secret=outcome.secret)


def _endpoint_id(endpoint_id: str) -> str:
    validate_aggregate_id(endpoint_id)
    return endpoint_id


def endpoint_routes(settings: NotificationsSettings) -> APIRouter:
    organiser = Depends(organiser_required(settings.organiser_token.get_secret_value))
    router = APIRouter(prefix="/endpoints", tags=["webhooks"], dependencies=[organiser])

    @router.post("", status_code=201)
    async def register(
        body: EndpointRequest, commands: Commands, caller: CallerOf
    ) -> SecretAccepted:
        """A webhook endpoint. The answer holds its signing secret, never shown again."""
        try:
            outcome = await commands.register_endpoint(
                body.url, body.event_types, body.description, caller.acting_as(ORGANISER)
            )
        except TargetRefused as exc:
            raise HTTPException(422, str(exc)) from None
        return _secret(outcome)

    @router.get("")
    async def listing(db: Reader) -> list[queries.EndpointView]:
        return await queries.endpoint_list(db)

    @router.get("/{endpoint_id}")
    async def one(endpoint_id: str, db: Reader) -> queries.EndpointView:
        return await queries.endpoint(db, _endpoint_id(endpoint_id))

    @router.get("/{endpoint_id}/deliveries")
    async def deliveries(
        endpoint_id: str, db: Reader, limit: Limit = 100
    ) -> list[queries.AttemptView]:
        """The delivery log: each attempt's outcome, HTTP status and latency, newest first."""
        return await queries.delivery_log(db, _endpoint_id(endpoint_id), limit)

    @router.post("/{endpoint_id}/rotate-secret")
    async def rotate(endpoint_id: str, commands: Commands, caller: CallerOf) -> SecretAccepted:
        """A new secret; the previous one signs too for the overlap period."""
        outcome = await commands.rotate_secret(
            _endpoint_id(endpoint_id), datetime.now(UTC), caller.acting_as(ORGANISER)
        )
        return _secret(outcome)

    @router.post("/{endpoint_id}/disable")
    async def disable(
        endpoint_id: str, body: DisableRequest, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        outcome = await commands.disable_endpoint(
            _endpoint_id(endpoint_id), body.reason, caller=caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    @router.post("/{endpoint_id}/enable")
    async def enable(endpoint_id: str, commands: Commands, caller: CallerOf) -> CommandAccepted:
        outcome = await commands.enable_endpoint(
            _endpoint_id(endpoint_id), caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    @router.delete("/{endpoint_id}")
    async def remove(endpoint_id: str, commands: Commands, caller: CallerOf) -> CommandAccepted:
        outcome = await commands.remove_endpoint(
            _endpoint_id(endpoint_id), caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    @router.post("/{endpoint_id}/ping")
    async def ping(endpoint_id: str, commands: Commands) -> PingResult:
        """Post a signed test event now and answer what the endpoint said (not recorded)."""
        endpoint = await commands.endpoint(_endpoint_id(endpoint_id))
        if endpoint.status in ("none", "removed"):
            raise NotFound(f"there is no webhook endpoint {endpoint_id}")
        now = datetime.now(UTC)
        ping_id = f"ping_{endpoint_id}_{int(now.timestamp() * 1000)}"
        event = {
            "specversion": "1.0",
            "id": ping_id,
            "source": "/agora/notifications",
            "type": "agora.notifications.endpoint.ping.v1",
            "time": now.isoformat(),
            "datacontenttype": "application/json",
            "data": {"endpoint_id": endpoint_id},
        }
        secrets = [commands.secret_of(endpoint_id, endpoint.generation)]
        previous = endpoint.previous_valid_until
        if endpoint.generation > 1 and previous is not None and now < previous:
            secrets.append(commands.secret_of(endpoint_id, endpoint.generation - 1))
        body = body_of(event)
        poster = WebhookPoster(timeout=settings.webhook_timeout, production=settings.env != "local")
        try:
            posted = await poster.post(endpoint.url, signed_headers(secrets, ping_id, body), body)
        finally:
            await poster.close()
        return PingResult(
            webhook_id=ping_id,
            status=posted.status,
            latency_ms=posted.latency_ms,
            error=posted.error,
            ok=posted.ok,
        )

    @router.post("/{endpoint_id}/replay", status_code=202)
    async def replay(
        endpoint_id: str, body: ReplayRequest, commands: Commands, caller: CallerOf
    ) -> ReplayAccepted:
        """Send the endpoint again every event it subscribes to from a stream position
        (``stream`` and ``after_sequence``) or a time (``since``), as new notices."""
        if (body.after_sequence is None) == (body.since is None):
            raise HTTPException(422, "give after_sequence (with stream) or since, not both")
        if body.after_sequence is not None and body.stream is None:
            raise HTTPException(422, "after_sequence needs the stream it counts in")
        replay_id, count = await commands.replay(
            _endpoint_id(endpoint_id),
            stream=body.stream,
            after_sequence=body.after_sequence or 0,
            since=body.since,
            caller=caller.acting_as(ORGANISER),
        )
        return ReplayAccepted(replay_id=replay_id, notices=count)

    return router


def notice_routes(settings: NotificationsSettings) -> APIRouter:
    organiser = Depends(organiser_required(settings.organiser_token.get_secret_value))
    router = APIRouter(tags=["notices"], dependencies=[organiser])

    @router.get("/notices")
    async def notice_list(
        db: Reader,
        status: Literal["pending", "delivered", "dead", "discarded"] | None = None,
        recipient: str | None = None,
        limit: Limit = 100,
    ) -> list[queries.NoticeView]:
        return await queries.notice_list(db, status=status, recipient=recipient, limit=limit)

    @router.get("/notices/{notice_id}")
    async def notice(notice_id: str, db: Reader) -> queries.NoticeView:
        return await queries.notice(db, notice_id)

    @router.get("/dead-letters")
    async def dead_letters(db: Reader, limit: Limit = 100) -> list[queries.NoticeView]:
        return await queries.notice_list(db, status="dead", recipient=None, limit=limit)

    @router.post("/dead-letters/{notice_id}/retry")
    async def retry(notice_id: str, commands: Commands, caller: CallerOf) -> CommandAccepted:
        """Deliver it again, with a fresh retry schedule."""
        validate_aggregate_id(notice_id)
        return accepted(await commands.requeue(notice_id, caller.acting_as(ORGANISER)))

    @router.post("/dead-letters/{notice_id}/discard")
    async def discard(
        notice_id: str, commands: Commands, caller: CallerOf, body: DiscardRequest | None = None
    ) -> CommandAccepted:
        validate_aggregate_id(notice_id)
        reason = body.reason if body else None
        return accepted(await commands.discard(notice_id, reason, caller.acting_as(ORGANISER)))

    return router


def routers(settings: NotificationsSettings) -> Sequence[APIRouter]:
    return [endpoint_routes(settings), notice_routes(settings)]
