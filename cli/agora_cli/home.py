"""The local platform's home (``.agora/``, or ``$AGORA_HOME``): who runs it, where it listens.

* ``up.lock``: ``agora up`` holds an exclusive ``flock`` on it for as long as it lives (the
  kernel releases it when the process dies, however it dies) and writes its pid into it, so a
  second ``agora up`` on the same home is refused before it starts anything.
* ``endpoints.json``: where the last ``agora up`` of this home listens: NATS, its monitoring
  port, each service's URL and database, and the pids. It stays after a stop: the next
  ``agora up`` reuses its ports (a calendar subscription depends on them), and every CLI
  command finds the platform through it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agora_events.connection import redacted

HOME_VARIABLE = "AGORA_HOME"
LOCK_FILE = "up.lock"
ENDPOINTS_FILE = "endpoints.json"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def default_home() -> Path:
    return Path(os.environ.get(HOME_VARIABLE, ".agora"))


@dataclass(frozen=True, slots=True)
class ServiceEndpoint:
    url: str
    pid: int | None = None
    database_url: str | None = None

    @property
    def port(self) -> int:
        return port_of(self.url)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What ``endpoints.json`` holds."""

    home: str
    pid: int | None  # the ``agora up`` process
    nats_url: str
    monitor_url: str
    nats_pid: int | None = None
    services: dict[str, ServiceEndpoint] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: NATS and every service, with their URLs."""
        parts = [f"NATS {redacted(self.nats_url)}"]
        parts += [f"{name} {service.url}" for name, service in self.services.items()]
        return ", ".join(parts)

    def child_pids(self) -> list[int]:
        pids = [self.nats_pid, *(s.pid for s in self.services.values())]
        return [pid for pid in pids if pid]


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def read_endpoints(home: Path | None = None) -> Endpoints | None:
    """The recorded endpoints of ``home`` (default: the current one), or None."""
    path = (home or default_home()) / ENDPOINTS_FILE
    try:
        raw: dict[str, Any] = json.loads(path.read_text("utf-8"))
        services = {
            name: ServiceEndpoint(**entry) for name, entry in raw.pop("services", {}).items()
        }
        return Endpoints(**raw, services=services)
    except (OSError, ValueError, TypeError):
        return None


def write_endpoints(home: Path, endpoints: Endpoints) -> None:
    """Replace ``endpoints.json`` atomically: a reader sees the old file or the new one."""
    path = home / ENDPOINTS_FILE
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(asdict(endpoints), indent=2) + "\n", "utf-8")
    os.replace(temporary, path)


def default_nats_url() -> str:
    """``$AGORA_NATS_URL``, else the NATS of the current home's platform, else 4222."""
    explicit = os.environ.get("AGORA_NATS_URL")
    if explicit:
        return explicit
    recorded = read_endpoints()
    return recorded.nats_url if recorded else DEFAULT_NATS_URL


class HomeLocked(Exception):
    """Another ``agora up`` holds this home."""

    def __init__(self, home: Path, pid: int | None, endpoints: Endpoints | None) -> None:
        self.home = home
        self.pid = pid
        self.endpoints = endpoints
        holder = f"pid {pid}" if pid else "a process"
        where = f": {endpoints.describe()}" if endpoints else ""
        alive = pid is not None and pid_alive(pid)
        stopping = "" if alive else " (it is stopping; try again in a moment)"
        super().__init__(
            f"another 'agora up' ({holder}) already runs the platform in {home}{where}"
            f"{stopping}. Use it ('agora status' shows it), or stop it first "
            f"(Ctrl-C in its terminal, or kill {pid or '<pid>'})."
        )


class HomeLock:
    """The exclusive lock of a home, held from ``acquire`` until the process ends."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``HomeLocked`` naming the holder; never waits."""
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            raise HomeLocked(self.home, holder, read_endpoints(self.home)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


def holder(home: Path) -> int | None:
    """The pid of the ``agora up`` holding ``home``, or None when none does."""
    try:
        fd = os.open(home / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            # A shared lock is refused only while an exclusive one is held.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _pid_in(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
