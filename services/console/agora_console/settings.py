"""The console process's settings: ``AGORA_CONSOLE_*`` variables, with ``AGORA_NATS_URL`` and
``AGORA_ENV`` shared by the whole platform."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from agora_events.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGORA_CONSOLE_", extra="ignore", populate_by_name=True
    )

    env: Literal["local", "production"] = Field(
        default="local",
        validation_alias=AliasChoices("AGORA_CONSOLE_ENV", "AGORA_ENV", "env"),
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("AGORA_CONSOLE_NATS_URL", "AGORA_NATS_URL", "nats_url"),
    )
    http_port: int = 8105
    database_url: str = "sqlite+aiosqlite:///.agora/console.db"
    agenda_url: str = Field(
        default="http://127.0.0.1:8101", description="agenda's HTTP API, for the console"
    )
    registration_url: str = Field(
        default="http://127.0.0.1:8102", description="registration's HTTP API, for the console"
    )
    declarations_url: str = Field(
        default="http://127.0.0.1:8103", description="declarations' HTTP API, for the console"
    )
    notifications_url: str = Field(
        default="http://127.0.0.1:8104", description="notifications' HTTP API (its readiness)"
    )
    agenda_public_url: str | None = Field(
        default=None,
        description="where a browser reaches agenda (its calendar links); default agenda_url",
    )
    services_organiser_token: SecretStr | None = Field(
        default=None,
        description="the organiser token the console sends to the services; default its own "
        "organiser token (AGORA_CONSOLE_ORGANISER_TOKEN), which organisers sign in with",
    )
    service_timeout: float = Field(
        default=10.0, gt=0, description="seconds a command sent to a service may take"
    )
    gate_name: str = Field(default="console", description="the gate the gate page checks at")

    @property
    def calendar_base(self) -> str:
        return (self.agenda_public_url or self.agenda_url).rstrip("/")

    @property
    def outgoing_token(self) -> str:
        token = self.services_organiser_token or self.organiser_token
        return token.get_secret_value()
