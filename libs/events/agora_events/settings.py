"""Settings shared by every service process: environment variables with safe local defaults.

Each service subclasses ``ServiceSettings`` with its own prefix (``AGORA_AGENDA_``…); the
NATS URL and the run mode may also come from the platform-wide ``AGORA_NATS_URL`` and
``AGORA_ENV``, and the CA for TLS to NATS from ``AGORA_NATS_TLS_CA_FILE``. Outside local
mode the well-known local organiser token is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .connection import TLS_CA_FILE_VARIABLE, tls_context

LOCAL_ORGANISER_TOKEN = "local-organiser-token"
PRODUCTION_STREAM_REPLICAS = 3
"""Replicas of a stream outside local mode: the production NATS cluster has three nodes."""


class ServiceSettings(BaseSettings):
    # A settings error never shows what it was given: the values are tokens, passwords and
    # URLs with credentials, and pydantic's message would quote them (a subclass's own
    # model_config is merged with this one, so every service's settings inherit it).
    model_config = SettingsConfigDict(
        env_prefix="AGORA_", extra="ignore", hide_input_in_errors=True
    )

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
    run_projections: bool = Field(
        default=True,
        description="false runs a replica that never projects: it follows the checkpoints "
        "that the projecting replica announces, so ?after= still answers as soon as it can",
    )
    run_reactors: bool = Field(
        default=True, description="false runs a replica without the service's reactors"
    )
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="replicas of the service's stream when it creates it "
        f"(default 1 in local mode, {PRODUCTION_STREAM_REPLICAS} outside it)",
    )
    nats_connect_timeout: float = Field(
        default=5.0, gt=0, description="seconds the first connection to NATS may take"
    )
    nats_tls_ca_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(TLS_CA_FILE_VARIABLE, "nats_tls_ca_file"),
        description="a CA bundle (PEM): connect to NATS over TLS, verifying the server against "
        "it (default: no TLS)",
    )
    public_url: str | None = Field(
        default=None,
        description="the base URL subscribers reach this service's HTTP API at; "
        "ce-dataschema names each event's schema below it (default http://<host>:<port>)",
    )
    projection_stall_seconds: float = Field(
        default=120.0,
        gt=0,
        description="seconds a projection may stay behind without its checkpoint moving "
        "before /readyz reports it stalled",
    )
    shutdown_timeout: float = Field(
        default=20.0,
        gt=0,
        description="seconds a stop may take after SIGTERM before the process exits anyway",
    )
    max_requests_in_flight: int = Field(
        default=64,
        ge=0,
        description="HTTP requests in progress at once; the next one is answered 503 with "
        "Retry-After instead of queueing behind them (0: no limit); reads of one's own write "
        "(?after=) may take as many again",
    )

    @field_validator("nats_tls_ca_file")
    @classmethod
    def _readable_ca(cls, value: Path | None) -> Path | None:
        if value is not None:
            tls_context(value)  # at start, not at the first connection
        return value

    @property
    def base_url(self) -> str:
        """Where this service's HTTP API answers: ``public_url``, else its own address."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> ServiceSettings:
        prefix = self.model_config.get("env_prefix", "")
        if self.env != "local" and self.organiser_token.get_secret_value() == LOCAL_ORGANISER_TOKEN:
            raise ValueError(
                "the local organiser token is refused outside local mode: "
                f"set an organiser token of your own in {prefix}ORGANISER_TOKEN"
            )
        if self.env != "local" and len(self.organiser_token.get_secret_value()) < 16:
            raise ValueError(
                f"the organiser token ({prefix}ORGANISER_TOKEN) must be at least 16 characters long"
            )
        # A deployment that forgot one of these would run on a file of its own, or look for
        # NATS on its own loopback, instead of failing where the missing variable shows.
        unset = [
            f"{prefix}{name.upper()}"
            for name in ("nats_url", "database_url")
            if name not in self.model_fields_set
        ]
        if self.env != "local" and unset:
            raise ValueError(
                f"outside local mode, set {' and '.join(unset)}: the local defaults are refused"
            )
        if self.env != "local" and "stream_replicas" not in self.model_fields_set:
            self.stream_replicas = PRODUCTION_STREAM_REPLICAS
        return self
