"""Events of the notifications context (stream NOTIFICATIONS).

Two aggregates write here:

* ``notifications.notice.<notice_id>.<event>``: one notice, decided once per (rule,
  triggering event, recipient) — its id is derived from that triple — then its delivery:
  attempts that failed, the one that succeeded, or the dead letter it became (and what an
  operator did with it);
* ``notifications.endpoint.<endpoint_id>.<event>``: a webhook endpoint: its URL, the event
  types it subscribes to, its signing-secret generation, and whether it is enabled.

Subjects carry ids only. A notice's body holds what it needs to be delivered (the address,
the language, the rendered facts), so a delivery never depends on a read model; secrets never
enter the log (an endpoint's secret is derived from the service's key and its generation).
Published contract: fields may be added (optional, with defaults) within a major version;
anything else is a new version with an upcaster.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from ..catalogue import DomainEvent, catalogue

Channel = Literal["email", "webhook"]
_NOTICE_ID = "derived from (rule, triggering event id, recipient): one notice per triple"
_ATTEMPT = "1 for the first attempt"


# -- notice --------------------------------------------------------------------------------


@catalogue.event("notifications", "notice", "decided", id_field="notice_id")
class NoticeDecided(DomainEvent):
    """A rule decided that a recipient is told of an event; delivery follows."""

    notice_id: str = Field(description=_NOTICE_ID)
    rule: str
    trigger_event_id: str
    trigger_type: str = Field(description="ce-type of the triggering event")
    recipient: str = Field(description="participant id, 'organisers', or a webhook endpoint id")
    channel: Channel
    address: str | None = Field(default=None, description="the email address, for email")
    language: str = Field(default="en", description="BCP 47 tag the notice is written in")
    facts: dict[str, Any] = Field(
        default_factory=dict, description="what the template renders, as the rule found it"
    )
    not_before: AwareDatetime = Field(description="not delivered before (a digest's window)")
    digest_key: str | None = Field(
        default=None, description="notices with the same key due together are sent as one"
    )


@catalogue.event("notifications", "notice", "attempt_failed", id_field="notice_id")
class DeliveryAttemptFailed(DomainEvent):
    notice_id: str
    attempt: int = Field(ge=1, description=_ATTEMPT)
    error: str = Field(description="what went wrong, without personal data")
    status: int | None = Field(default=None, description="the HTTP status, for webhooks")
    latency_ms: int | None = None
    next_attempt_at: AwareDatetime | None = Field(
        default=None, description="when it is tried again; absent when it is not"
    )


@catalogue.event("notifications", "notice", "delivered", id_field="notice_id")
class NoticeDelivered(DomainEvent):
    """The remote accepted it (the SMTP relay, or the endpoint with a 2xx)."""

    notice_id: str
    attempt: int = Field(ge=1, description=_ATTEMPT)
    message_id: str = Field(description="the mail's Message-ID or the webhook-id sent")
    status: int | None = None
    latency_ms: int | None = None
    digest_of: tuple[str, ...] = Field(
        default=(), description="the other notices this one delivery carried (a digest)"
    )
    carried_by: str | None = Field(
        default=None, description="the notice whose delivery carried this one (a digest)"
    )


@catalogue.event("notifications", "notice", "dead_lettered", id_field="notice_id")
class NoticeDeadLettered(DomainEvent):
    """Given up: the retry schedule ran out, or the endpoint is gone or disabled."""

    notice_id: str
    attempts: int = Field(ge=0)
    reason: str


@catalogue.event("notifications", "notice", "requeued", id_field="notice_id")
class NoticeRequeued(DomainEvent):
    """An operator sent a dead letter back for delivery, with a fresh schedule."""

    notice_id: str


@catalogue.event("notifications", "notice", "discarded", id_field="notice_id")
class NoticeDiscarded(DomainEvent):
    """An operator gave a dead letter up for good."""

    notice_id: str
    reason: str | None = None


# -- endpoint --------------------------------------------------------------------------------


@catalogue.event("notifications", "endpoint", "registered", id_field="endpoint_id")
class EndpointRegistered(DomainEvent):
    endpoint_id: str
    url: str
    event_types: tuple[str, ...] = Field(
        min_length=1, description="ce-type patterns: exact, or ending in '*' (a prefix)"
    )
    description: str | None = None


@catalogue.event("notifications", "endpoint", "secret_rotated", id_field="endpoint_id")
class EndpointSecretRotated(DomainEvent):
    """A new signing secret; the previous one still signs until ``previous_valid_until``."""

    endpoint_id: str
    generation: int = Field(ge=2)
    previous_valid_until: AwareDatetime


@catalogue.event("notifications", "endpoint", "disabled", id_field="endpoint_id")
class EndpointDisabled(DomainEvent):
    endpoint_id: str
    reason: str
    failing_since: AwareDatetime | None = None


@catalogue.event("notifications", "endpoint", "enabled", id_field="endpoint_id")
class EndpointEnabled(DomainEvent):
    endpoint_id: str


@catalogue.event("notifications", "endpoint", "removed", id_field="endpoint_id")
class EndpointRemoved(DomainEvent):
    endpoint_id: str
