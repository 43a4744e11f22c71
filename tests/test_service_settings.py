"""Every service's settings outside local mode: refused defaults, and errors that never show a
value they were given (pydantic would quote it, and the error goes to a log)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agora_cli.services import SERVICES
from agora_events.settings import PRODUCTION_STREAM_REPLICAS

SECRET = "s3cr3t-value-that-must-never-be-printed"  # 39 characters, every field gets it


def settings_type(entry: Any) -> Any:
    return type(entry.load().load_settings())


def production(entry: Any, **overrides: str) -> dict[str, str]:
    prefix = entry.env_prefix
    return {
        "AGORA_ENV": "production",
        "AGORA_NATS_URL": "nats://agenda:pw@nats:4222",
        f"{prefix}DATABASE_URL": "postgresql+asyncpg://u:pw@db/x",
        **{prefix + name.upper(): value for name, value in overrides.items()},
    }


@pytest.mark.parametrize("entry", SERVICES, ids=lambda e: e.name)
def test_a_settings_error_never_shows_the_values_it_was_given(
    entry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = settings_type(entry)
    secret_fields = [name for name in kind.model_fields if "token" in name or "secret" in name]
    assert secret_fields
    for name, value in production(entry).items():
        monkeypatch.setenv(name, value)
    # Every secret given, all too short but one, so that the error concerns them.
    for name in secret_fields:
        monkeypatch.setenv(f"{entry.env_prefix}{name.upper()}", SECRET[:12])
    with pytest.raises(ValidationError) as refused:
        kind()
    shown = str(refused.value)  # what a traceback or a log of the error prints
    assert SECRET[:12] not in shown
    assert "pw@" not in shown


@pytest.mark.parametrize("entry", SERVICES, ids=lambda e: e.name)
@pytest.mark.parametrize("missing", ["DATABASE_URL", "NATS_URL"])
def test_production_refuses_the_local_database_and_nats_defaults(
    entry: Any, missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = settings_type(entry)
    secrets = {n: SECRET for n in kind.model_fields if "token" in n or "secret" in n}
    for name, value in production(entry, **secrets).items():
        if not name.endswith(missing):
            monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=f"{entry.env_prefix}{missing}"):
        kind()


@pytest.mark.parametrize("entry", SERVICES, ids=lambda e: e.name)
def test_production_streams_have_the_production_replicas_unless_told(
    entry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = settings_type(entry)
    secrets = {n: SECRET for n in kind.model_fields if "token" in n or "secret" in n}
    for name, value in production(entry, **secrets).items():
        monkeypatch.setenv(name, value)
    assert kind().stream_replicas == PRODUCTION_STREAM_REPLICAS
    monkeypatch.setenv(f"{entry.env_prefix}STREAM_REPLICAS", "1")
    assert kind().stream_replicas == 1
    monkeypatch.setenv("AGORA_ENV", "local")
    monkeypatch.delenv(f"{entry.env_prefix}STREAM_REPLICAS")
    assert kind().stream_replicas == 1
