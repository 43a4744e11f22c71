"""The declarations process's settings: ``AGORA_DECLARATIONS_*`` variables, with
``AGORA_NATS_URL`` and ``AGORA_ENV`` shared by the whole platform."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from agora_events.settings import ServiceSettings
from agora_events.tokens import LOCAL_PARTICIPANT_SECRET, guessable


class DeclarationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGORA_DECLARATIONS_", extra="ignore", populate_by_name=True
    )

    env: Literal["local", "production"] = Field(
        default="local",
        validation_alias=AliasChoices("AGORA_DECLARATIONS_ENV", "AGORA_ENV", "env"),
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("AGORA_DECLARATIONS_NATS_URL", "AGORA_NATS_URL", "nats_url"),
    )
    http_port: int = 8103
    database_url: str = "sqlite+aiosqlite:///.agora/declarations.db"
    participant_token_secret: SecretStr = Field(
        default=SecretStr(LOCAL_PARTICIPANT_SECRET),
        description=(
            "The key registration makes participant tokens with (the same value as "
            "AGORA_REGISTRATION_PARTICIPANT_TOKEN_SECRET), so a participant signs with theirs"
        ),
    )

    @model_validator(mode="after")
    def _refuse_a_guessable_participant_secret(self) -> DeclarationsSettings:
        if self.env != "local" and guessable(self.participant_token_secret.get_secret_value()):
            raise ValueError(
                "outside local mode, set AGORA_DECLARATIONS_PARTICIPANT_TOKEN_SECRET to "
                "registration's participant token secret (at least 32 characters)"
            )
        return self
