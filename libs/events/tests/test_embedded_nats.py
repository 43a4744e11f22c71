"""Starting the embedded nats-server: which ports it takes, and what it says when it cannot."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agora_events import nats_server
from agora_events.nats_server import (
    EmbeddedNats,
    NatsServerError,
    PortTaken,
    ephemeral_ports,
    free_port,
)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something else listens on for the length of the test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        yield holder.getsockname()[1]


def test_picked_ports_lie_below_the_range_outgoing_connections_take_theirs_from() -> None:
    low, _ = ephemeral_ports()
    picks = [free_port() for _ in range(50)]
    assert all(port < low for port in picks)


def test_no_port_is_picked_twice_by_one_process_even_when_none_is_bound_yet() -> None:
    picks = [free_port() for _ in range(200)]
    assert len(set(picks)) == len(picks)


def test_a_preferred_port_is_kept_when_free_and_replaced_when_something_listens(
    held_port: int,
) -> None:
    free = free_port()
    assert free_port(preferred=free) == free
    assert free_port(preferred=held_port) != held_port


def test_a_server_whose_port_is_taken_says_so_with_the_servers_own_reason(
    tmp_path: Path, held_port: int
) -> None:
    server = EmbeddedNats(tmp_path / "store", port=held_port)
    with pytest.raises(PortTaken, match=f"127.0.0.1:{held_port}.*address already in use"):
        server.start()


def test_a_server_that_refuses_its_configuration_gives_the_reason_not_only_a_code(
    tmp_path: Path,
) -> None:
    config = tmp_path / "nats.conf"
    config.write_text("jetstream { max_memory_store: not-a-size }\n")
    server = EmbeddedNats(tmp_path / "store", config_file=config)
    with pytest.raises(NatsServerError, match=r"nats\.conf:1:") as refused:
        server.start()
    assert not isinstance(refused.value, PortTaken)


def test_the_reason_is_read_from_this_start_and_not_from_an_earlier_one_in_the_log(
    tmp_path: Path, held_port: int
) -> None:
    log = tmp_path / "nats.log"
    log.write_text('[FTL] Error listening on port: "bind: address already in use"\n')
    config = tmp_path / "nats.conf"
    config.write_text("jetstream { max_memory_store: not-a-size }\n")
    server = EmbeddedNats(tmp_path / "store", config_file=config, log_file=log)
    with pytest.raises(NatsServerError) as refused:
        server.start()
    assert not isinstance(refused.value, PortTaken)


def test_a_server_left_to_pick_its_port_picks_again_when_the_first_is_taken(
    tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race made certain: the first pick is a port another process binds before the
    # server does.
    picks = iter([held_port])
    real_free_port = nats_server.free_port
    monkeypatch.setattr(
        nats_server, "free_port", lambda host="127.0.0.1": next(picks, None) or real_free_port()
    )
    with EmbeddedNats(tmp_path / "store") as server:
        assert server.port not in (0, held_port)
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
