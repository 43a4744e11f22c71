"""The registration process's settings: ``AGORA_REGISTRATION_*`` variables, with
``AGORA_NATS_URL`` and ``AGORA_ENV`` shared by the whole platform."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from agora_events.settings import ServiceSettings
from agora_events.tokens import LOCAL_PARTICIPANT_SECRET, guessable


class RegistrationSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGORA_REGISTRATION_", extra="ignore", populate_by_name=True
    )

    env: Literal["local", "production"] = Field(
        default="local",
        validation_alias=AliasChoices("AGORA_REGISTRATION_ENV", "AGORA_ENV", "env"),
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("AGORA_REGISTRATION_NATS_URL", "AGORA_NATS_URL", "nats_url"),
    )
    http_port: int = 8102
    database_url: str = "sqlite+aiosqlite:///.agora/registration.db"
    participant_token_secret: SecretStr = Field(
        default=SecretStr(LOCAL_PARTICIPANT_SECRET),
        description="Key of the HMAC that makes a participant's bearer token from their id",
    )

    @model_validator(mode="after")
    def _refuse_a_guessable_participant_secret(self) -> RegistrationSettings:
        secret = self.participant_token_secret.get_secret_value()
        if self.env != "local" and guessable(secret):
            raise ValueError(
                "outside local mode, set AGORA_REGISTRATION_PARTICIPANT_TOKEN_SECRET to a "
                "secret of your own, at least 32 characters long"
            )
        return self
