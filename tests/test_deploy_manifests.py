"""The Kubernetes manifests agree with the code they deploy."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from agora_cli.services import SERVICES
from agora_events.nats_server import server_version
from tests import rendered

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "base").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kustomization_lists_every_manifest_and_only_existing_ones() -> None:
    kustomization = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in (DEPLOY / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("entry", SERVICES, ids=lambda e: e.name)
def test_every_service_has_a_deployment_running_its_main(entry: Any) -> None:
    deployments = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "Deployment"}
    container = deployments[entry.name]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["python", "-m", entry.module]
    importlib.import_module(entry.module)  # the module the manifest names exists


@pytest.mark.parametrize("entry", SERVICES, ids=lambda e: e.name)
def test_deployment_settings_are_settings_the_service_reads(entry: Any) -> None:
    deployment = next(
        d for d in documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == entry.name
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    settings_type = type(entry.load().load_settings())
    fields = {name.upper() for name in settings_type.model_fields}
    for variable in (env["name"] for env in container["env"]):
        assert variable.startswith(entry.env_prefix), variable
        assert variable.removeprefix(entry.env_prefix) in fields, variable
    probes = {
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
    }
    assert probes == {"/readyz", "/healthz"}


def test_production_never_uses_the_local_mode() -> None:
    kustomization = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    literals = kustomization["configMapGenerator"][0]["literals"]
    assert "AGORA_ENV=production" in literals


def test_every_workload_has_a_disruption_budget_matching_its_pods() -> None:
    workloads = [d for d in documents() if d["kind"] in ("Deployment", "StatefulSet")]
    budgets = [d for d in documents() if d["kind"] == "PodDisruptionBudget"]
    for workload in workloads:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        covering = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(covering) == 1, workload["metadata"]["name"]
        assert covering[0]["spec"].get("maxUnavailable") == 1


# -- as Kubernetes receives it: the production overlay, rendered --------------------------------

# Pod Security Standards, "restricted" profile (with "baseline" under it): what each pod and
# container must say, and the volume types it may use.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def pod_ids(pods: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in pods]


def rendered_pods() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{w['kind']}/{w['metadata']['name']}", rendered.pod_spec(w)["spec"])
        for w in rendered.workloads()
    ]


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    found = []
    pod_context = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(f"{flag} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds)} not allowed")
    for container in pod.get("initContainers", []) + pod["containers"]:
        name = container["name"]
        context = container.get("securityContext", {})

        def setting(key: str, context: dict[str, Any] = context) -> Any:
            return context.get(key, pod_context.get(key))

        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if setting("runAsNonRoot") is not True:
            found.append(f"{name}: runAsNonRoot is not true")
        if setting("runAsUser") == 0:
            found.append(f"{name}: runs as user 0")
        seccomp = (setting("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile {seccomp!r}")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities do not drop ALL")
        if not set(capabilities.get("add", [])) <= {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        if any("hostPort" in port for port in container.get("ports", [])):
            found.append(f"{name}: hostPort")
    return found


def test_the_restricted_check_sees_what_the_issue_found() -> None:
    before = {"containers": [{"name": "c", "securityContext": {"runAsNonRoot": True}}]}
    assert restricted_violations(before) == [
        "c: allowPrivilegeEscalation is not false",
        "c: seccompProfile None",
        "c: capabilities do not drop ALL",
    ]


@pytest.mark.parametrize(("pod", "spec"), rendered_pods(), ids=pod_ids(rendered_pods()))
def test_every_rendered_pod_meets_pod_security_restricted(pod: str, spec: dict[str, Any]) -> None:
    assert restricted_violations(spec) == []
    # Nothing in Agora calls the Kubernetes API: no token mounted to steal.
    assert spec.get("automountServiceAccountToken") is False


def test_every_namespace_enforces_pod_security_restricted() -> None:
    namespaces = rendered.of_kind("Namespace")
    assert namespaces
    for namespace in namespaces:
        labels = namespace["metadata"].get("labels", {})
        for mode in ("enforce", "audit", "warn"):
            assert labels.get(f"pod-security.kubernetes.io/{mode}") == "restricted", mode


def policies() -> list[dict[str, Any]]:
    return rendered.of_kind("NetworkPolicy")


def test_every_namespace_denies_all_traffic_not_allowed_by_a_policy() -> None:
    for namespace in rendered.of_kind("Namespace"):
        name = namespace["metadata"]["name"]
        deny = [
            p
            for p in policies()
            if p["metadata"].get("namespace") == name
            and p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        assert deny, f"namespace {name} has no default-deny NetworkPolicy"


def test_notifications_reach_smtp_and_https_outside_the_cluster_and_no_private_range() -> None:
    """Default-deny would otherwise keep every mail and webhook in: the notifications pod may
    open SMTP and https connections to public addresses, and nothing else leaves."""
    pod = {"app": "notifications"}
    outside = [
        (peer["ipBlock"], {p["port"] for p in rule.get("ports", [])})
        for policy in policies()
        if selects(policy, pod)
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]
    assert outside, "no policy lets the notifications pod reach the SMTP relay or webhooks"
    for block, ports in outside:
        assert block["cidr"] == "0.0.0.0/0"
        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
            block.get("except", [])
        )
        assert ports == {25, 465, 587, 443}
    others = [
        policy["metadata"]["name"]
        for policy in policies()
        if policy["metadata"]["name"] != "notifications-egress"
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer and peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    ]
    assert others == [], f"only notifications may reach any address: {others}"


def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return bool(wanted.items() <= labels.items())


def rules_for_port(pod_labels: dict[str, str], port: int) -> list[dict[str, Any]]:
    """The ingress rules that let something reach ``port`` of a pod with these labels."""
    return [
        rule
        for policy in policies()
        if selects(policy, pod_labels)
        for rule in policy["spec"].get("ingress", [])
        if not rule.get("ports") or any(p.get("port") == port for p in rule["ports"])
    ]


def nats_pod_labels() -> dict[str, str]:
    labels: dict[str, str] = rendered.pod_spec(rendered.named("StatefulSet", "nats"))["metadata"][
        "labels"
    ]
    return labels


def test_only_nats_pods_reach_the_route_port() -> None:
    rules = rules_for_port(nats_pod_labels(), 6222)
    assert rules
    for rule in rules:
        assert rule.get("from") == [{"podSelector": {"matchLabels": {"app": "nats"}}}]


def test_the_monitoring_port_is_open_to_prometheus_only() -> None:
    for port in (8222, 7777):
        rules = rules_for_port(nats_pod_labels(), port)
        assert rules, port
        for rule in rules:
            assert rule.get("from") == [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ], port
    assert all(
        port["port"] != 8222
        for service in rendered.of_kind("Service")
        for port in service["spec"]["ports"]
    ), "a Service offers the monitoring port"


def egress_ports(labels: dict[str, str]) -> set[int]:
    return {
        port["port"]
        for policy in policies()
        if selects(policy, labels)
        for rule in policy["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }


@pytest.mark.parametrize(("pod", "spec"), rendered_pods(), ids=pod_ids(rendered_pods()))
def test_every_pod_may_open_the_connections_its_environment_names(
    pod: str, spec: dict[str, Any]
) -> None:
    """A pod reading a NATS or PostgreSQL URL has the label whose policy lets it connect,
    and a pod with an HTTP port is reachable on it."""
    labels = rendered.pod_spec(
        next(w for w in rendered.workloads() if f"{w['kind']}/{w['metadata']['name']}" == pod)
    )["metadata"]["labels"]
    secrets = {
        reference["name"]
        for container in spec["containers"]
        for variable in container.get("env", [])
        if (reference := variable.get("valueFrom", {}).get("secretKeyRef"))
        and reference["key"] == "url"
    }
    if any(name.startswith("agora-nats-") for name in secrets):
        assert 4222 in egress_ports(labels), pod
    if any(name.startswith("agora-pg-") for name in secrets):
        assert 5432 in egress_ports(labels), pod
    assert 53 in egress_ports(labels), pod
    for container in spec["containers"]:
        for port in container.get("ports", []):
            if port.get("name") == "http":
                assert rules_for_port(labels, port["containerPort"]), pod


def test_the_nats_image_is_the_version_the_tests_run() -> None:
    container = rendered.pod_spec(rendered.named("StatefulSet", "nats"))["spec"]["containers"][0]
    tag = container["image"].rpartition(":")[2]
    assert tag.split("-")[0] == ".".join(str(part) for part in server_version())


def test_every_image_is_pinned_to_a_version() -> None:
    for workload in rendered.workloads():
        spec = rendered.pod_spec(workload)["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest" and "/" not in tag, image


def database_secret(deployment: dict[str, Any]) -> str:
    container = rendered.pod_spec(deployment)["spec"]["containers"][0]
    (variable,) = [v for v in container["env"] if v["name"].endswith("_DATABASE_URL")]
    return str(variable["valueFrom"]["secretKeyRef"]["name"])


@pytest.mark.parametrize(
    "deployment",
    rendered.service_deployments(),
    ids=[d["metadata"]["name"] for d in rendered.service_deployments()],
)
def test_each_service_database_secret_is_the_login_postgres_creates_for_it(
    deployment: dict[str, Any],
) -> None:
    """The Secret a service reads its URL from is the one CloudNativePG sets its role's
    password from, and that role owns the service's database."""
    name = deployment["metadata"]["name"]
    (cluster,) = rendered.of_kind("Cluster")
    roles = {r["passwordSecret"]["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    role = roles[database_secret(deployment)]
    assert role["name"] == name and role["login"] and role["ensure"] == "present"
    databases = {d["spec"]["name"]: d["spec"] for d in rendered.of_kind("Database")}
    assert databases[name]["owner"] == name
    assert databases[name]["cluster"]["name"] == cluster["metadata"]["name"]


def test_postgres_is_reached_through_the_pooler_and_backed_up() -> None:
    (cluster,) = rendered.of_kind("Cluster")
    (pooler,) = rendered.of_kind("Pooler")
    assert pooler["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert pooler["spec"]["type"] == "rw"
    overlay = (DEPLOY / "overlays" / "production" / "kustomization.yaml").read_text()
    assert f"@{pooler['metadata']['name']}:5432/" in overlay  # the url the secrets get
    (archiver,) = [p for p in cluster["spec"]["plugins"] if p.get("isWALArchiver")]
    (store,) = rendered.of_kind("ObjectStore")
    assert archiver["parameters"]["barmanObjectName"] == store["metadata"]["name"]
    (schedule,) = rendered.of_kind("ScheduledBackup")
    assert schedule["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert schedule["spec"]["pluginConfiguration"]["name"] == archiver["name"]


def test_every_stream_is_backed_up_every_night_by_a_user_allowed_to() -> None:
    (backup,) = rendered.of_kind("CronJob")
    container = rendered.pod_spec(backup)["spec"]["containers"][0]
    assert container["image"].rpartition(":")[0] == "registry.example.org/agora"
    assert "agora streams backup" in container["args"][0]
    (url,) = [v for v in container["env"] if v["name"] == "AGORA_NATS_URL"]
    assert url["valueFrom"]["secretKeyRef"]["name"] == "agora-nats-admin"


@pytest.mark.parametrize(
    "deployment",
    rendered.service_deployments(),
    ids=[d["metadata"]["name"] for d in rendered.service_deployments()],
)
def test_a_rolling_update_keeps_the_old_pods_until_the_new_ones_are_ready(
    deployment: dict[str, Any],
) -> None:
    strategy = deployment["spec"]["strategy"]
    if strategy["type"] == "Recreate":
        return  # chosen by a service that must never run twice: it answers 503 while it builds
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    # Time for a new release to build its read models from the log before Kubernetes calls
    # the rollout stuck.
    assert deployment["spec"]["progressDeadlineSeconds"] >= 1800


# -- TLS on NATS's client port --------------------------------------------------------------

# Where each image that connects to NATS reads the CA of its client port from (another image,
# the nats CLI's say, reads NATS_CA).
CA_VARIABLES = {"agora": "AGORA_NATS_TLS_CA_FILE"}
IMAGE_REGISTRY = "registry.example.org/"  # the production overlay's, for Agora's image


def connects_to_nats(container: dict[str, Any]) -> bool:
    return any(
        (reference := variable.get("valueFrom", {}).get("secretKeyRef"))
        and reference["name"].startswith("agora-nats-")
        and reference["key"] == "url"
        for variable in container.get("env", [])
    )


def nats_clients() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (f"{pod}/{container['name']}", spec, container)
        for pod, spec in rendered_pods()
        for container in spec.get("initContainers", []) + spec["containers"]
        if connects_to_nats(container)
    ]


def stub_secret_values() -> dict[str, dict[str, str]]:
    values: dict[str, dict[str, str]] = {}
    for name, key in rendered.secret_references():
        values.setdefault(name, {})[key] = f"{name}-{key}"
    return values


def test_the_nats_connecting_pods_are_found() -> None:
    pods = {name.rsplit("/", 1)[0] for name, _, _ in nats_clients()}
    assert {"Job/agora-streams-init", "CronJob/agora-stream-backup"} <= pods
    assert {f"Deployment/{d['metadata']['name']}" for d in rendered.service_deployments()} <= pods


@pytest.mark.parametrize(
    ("container_name", "spec", "container"), nats_clients(), ids=[c[0] for c in nats_clients()]
)
def test_every_nats_client_mounts_the_client_ports_ca_and_names_it(
    container_name: str, spec: dict[str, Any], container: dict[str, Any]
) -> None:
    """Its CA variable leads, through a volume it mounts, to `ca.crt` of the client port's
    Secret, and to nothing else of that Secret (not its key)."""
    image = container["image"].rpartition(":")[0].removeprefix(IMAGE_REGISTRY)
    assert image in CA_VARIABLES, f"{container_name}: which variable names the CA for {image}?"
    variable = CA_VARIABLES[image]
    variables = rendered.environment(container, stub_secret_values())
    assert variable in variables, f"{container_name} does not set {variable}"
    local = Path("/cert-manager/nats-server-tls")
    files = rendered.mounted(spec, container, variables, {"nats-server-tls": local})
    assert files[variable] == str(local / "ca.crt"), (container_name, variables[variable])
    for volume in spec["volumes"]:
        if volume.get("secret", {}).get("secretName") == "nats-server-tls":
            assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]


def test_the_client_ports_certificate_names_the_service_in_its_namespace_and_every_node() -> None:
    certificate = rendered.named("Certificate", "nats-server")
    namespace = certificate["metadata"]["namespace"]
    names = set(certificate["spec"]["dnsNames"])
    service = rendered.named("Service", "nats")["metadata"]["name"]
    assert {
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    } <= names
    statefulset = rendered.named("StatefulSet", "nats")
    headless = statefulset["spec"]["serviceName"]
    for index in range(int(statefulset["spec"]["replicas"])):
        assert f"nats-{index}.{headless}" in names
    assert f"*.{headless}.{namespace}.svc.cluster.local" in names
    # Signed by the namespace's CA, the one the clients' ca.crt is.
    assert certificate["spec"]["issuerRef"] == {"name": "agora-nats-ca", "kind": "Issuer"}
    assert certificate["spec"]["secretName"] == "nats-server-tls"


def test_the_nats_nodes_serve_clients_with_the_certificates_secret() -> None:
    conf = rendered.named("ConfigMap", "nats-config")["data"]["nats.conf"]
    # The top-level tls block (the client port's; the routes' is inside `cluster`).
    top_level = conf.split("cluster {")[0]
    block = [line.strip() for line in top_level.split("tls {")[1].split("}")[0].splitlines()]
    spec = rendered.pod_spec(rendered.named("StatefulSet", "nats"))["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "nats"]
    files = {
        "CERT": next(line for line in block if line.startswith("cert_file:")).split()[1],
        "KEY": next(line for line in block if line.startswith("key_file:")).split()[1],
    }
    local = Path("/cert-manager/nats-server-tls")
    mapped = rendered.mounted(spec, container, files, {"nats-server-tls": local})
    assert mapped == {"CERT": str(local / "tls.crt"), "KEY": str(local / "tls.key")}
    # Passwords stay the authentication: no client certificates are asked for.
    assert not [line for line in block if line.startswith(("verify", "ca_file"))]


def test_the_nats_urls_the_runbook_tells_to_create_are_tls() -> None:
    overlay = (DEPLOY / "overlays" / "production" / "kustomization.yaml").read_text()
    urls = [word for word in overlay.split() if "url=" in word and "@nats:" in word]
    assert urls and all(url.split("url=", 1)[1].startswith("tls://") for url in urls), urls
    config = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert "AGORA_NATS_URL=tls://nats:4222" in config["configMapGenerator"][0]["literals"]
