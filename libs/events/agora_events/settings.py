"""Settings shared by every service process: environment variables with safe local defaults.

Each service subclasses ``ServiceSettings`` with its own prefix (``AGORA_AGENDA_``…); the
NATS URL and the run mode may also come from the platform-wide ``AGORA_NATS_URL`` and
``AGORA_ENV``. Outside local mode the well-known local organiser token is refused.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_ORGANISER_TOKEN = "local-organiser-token"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGORA_", extra="ignore")

    env: Literal["local", "production"] = "local"
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "sqlite+aiosqlite:///.agora/agora.db"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    organiser_token: SecretStr = SecretStr(LOCAL_ORGANISER_TOKEN)
    database_schema: str | None = Field(
        default=None, description="PostgreSQL only: keep the read model in this schema"
    )
    read_your_writes_timeout: float = 2.0
    run_projections: bool = True
    run_reactors: bool = Field(
        default=True, description="false runs a replica without the service's reactors"
    )
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="replicas of the service's stream when it creates it"
    )
    nats_connect_timeout: float = Field(
        default=5.0, gt=0, description="seconds the first connection to NATS may take"
    )
    public_url: str | None = Field(
        default=None,
        description="the base URL subscribers reach this service's HTTP API at; "
        "ce-dataschema names each event's schema below it (default http://<host>:<port>)",
    )
    shutdown_timeout: float = Field(
        default=20.0,
        gt=0,
        description="seconds a stop may take after SIGTERM before the process exits anyway",
    )

    @property
    def base_url(self) -> str:
        """Where this service's HTTP API answers: ``public_url``, else its own address."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> ServiceSettings:
        if self.env != "local" and self.organiser_token.get_secret_value() == LOCAL_ORGANISER_TOKEN:
            raise ValueError(
                "the local organiser token is refused outside local mode: "
                "set an organiser token of your own in the environment"
            )
        if self.env != "local" and len(self.organiser_token.get_secret_value()) < 16:
            raise ValueError("the organiser token must be at least 16 characters long")
        return self
