from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def no_local_platform(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The CLI finds a platform through ``$AGORA_HOME/endpoints.json``; a developer's own
    ``.agora`` must not steer the tests, which say where their NATS is."""
    home: Path = tmp_path_factory.mktemp("no-agora-home")
    monkeypatch.setenv("AGORA_HOME", str(home))
    monkeypatch.delenv("AGORA_NATS_URL", raising=False)
