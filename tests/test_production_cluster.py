"""Production as Kubernetes runs it, on this machine: the NATS StatefulSet's three nodes from
their rendered ConfigMap, the streams Job, then every service Deployment with exactly the
environment its manifest gives it (Secrets stubbed, cert-manager's certificates made here, the
HTTP port moved to a free one), each until its /readyz answers 200, over TLS. Then what the
cluster must hold against: a client that does not trust its CA or speaks no TLS, a node
without the route password, and its stream leader killed while commands are being answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import RawStreamMsg
from nats.js.client import JetStreamContext
from nats.js.errors import ServiceUnavailableError

from agora_events.connection import NatsUnavailable, connect
from agora_events.nats_server import EmbeddedNats, PortTaken, free_port
from agora_events.testing.certificates import certificate_authority
from tests.rendered import (
    NatsCluster,
    configured_server,
    environment,
    mounted,
    named,
    nats_cluster,
    pod_spec,
    route_certificates,
    secret_references,
    service_deployments,
    until,
)

POSTGRES_ENV = "AGORA_TEST_POSTGRES_URL"
RUN = uuid.uuid4().hex[:8]
READY_WITHIN = 120.0  # a cold start of a service on two busy cores, with its R3 consumers


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    yield from nats_cluster(tmp_path_factory.mktemp("nats"))


# Secret keys whose value has a shape of its own; every other key gets a random token.
SECRET_SHAPES = {
    "organisers": '["organisers@example.org"]',
    "from": "agora@example.org",
    "host": "127.0.0.1",
    "username": "agora",
}


def stub_secrets(cluster: NatsCluster, databases: dict[str, str]) -> dict[str, dict[str, str]]:
    """A value for every Secret key a pod reads: the cluster's NATS users, each service's
    database, the shaped keys above, and a fresh random value (48 characters) for every
    other."""
    values: dict[str, dict[str, str]] = cluster.secret_values()
    for name, key in secret_references():
        database = databases.get(name.removeprefix("agora-pg-"))
        if name.startswith("agora-pg-") and key == "url" and database:
            values.setdefault(name, {})[key] = database
        else:
            stub = SECRET_SHAPES.get(key) or secrets.token_hex(24)
            values.setdefault(name, {}).setdefault(key, stub)
    return values


def command(container: dict[str, Any]) -> list[str]:
    """The container's command on this machine: the image's `python` and console scripts
    are this interpreter and its environment's."""
    args = list(container["args"])
    if args[0] == "python":
        return [sys.executable, *args[1:]]
    return [str(Path(sys.executable).parent / args[0]), *args[1:]]


def pod_environment(
    workload: dict[str, Any], values: dict[str, dict[str, str]], cluster: NatsCluster
) -> dict[str, str]:
    """The first container's environment, its paths into the Secret volumes it mounts (the
    NATS CA) leading to cert-manager's files as this machine has them."""
    spec = pod_spec(workload)["spec"]
    container = spec["containers"][0]
    return mounted(spec, container, environment(container, values), cluster.secret_files())


def process_environment(variables: dict[str, str]) -> dict[str, str]:
    """Exactly the pod's variables; PATH only so the interpreter finds its tools."""
    return {"PATH": os.environ.get("PATH", ""), **variables}


@pytest.fixture(scope="module")
def streams_job(cluster: NatsCluster) -> None:
    """The Job, as its manifest runs it; the services start after it, as the runbook says.
    Kubernetes runs a failed Job's pod again up to its ``backoffLimit``: so does this (a
    fresh cluster on busy cores can time out the first stream requests)."""
    job = named("Job", "agora-streams-init")
    container = pod_spec(job)["spec"]["containers"][0]
    variables = pod_environment(job, stub_secrets(cluster, {}), cluster)
    attempts = []
    for _ in range(int(job["spec"].get("backoffLimit", 6)) + 1):
        done = subprocess.run(
            command(container),
            env=process_environment(variables),
            capture_output=True,
            text=True,
            timeout=120,
        )
        attempts.append(done.stdout + done.stderr)
        if done.returncode == 0:
            return
    raise AssertionError("the streams Job failed every attempt:\n" + "\n".join(attempts[-2:]))


class ServiceProcess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = int(next(v for k, v in env.items() if k.endswith("_HTTP_PORT")))
        self.log_path = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                argv, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def service_name(deployment: dict[str, Any]) -> str:
    return str(deployment["metadata"]["name"])


def start_service(
    deployment: dict[str, Any], values: dict[str, dict[str, str]], cluster: NatsCluster, home: Path
) -> ServiceProcess:
    container = pod_spec(deployment)["spec"]["containers"][0]
    variables = pod_environment(deployment, values, cluster)
    # The one change to the manifest's environment: many pods' port 8080 on one machine.
    (port_variable,) = [name for name in variables if name.endswith("_HTTP_PORT")]
    variables[port_variable] = str(free_port())
    name = service_name(deployment)
    return ServiceProcess(
        name, command(container), process_environment(variables), home / f"{name}.log"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    """A read-model database for each service Deployment: a SQLite file, or a PostgreSQL
    database of its own on the test server."""
    names = [service_name(d) for d in service_deployments()]
    if request.param == "sqlite":
        yield {name: f"sqlite+aiosqlite:///{tmp_path / name}.db" for name in names}
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"the PostgreSQL variant needs {POSTGRES_ENV}")
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    created = {name: f"agora_deploy_{RUN}_{name}" for name in names}
    try:
        async with engine.connect() as connection:
            for database in created.values():
                await connection.execute(text(f'CREATE DATABASE "{database}"'))
        base = make_url(url)
        yield {
            name: base.set(database=database).render_as_string(hide_password=False)
            for name, database in created.items()
        }
        async with engine.connect() as connection:
            for database in created.values():
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@pytest.fixture
def started(
    cluster: NatsCluster, streams_job: None, databases: dict[str, str], tmp_path: Path
) -> Iterator[dict[str, ServiceProcess]]:
    values = stub_secrets(cluster, databases)
    processes = {
        service_name(d): start_service(d, values, cluster, tmp_path) for d in service_deployments()
    }
    try:
        yield processes
    finally:
        for process in processes.values():
            process.stop()


def test_every_service_reaches_ready_with_its_manifests_environment(
    cluster: NatsCluster, started: dict[str, ServiceProcess]
) -> None:
    assert started, "no service Deployment found in the rendered manifests"
    for process in started.values():
        until(process.ready, within=READY_WITHIN, what=f"{process.name} /readyz 200")
    # Every connection of theirs is TLS, begun before the server's INFO.
    connections = cluster.nodes[0].monitor("/connz?limit=1024")["connections"]
    names = {c.get("name", "") for c in connections}
    assert {f"agora-{name}" for name in started} <= names, names
    for connection in connections:
        assert connection.get("tls_version") and connection.get("tls_first"), connection
    for process in started.values():
        # The Job made the streams as the services would have: nothing differs, every start.
        assert "stream drift" not in process.log, process.log
        process.stop()
        assert process.process.returncode == 0, process.log
        # Every line, the stop's included, is a JSON log record (stdout and stderr).
        for line in process.log.splitlines():
            assert isinstance(json.loads(line), dict), line


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("registration", "AGORA_REGISTRATION_PARTICIPANT_TOKEN_SECRET"),
        ("agenda", "AGORA_AGENDA_DATABASE_URL"),
        ("registration", "AGORA_REGISTRATION_ORGANISER_TOKEN"),
    ],
)
def test_a_variable_missing_from_the_manifest_stops_the_start_naming_it_showing_no_secret(
    cluster: NatsCluster, tmp_path: Path, service: str, variable: str
) -> None:
    deployment = next(d for d in service_deployments() if service_name(d) == service)
    container = pod_spec(deployment)["spec"]["containers"][0]
    values = stub_secrets(
        cluster,
        {service_name(d): f"sqlite+aiosqlite:///{tmp_path}/db" for d in service_deployments()},
    )
    variables = pod_environment(deployment, values, cluster)
    assert variable in variables, f"the {service} manifest no longer sets {variable}"
    del variables[variable]
    done = subprocess.run(
        command(container),
        env=process_environment(variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "invalid settings" in output
    assert variable in output
    shown = [value for value in variables.values() if len(value) >= 16 and value in output]
    secret_fragments = [
        value[i : i + 8]
        for name, value in variables.items()
        if "TOKEN" in name or "SECRET" in name or "PASSWORD" in name
        for i in range(0, len(value) - 7)
    ]
    assert not shown
    assert not [fragment for fragment in secret_fragments if fragment in output]


# -- the stream leader killed under load ------------------------------------------------------


async def registrations(
    client: httpx.AsyncClient,
    acknowledged: dict[str, int],
    refused: list[str],
    stop: asyncio.Event,
    worker: int,
) -> None:
    """Register participants until told to stop; keep each one the service acknowledged."""
    n = 0
    while not stop.is_set():
        n += 1
        key = f"load-{RUN}-{worker}-{n}"
        body = {
            "name": f"Load {worker} {n}",
            "email": f"{key}@example.org",
            "category": "delegate",
            "delegation": "KOR",
        }
        try:
            answer = await client.post("/participants", json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError:
            continue  # not acknowledged: nothing is promised
        if answer.status_code == 201:
            accepted = answer.json()
            acknowledged[accepted["ids"]["participant_id"]] = accepted["sequence"]
        elif answer.status_code < 500:
            refused.append(f"{answer.status_code} {answer.text}")


async def stream_leader(admin: NATS, stream: str) -> str:
    info = await admin.jetstream().stream_info(stream)
    assert info.cluster is not None and info.cluster.leader
    return info.cluster.leader


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_the_stream_leader_killed_under_load_loses_no_acknowledged_command(
    cluster: NatsCluster, started: dict[str, ServiceProcess]
) -> None:
    registration = started["registration"]
    until(registration.ready, within=READY_WITHIN, what="registration /readyz 200")
    asyncio.run(kill_the_leader_under_load(cluster, registration))


async def kill_the_leader_under_load(cluster: NatsCluster, registration: ServiceProcess) -> None:
    admin_urls = [cluster.client_url("admin", node=n.index) for n in cluster.nodes]
    admin = await nats.connect(
        servers=admin_urls,
        max_reconnect_attempts=-1,
        tls=cluster.client_tls(),
        tls_handshake_first=True,
    )
    # The service is connected to the first node (a Service in front of them in
    # Kubernetes): the leader to kill is another one.
    first = f"agora-{cluster.nodes[0].server.port}"
    if await stream_leader(admin, "REGISTRATION") == first:
        await admin.request("$JS.API.STREAM.LEADER.STEPDOWN.REGISTRATION", b"", timeout=10)
        await until_leader(admin, lambda name: name != first, "a leader on another node")
    leader = cluster.node_named(await stream_leader(admin, "REGISTRATION"))
    acknowledged: dict[str, int] = {}
    refused: list[str] = []  # a 4xx would be the test's fault: it sends only valid commands
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient(base_url=registration.url, timeout=30) as client:
            load = [
                asyncio.create_task(registrations(client, acknowledged, refused, stop, worker))
                for worker in range(4)
            ]
            try:
                await until_async(
                    lambda: len(acknowledged) >= 20 or bool(refused),
                    "20 registrations before the kill",
                )
                assert not refused, refused[:3]
                before_kill = len(acknowledged)
                leader.server.kill()
                await until_async(
                    lambda: len(acknowledged) >= before_kill + 20 or bool(refused),
                    "20 more registrations after the kill (a new leader)",
                )
                assert not refused, refused[:3]
            finally:
                stop.set()
                await asyncio.gather(*load)

        assert await stream_leader(admin, "REGISTRATION") != f"agora-{leader.server.port}"
        js = admin.jetstream()
        for participant_id, sequence in acknowledged.items():
            stored = await stored_message(js, "REGISTRATION", sequence)
            assert participant_id in str(stored.subject), (participant_id, sequence, stored.subject)
    finally:
        stop.set()
        await admin.close()
        cluster.restart(leader)
        cluster.wait_formed()


async def until_leader(admin: NATS, wanted: Any, what: str, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            if wanted(await stream_leader(admin, "REGISTRATION")):
                return
        except (AssertionError, nats.errors.Error):
            pass  # no leader for the moment: an election is under way
        if loop.time() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.1)


async def stored_message(
    js: JetStreamContext, stream: str, sequence: int, within: float = 60.0
) -> RawStreamMsg:
    """The stored message, asked again while the cluster answers "temporarily unavailable"
    or not at all (a node just killed, a leader being elected): transient by definition."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await js.get_msg(stream, seq=sequence)
        except (ServiceUnavailableError, nats.errors.TimeoutError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)  # the election: nothing to wait on but the answer


async def until_async(condition: Any, what: str, within: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.1)


# -- the client port -------------------------------------------------------------------------


async def test_a_client_that_does_not_trust_the_namespaces_ca_fails_the_handshake(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    stranger = certificate_authority(tmp_path / "other-ca")
    with pytest.raises(NatsUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        await connect(
            cluster.client_url("subscriber"),
            name="stranger",
            tls_ca_file=stranger / "ca.crt",
            timeout=1,
        )


async def test_a_client_that_trusts_the_namespaces_ca_connects(cluster: NatsCluster) -> None:
    """The control for the one above and the one below: the same user, over TLS."""
    nc = await connect(
        cluster.client_url("subscriber"),
        name="subscriber",
        tls_ca_file=cluster.server_tls / "ca.crt",
        timeout=5,
    )
    try:
        assert nc.is_connected
    finally:
        await nc.close()


def test_a_plain_tcp_client_is_refused_before_it_can_log_in(cluster: NatsCluster) -> None:
    """A client that sends its CONNECT (and password) in clear is told TLS is required and
    gets no PONG: nothing is served without TLS."""
    password = cluster.passwords["subscriber"]
    connect_line = json.dumps({"user": "subscriber", "pass": password, "verbose": False})
    port = cluster.nodes[0].server.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        reader = plain.makefile("rb")
        info = reader.readline()  # after handshake_first's wait for a TLS client hello
        assert info.startswith(b"INFO "), info
        assert json.loads(info[5:])["tls_required"] is True
        plain.sendall(f"CONNECT {connect_line}\r\nPING\r\n".encode())
        answer = reader.read()  # until the server closes the connection
    assert b"PONG" not in answer, answer


# -- the route port --------------------------------------------------------------------------


@contextlib.contextmanager
def intruder(
    cluster: NatsCluster, home: Path, *, password: bool, certificate: bool
) -> Iterator[EmbeddedNats]:
    """A fourth node of the rendered config with routes to the three, holding the route
    password or not, and the route certificate or one of its own CA's, running."""
    env = cluster.node_environment(0, [n.cluster_port for n in cluster.nodes])
    if not password:
        env["NATS_ROUTE_PASSWORD"] = secrets.token_hex(8)
        for node in cluster.nodes:
            env[f"NATS_ROUTE_{node.index}"] = f"nats://127.0.0.1:{node.cluster_port}"
    tls = cluster.tls if certificate else route_certificates(home / "own-tls")
    for attempt in range(3):
        server = configured_server(home, free_port(), env, tls, cluster.server_tls)
        try:
            server.start()
        except PortTaken:
            # Its route or monitoring port went to another process after the pick: the
            # node's config names both, so it is written anew with two fresh ports.
            if attempt == 2:
                raise
            continue
        try:
            yield server
        finally:
            server.stop()
        return


def refused(server: EmbeddedNats, cluster: NatsCluster, evidence: tuple[str, ...]) -> None:
    """Until the server's log shows the cluster refusing it; it has no route then, and no
    node has one to it."""
    assert server.log_file is not None
    log = server.log_file
    until(
        lambda: any(line in log.read_text(errors="replace") for line in evidence),
        within=30,
        what=f"the cluster refusing the node ({' or '.join(evidence)})",
    )
    routes = httpx.get(f"http://127.0.0.1:{server.monitor_port}/routez", timeout=5).json()
    assert routes["num_routes"] == 0
    for node in cluster.nodes:
        assert f"agora-{server.port}" not in node.route_peers()


def test_a_node_without_the_route_certificate_cannot_join(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    with intruder(cluster, tmp_path / "stranger", password=True, certificate=False) as stranger:
        refused(stranger, cluster, ("TLS route handshake error", "tls: "))


def test_a_node_with_the_certificate_but_not_the_route_password_cannot_join(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    with intruder(cluster, tmp_path / "stranger", password=False, certificate=True) as stranger:
        refused(stranger, cluster, ("Authorization Violation",))


def test_a_node_with_the_certificate_and_the_route_password_joins(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    """The control for the two above: the same fourth node, given both, is let in (last in
    this module: it stays a JetStream peer of the cluster)."""
    with intruder(cluster, tmp_path / "member", password=True, certificate=True) as member:
        until(
            lambda: f"agora-{member.port}" in cluster.nodes[0].route_peers(),
            within=30,
            what="a node with the certificate and the route password joining",
        )
