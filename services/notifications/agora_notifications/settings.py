"""The notifications process's settings: ``AGORA_NOTIFICATIONS_*`` variables, with
``AGORA_NATS_URL`` and ``AGORA_ENV`` shared by the whole platform."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from agora_events.settings import ServiceSettings

from .domain import RetrySchedule

LOCAL_SIGNING_SECRET = "local-notifications-signing-key"


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGORA_NOTIFICATIONS_", extra="ignore", populate_by_name=True
    )

    env: Literal["local", "production"] = Field(
        default="local",
        validation_alias=AliasChoices("AGORA_NOTIFICATIONS_ENV", "AGORA_ENV", "env"),
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("AGORA_NOTIFICATIONS_NATS_URL", "AGORA_NATS_URL", "nats_url"),
    )
    http_port: int = 8104
    database_url: str = "sqlite+aiosqlite:///.agora/notifications.db"

    # -- email --
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = Field(
        default=False, description="upgrade the connection with STARTTLS (a production relay)"
    )
    smtp_tls: bool = Field(default=False, description="implicit TLS from the first byte (465)")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: str | None = Field(
        default=None,
        description="CA bundle the relay's certificate is checked against (default: the system's)",
    )
    smtp_timeout: float = Field(default=30.0, gt=0)
    mail_from: str = "Agora <notifications@agora.localhost>"
    message_id_domain: str = "notifications.agora"
    organiser_emails: tuple[str, ...] = Field(
        default=("organisers@agora.localhost",),
        description="who hears of signatures, withdrawals and disabled endpoints",
    )
    digest_window: float = Field(
        default=300.0,
        ge=0,
        description="seconds a session change waits for further changes to the same "
        "session, so that several become one mail",
    )

    # -- webhooks --
    signing_secret: SecretStr = Field(
        default=SecretStr(LOCAL_SIGNING_SECRET),
        description="key every endpoint's signing secret is derived from (never stored)",
    )
    webhook_timeout: float = Field(default=10.0, gt=0)
    rotation_overlap: float = Field(
        default=86400.0, gt=0, description="seconds the previous secret still signs"
    )
    disable_after: float = Field(
        default=3 * 86400.0,
        gt=0,
        description="seconds an endpoint may fail continuously before it is disabled",
    )

    # -- delivery --
    retry_base: float = Field(default=5.0, gt=0)
    retry_factor: float = Field(default=2.0, ge=1)
    retry_cap: float = Field(default=3600.0, gt=0)
    retry_attempts: int = Field(default=12, ge=1)
    retry_jitter: float = Field(default=0.2, ge=0, le=1)
    deliveries_in_flight: int = Field(default=16, ge=1)
    poll_every: float = Field(
        default=0.5, gt=0, description="seconds between looks for notices that became due"
    )

    @property
    def schedule(self) -> RetrySchedule:
        return RetrySchedule(
            self.retry_base,
            self.retry_factor,
            self.retry_cap,
            self.retry_attempts,
            self.retry_jitter,
        )

    @model_validator(mode="after")
    def _refuse_local_secrets(self) -> NotificationsSettings:
        key = self.signing_secret.get_secret_value()
        if self.env != "local" and (key == LOCAL_SIGNING_SECRET or len(key) < 32):
            raise ValueError(
                "outside local mode, set AGORA_NOTIFICATIONS_SIGNING_SECRET to a secret of your "
                "own, at least 32 characters long"
            )
        return self
