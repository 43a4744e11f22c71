"""deploy/ as Kubernetes receives it: the production overlay rendered by kustomize, each
container's environment resolved the way the kubelet resolves it, and a NATS cluster built
from the StatefulSet's own configuration on this machine."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from agora_events.nats_server import EmbeddedNats, PortTaken, free_port
from agora_events.testing.certificates import certificate_authority, issue

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = ROOT / "deploy" / "overlays" / "production"
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet")
# $(NAME) in an env value: the kubelet replaces it with the variable defined before it.
DEPENDENT = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip(
            "kubectl is not installed: the manifests cannot be rendered (kustomize)",
            allow_module_level=True,
        )
    return found


@cache
def _rendered_text() -> str:
    return subprocess.run(
        [kubectl(), "kustomize", str(OVERLAY)], capture_output=True, text=True, check=True
    ).stdout


def rendered() -> list[dict[str, Any]]:
    """Every object of the production overlay, as `kubectl apply -k` would send it."""
    return [d for d in yaml.safe_load_all(_rendered_text()) if d]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in rendered() if d["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    for document in of_kind(kind):
        if document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"the rendered manifests hold no {kind} {name!r}")


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template: dict[str, Any] = spec["template"]
    return template


def workloads() -> list[dict[str, Any]]:
    return [d for d in rendered() if d["kind"] in WORKLOADS]


def service_deployments() -> list[dict[str, Any]]:
    """The Deployments that run an Agora service (`python -m agora_<name>.main serve`)."""
    found = []
    for deployment in of_kind("Deployment"):
        args = pod_spec(deployment)["spec"]["containers"][0].get("args", [])
        if args[:2] == ["python", "-m"] and args[2].startswith("agora_"):
            found.append(deployment)
    return found


def secret_references() -> set[tuple[str, str]]:
    """Every (Secret, key) a rendered pod reads."""
    found = set()
    for workload in workloads():
        spec = pod_spec(workload)["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    found.add((reference["name"], reference["key"]))
    return found


SecretValues = Mapping[str, Mapping[str, str]]


def environment(
    container: dict[str, Any], secret_values: SecretValues, pod_name: str = "pod-0"
) -> dict[str, str]:
    """The container's environment as the kubelet builds it: its ConfigMaps, then its env
    entries in order, each `$(NAME)` replaced by a variable defined before it. A Secret or
    ConfigMap key that does not exist fails, as the pod would fail to start."""
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind("ConfigMap")}
    built: dict[str, str] = {}
    for source in container.get("envFrom", []):
        built.update(config_maps[source["configMapRef"]["name"]])
    for variable in container.get("env", []):
        name = variable["name"]
        if "value" in variable:
            built[name] = DEPENDENT.sub(
                lambda m: built.get(m.group(1), m.group(0)), str(variable["value"])
            )
            continue
        source = variable["valueFrom"]
        if "secretKeyRef" in source:
            reference = source["secretKeyRef"]
            built[name] = secret_values[reference["name"]][reference["key"]]
        elif "configMapKeyRef" in source:
            reference = source["configMapKeyRef"]
            built[name] = config_maps[reference["name"]][reference["key"]]
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            built[name] = pod_name
        else:
            raise AssertionError(f"{name}: an env source this test does not resolve: {source}")
    return built


def mounted(
    spec: dict[str, Any],
    container: dict[str, Any],
    variables: Mapping[str, str],
    secret_files: Mapping[str, Path],
) -> dict[str, str]:
    """The variables with each path into a Secret volume the container mounts replaced by
    that key's file on this machine (``secret_files``: a directory per Secret, holding its
    keys). A path into nothing the container mounts is left as it is, and fails where the
    process reads it, as it would in the pod."""
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    places: dict[str, tuple[Path, dict[str, str] | None]] = {}
    for mount in container.get("volumeMounts", []):
        # (a volume claim template's mount has no volume here: it is no Secret)
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret is None or secret["secretName"] not in secret_files:
            continue
        items = {item["path"]: item["key"] for item in secret.get("items", [])} or None
        places[mount["mountPath"].rstrip("/")] = (secret_files[secret["secretName"]], items)
    local = dict(variables)
    for name, value in variables.items():
        for mount_path, (directory, items) in places.items():
            relative = value.removeprefix(mount_path + "/")
            key = relative if items is None else items.get(relative)
            if relative != value and key is not None:
                local[name] = str(directory / key)
    return local


# -- the NATS cluster of the StatefulSet -------------------------------------------------------

ROUTE_HOST = re.compile(r"@(nats-(\d+))\.nats-cluster(?:\.[\w.-]*)?:6222")


def nats_passwords() -> dict[str, str]:
    """A fresh password for each NATS user the StatefulSet reads (`agora-nats-<user>`)."""
    return {
        name.removeprefix("agora-nats-"): secrets.token_hex(16)
        for name, key in secret_references()
        if name.startswith("agora-nats-") and key == "password"
    }


@dataclass
class NatsNode:
    index: int
    server: EmbeddedNats
    cluster_port: int
    home: Path

    @property
    def name(self) -> str:
        return f"nats-{self.index}"

    def monitor(self, path: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.server.monitor_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            body: dict[str, Any] = json.load(answer)
            return body

    def healthy(self) -> bool:
        try:
            return self.monitor("/healthz?js-server-only=true").get("status") == "ok"
        except (OSError, urllib.error.HTTPError, ValueError):
            return False

    def route_peers(self) -> set[str]:
        return {route.get("remote_name", "") for route in self.monitor("/routez")["routes"]}


@dataclass
class NatsCluster:
    """The StatefulSet's three nodes on this machine: its ConfigMap's files, its containers'
    environment (Secrets stubbed), the hosts of its routes mapped to local ports."""

    home: Path
    passwords: dict[str, str]
    nodes: list[NatsNode] = field(default_factory=list)
    tls: Path = field(init=False)
    server_tls: Path = field(init=False)

    def __post_init__(self) -> None:
        self.tls = route_certificates(self.home / "routes-tls")
        self.server_tls = server_certificates(self.home / "server-tls", ca=self.tls)

    def secret_files(self) -> dict[str, Path]:
        """The Secrets cert-manager makes, as directories of their keys."""
        return {"nats-routes-tls": self.tls, "nats-server-tls": self.server_tls}

    def client_tls(self) -> ssl.SSLContext:
        """What a client of the client port trusts: the namespace's CA (``ca.crt``)."""
        return ssl.create_default_context(cafile=self.server_tls / "ca.crt")

    def secret_values(self) -> dict[str, dict[str, str]]:
        return {
            f"agora-nats-{user}": {
                "password": password,
                "url": self.client_url(user, password),
            }
            for user, password in self.passwords.items()
        }

    def client_url(self, user: str, password: str | None = None, node: int = 0) -> str:
        password = password or self.passwords[user]
        port = self.nodes[node].server.port if self.nodes else 0
        return f"tls://{user}:{password}@127.0.0.1:{port}"

    def node_environment(self, index: int, cluster_ports: list[int]) -> dict[str, str]:
        statefulset = named("StatefulSet", "nats")
        container = pod_spec(statefulset)["spec"]["containers"][0]
        values = {
            f"agora-nats-{user}": {"password": password}
            for user, password in self.passwords.items()
        }
        built = environment(container, values, pod_name=f"nats-{index}")
        for name, value in built.items():
            built[name] = ROUTE_HOST.sub(
                lambda m: f"@127.0.0.1:{cluster_ports[int(m.group(2))]}", value
            )
        return built

    def start(self, size: int | None = None) -> NatsCluster:
        statefulset = named("StatefulSet", "nats")
        size = size or int(statefulset["spec"]["replicas"])
        for attempt in range(3):
            try:
                self._start_nodes(size)
                break
            except PortTaken:
                # A route or monitoring port went to another process between its pick and
                # the node's bind: the routes name every port, so the cluster starts anew.
                self.stop()
                self.nodes.clear()
                shutil.rmtree(self.home / "nodes", ignore_errors=True)
                if attempt == 2:
                    raise
        self.wait_formed()
        return self

    def _start_nodes(self, size: int) -> None:
        cluster_ports = [free_port() for _ in range(size)]
        for index in range(size):
            self.nodes.append(self._node(index, cluster_ports))
        for node in self.nodes:
            node.server.start()

    def _node(self, index: int, cluster_ports: list[int]) -> NatsNode:
        home = self.home / "nodes" / f"nats-{index}"
        return NatsNode(
            index,
            configured_server(
                home,
                cluster_ports[index],
                self.node_environment(index, cluster_ports),
                self.tls,
                self.server_tls,
            ),
            cluster_ports[index],
            home,
        )

    def restart(self, node: NatsNode) -> None:
        node.server.start()

    def wait_formed(self, within: float = 60.0) -> None:
        """Until every running node routes to every other and JetStream is current."""
        running = [n for n in self.nodes if n.server.process is not None]
        names = {f"agora-{n.server.port}" for n in running}
        until(
            lambda: all(
                n.healthy() and n.route_peers() >= names - {f"agora-{n.server.port}"}
                for n in running
            ),
            within=within,
            what=f"a cluster of {len(running)} nodes with JetStream current",
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.server.stop()

    def node_named(self, server_name: str) -> NatsNode:
        for node in self.nodes:
            if f"agora-{node.server.port}" == server_name:
                return node
        raise LookupError(server_name)


# What the ConfigMap's nats.conf sets that this machine must set differently, each line
# present exactly once (a change to the manifest that this does not know fails here).
def local_config(config: str, home: Path, cluster_port: int, tls: Path, server_tls: Path) -> str:
    replacements = {
        "pid_file: /var/run/nats/nats.pid": f"pid_file: {home / 'nats.pid'}",
        # EmbeddedNats's --store_dir sets it; the server refuses it twice.
        "store_dir: /data/jetstream": "",
        "  port: 6222": f"  port: {cluster_port}\n  host: 127.0.0.1",
        "cert_file: /etc/nats-tls/tls.crt": f"cert_file: {tls / 'tls.crt'}",
        "key_file: /etc/nats-tls/tls.key": f"key_file: {tls / 'tls.key'}",
        "ca_file: /etc/nats-tls/ca.crt": f"ca_file: {tls / 'ca.crt'}",
        "cert_file: /etc/nats-server-tls/tls.crt": f"cert_file: {server_tls / 'tls.crt'}",
        "key_file: /etc/nats-server-tls/tls.key": f"key_file: {server_tls / 'tls.key'}",
    }
    for line, replacement in replacements.items():
        assert config.count(line) == 1, f"nats.conf: expected {line!r} once"
        config = config.replace(line, replacement)
    return config


def route_certificates(directory: Path) -> Path:
    """What cert-manager puts in the route Secret (ca.crt, tls.crt, tls.key): a CA of its
    own, and a certificate for the names of the rendered Certificate, and 127.0.0.1 where
    the routes point on this machine."""
    names = named("Certificate", "nats-routes")["spec"]["dnsNames"]
    return issue(
        certificate_authority(directory), directory, common_name="nats-routes", dns_names=names
    )


def server_certificates(directory: Path, ca: Path) -> Path:
    """What cert-manager puts in the client port's Secret: the certificate the nodes present
    to clients, signed by the routes' CA (the namespace's), for the names of the rendered
    Certificate and 127.0.0.1, where the clients connect on this machine."""
    certificate = named("Certificate", "nats-server")["spec"]
    return issue(
        directory,
        ca,
        common_name="nats-server",
        dns_names=certificate["dnsNames"],
        usages=("serverAuth",),
    )


def configured_server(
    home: Path, cluster_port: int, env: Mapping[str, str], tls: Path, server_tls: Path
) -> EmbeddedNats:
    """A node from the rendered ConfigMap: its files in ``home``, the route certificates from
    ``tls``, the client port's from ``server_tls``; client and monitoring ports (and the
    server name) from EmbeddedNats's flags, which win over the file."""
    home.mkdir(parents=True, exist_ok=True)
    files = named("ConfigMap", "nats-config")["data"]
    for filename, text in files.items():
        (home / filename).write_text(text)
    (home / "nats.conf").write_text(
        local_config(files["nats.conf"], home, cluster_port, tls, server_tls)
    )
    server = EmbeddedNats(
        home / "jetstream",
        monitor_port=free_port(),
        config_file=home / "nats.conf",
        log_file=home / "nats.log",
    )
    server.environment = dict(env)
    return server


def until(condition: Callable[[], bool], *, within: float, what: str) -> None:
    """Wait for a condition between processes (nothing to await on), up to a deadline."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        time.sleep(0.1)


def nats_cluster(home: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(home, nats_passwords())
    try:
        yield cluster.start()
    finally:
        cluster.stop()
