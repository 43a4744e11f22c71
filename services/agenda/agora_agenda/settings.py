"""The agenda process's settings: ``AGORA_AGENDA_*`` variables, with ``AGORA_NATS_URL`` and
``AGORA_ENV`` shared by the whole platform."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from agora_events.settings import ServiceSettings


class AgendaSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGORA_AGENDA_", extra="ignore", populate_by_name=True
    )

    env: Literal["local", "production"] = Field(
        default="local", validation_alias=AliasChoices("AGORA_AGENDA_ENV", "AGORA_ENV", "env")
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("AGORA_AGENDA_NATS_URL", "AGORA_NATS_URL", "nats_url"),
    )
    http_port: int = 8101
    database_url: str = "sqlite+aiosqlite:///.agora/agenda.db"
