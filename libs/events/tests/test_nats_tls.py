"""TLS to NATS from the kernel, on a real nats-server whose client port requires TLS with a
certificate of a test CA: the CA file in the settings makes the connections TLS, verified
against it; a CA file that cannot be used stops the start, naming the variable."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agora_events.connection import NatsUnavailable, connect, reactor_broker
from agora_events.nats_server import EmbeddedNats, free_port
from agora_events.settings import ServiceSettings
from agora_events.testing.certificates import certificate_authority, issue


@pytest.fixture(scope="module")
def tls_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("nats-tls")
    ca = certificate_authority(home / "ca")
    issue(home / "server", ca, common_name="nats", dns_names=["nats"], usages=("serverAuth",))
    return home


@pytest.fixture(scope="module")
def tls_server(tls_home: Path) -> Iterator[EmbeddedNats]:
    """As production's client port: TLS only, TLS-first clients at once, others after 300 ms."""
    server = tls_home / "server"
    config = tls_home / "nats.conf"
    config.write_text(
        "tls {\n"
        f"  cert_file: {server / 'tls.crt'}\n"
        f"  key_file: {server / 'tls.key'}\n"
        "  handshake_first: 300ms\n"
        "}\n"
    )
    with EmbeddedNats(tls_home / "store", monitor_port=free_port(), config_file=config) as running:
        yield running


@pytest.fixture
def ca_file(tls_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("AGORA_NATS_TLS_CA_FILE", raising=False)
    return tls_home / "ca" / "ca.crt"


def client(server: EmbeddedNats, name: str) -> dict[str, Any]:
    """The server's view of the connection called ``name``."""
    url = f"http://127.0.0.1:{server.monitor_port}/connz?limit=1024"
    with urllib.request.urlopen(url, timeout=5) as answer:
        connections: list[dict[str, Any]] = json.load(answer)["connections"]
    (found,) = [c for c in connections if c.get("name") == name]
    return found


async def test_the_settings_ca_file_makes_the_connection_tls_verified_against_it(
    tls_server: EmbeddedNats, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGORA_NATS_TLS_CA_FILE", str(ca_file))
    settings = ServiceSettings()
    assert settings.nats_tls_ca_file == ca_file
    nc = await connect(
        f"tls://127.0.0.1:{tls_server.port}",
        name="kernel-tls",
        tls_ca_file=settings.nats_tls_ca_file,
    )
    try:
        await nc.flush()
        seen = client(tls_server, "kernel-tls")
        assert seen["tls_version"] and seen["tls_first"], seen
    finally:
        await nc.close()


async def test_the_reactor_broker_connects_over_tls_with_the_same_ca(
    tls_server: EmbeddedNats, ca_file: Path
) -> None:
    broker = reactor_broker(
        f"tls://127.0.0.1:{tls_server.port}", name="kernel-tls-reactors", tls_ca_file=ca_file
    )
    await broker.connect()
    try:
        seen = client(tls_server, "kernel-tls-reactors")
        assert seen["tls_version"] and seen["tls_first"], seen
    finally:
        await broker.stop()


async def test_without_the_ca_a_tls_server_is_not_trusted_and_the_first_connection_fails(
    tls_server: EmbeddedNats, ca_file: Path
) -> None:
    with pytest.raises(NatsUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        await connect(f"tls://127.0.0.1:{tls_server.port}", name="no-ca", timeout=1)


def test_no_ca_file_is_the_local_default(ca_file: Path) -> None:
    assert ServiceSettings().nats_tls_ca_file is None


@pytest.mark.parametrize("problem", ["missing", "not a certificate"])
def test_a_ca_file_that_cannot_be_used_is_a_settings_error_naming_the_variable(
    tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    path = tmp_path / "ca.crt"
    if problem == "not a certificate":
        path.write_text("not a certificate\n")
    monkeypatch.setenv("AGORA_NATS_TLS_CA_FILE", str(path))
    with pytest.raises(ValidationError) as raised:
        ServiceSettings()
    (error,) = raised.value.errors()
    assert error["loc"] == ("AGORA_NATS_TLS_CA_FILE",)
    assert str(path) in error["msg"]
    assert ("No such file" if problem == "missing" else "holds no PEM certificate") in error["msg"]


async def test_a_cli_connection_takes_the_ca_from_the_platforms_variable(
    tls_server: EmbeddedNats, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the streams Job's `agora streams init` relies on: no setting passed, the
    variable read."""
    monkeypatch.setenv("AGORA_NATS_TLS_CA_FILE", str(ca_file))
    nc = await connect(f"tls://127.0.0.1:{tls_server.port}", name="kernel-tls-cli")
    try:
        await nc.flush()
        assert client(tls_server, "kernel-tls-cli")["tls_version"]
    finally:
        await nc.close()
