"""Every service is wired into every place that lists the services.

A service is a directory ``services/<name>`` holding the package ``agora_<name>``. What can be
derived from ``services/*`` is derived: the ``agora`` script's members, the packages `.ci/run`
type-checks, pytest's test paths, ruff's first-party packages (``agora_*``) and the sources of
the domain-purity contract (``*.domain``). The rest cannot glob (TOML, Kubernetes manifests, a
Dockerfile, the NATS configuration) or are deliberate registries, so they name each service.
Each test below is one such place; it fails naming the service and the file to add it to.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agora_cli.services import SERVICES as CLI_SERVICES
from agora_events.service import ServiceDefinition, create_app

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
DEPLOY = ROOT / "deploy" / "base"
KERNEL = ROOT / "libs" / "events" / "agora_events"

# The import-linter contracts that must name or match every service (tests/test_import_contracts.py
# shows that they then catch a broken one).
INDEPENDENCE = "Services never import each other"
KERNEL_IMPORTS_NO_SERVICE = "The shared kernel imports no service and no app"
PURE_DOMAIN = "Domain code is pure: no NATS, SQLAlchemy, FastAPI or FastStream"


def discover_services() -> list[str]:
    return sorted(
        path.name
        for path in (ROOT / "services").iterdir()
        if path.is_dir() and not path.name.startswith((".", "_"))
    )


SERVICES = discover_services()
each_service = pytest.mark.parametrize("name", SERVICES)


def definition_of(name: str) -> ServiceDefinition[Any, Any]:
    module = importlib.import_module(f"agora_{name}.main")
    definitions = [v for v in vars(module).values() if isinstance(v, ServiceDefinition)]
    assert len(definitions) == 1, f"agora_{name}.main defines {len(definitions)} services"
    return definitions[0]


def writes_a_context(name: str) -> bool:
    """Whether the service appends to a stream of its own. One that does not (the console:
    it reads the other contexts' streams and sends commands through their HTTP APIs) says
    so with ``own_stream=False`` in its ServiceDefinition; it then has no event contracts,
    no stream and no feed of its own, and its NATS user publishes on no context's subjects."""
    return definition_of(name).own_stream


def missing(name: str, place: str, fix: str) -> str:
    return f"service {name!r} (services/{name}/agora_{name}) is missing from {place}: {fix}"


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def import_linter() -> dict[str, Any]:
    config: dict[str, Any] = pyproject()["tool"]["importlinter"]
    return config


def contract(name: str) -> dict[str, Any]:
    for candidate in import_linter()["contracts"]:
        if candidate["name"] == name:
            return dict(candidate)
    raise AssertionError(f"pyproject.toml has no import-linter contract named {name!r}")


def python_constant(path: Path, name: str) -> Any:
    """The literal value assigned to ``name`` at the top of a module, read without importing."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            return ast.literal_eval(value)
    raise AssertionError(f"{path.relative_to(ROOT)} assigns no {name}")


def module_expression_matches(expression: str, module: str) -> bool:
    """import-linter's module expressions: ``*`` is one name, ``**`` one or more."""
    pattern = r"\.".join(
        r"[^.]+(\.[^.]+)*" if part == "**" else r"[^.]+" if part == "*" else re.escape(part)
        for part in expression.split(".")
    )
    return re.fullmatch(pattern, module) is not None


def manifests(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def nats_config_map() -> dict[str, str]:
    config_map = next(d for d in manifests(DEPLOY / "nats.yaml") if d["kind"] == "ConfigMap")
    data: dict[str, str] = config_map["data"]
    return data


def nats_user_blocks() -> dict[str, str]:
    """Each NATS user of auth.conf, with the text of its entry up to the next user."""
    authorization = nats_config_map()["auth.conf"]
    starts = list(re.finditer(r"\buser:\s*([\w-]+)", authorization))
    ends = [match.start() for match in starts[1:]] + [len(authorization)]
    return {
        match.group(1): authorization[match.start() : end]
        for match, end in zip(starts, ends, strict=True)
    }


# -- the inventory itself ------------------------------------------------------------------


def test_the_inventory_finds_the_services() -> None:
    assert {"agenda", "registration"} <= set(SERVICES), SERVICES


@each_service
def test_every_service_directory_holds_its_agora_package_and_a_pyproject(name: str) -> None:
    directory = ROOT / "services" / name
    assert (directory / f"agora_{name}" / "__init__.py").is_file(), (
        f"services/{name} holds no package agora_{name}: a service named {name!r} is the "
        f"package services/{name}/agora_{name}/ (with __init__.py)"
    )
    assert (directory / "pyproject.toml").is_file(), (
        f"services/{name} has no pyproject.toml: the `agora` script installs the services "
        "that have one, and only those"
    )


# -- the kernel ----------------------------------------------------------------------------


@each_service
def test_every_service_has_its_event_contracts_in_the_kernel(name: str) -> None:
    contracts = KERNEL / "contracts"
    if not writes_a_context(name):
        assert not (contracts / f"{name}.py").is_file(), (
            f"{name} declares own_stream=False but the kernel holds contracts for it"
        )
        return
    assert (contracts / f"{name}.py").is_file(), missing(
        name,
        "libs/events/agora_events/contracts/",
        f"add its events in libs/events/agora_events/contracts/{name}.py",
    )
    assert name in python_constant(contracts / "__init__.py", "CONTEXT_MODULES"), missing(
        name,
        "libs/events/agora_events/contracts/__init__.py",
        f"add {name!r} to CONTEXT_MODULES",
    )


@each_service
def test_every_service_has_a_stream(name: str) -> None:
    if not writes_a_context(name):
        assert name not in python_constant(KERNEL / "streams.py", "CONTEXTS"), (
            f"{name} declares own_stream=False but has a stream in CONTEXTS"
        )
        return
    assert name in python_constant(KERNEL / "streams.py", "CONTEXTS"), missing(
        name, "libs/events/agora_events/streams.py", f"add {name!r} to CONTEXTS"
    )


# -- the CLI and the workspace -------------------------------------------------------------


@each_service
def test_every_service_is_registered_with_the_cli(name: str) -> None:
    modules = {entry.name: entry.module for entry in CLI_SERVICES}
    assert modules.get(name) == f"agora_{name}.main", missing(
        name,
        "cli/agora_cli/services.py",
        f'add ServiceEntry("{name}", "agora_{name}.main", <port>) to SERVICES',
    )


def agora_script_members() -> list[str]:
    """The MEMBERS the `agora` script computes: its preamble, up to its first function, run
    with ROOT set to this checkout."""
    script = (ROOT / "agora").read_text()
    preamble, found, _ = script.partition("\nneeds_install()")
    assert found, "the `agora` script no longer defines needs_install(); update this test"
    preamble, roots = re.subn(r"^ROOT=.*$", f"ROOT={shlex.quote(str(ROOT))}", preamble, flags=re.M)
    assert roots == 1, "the `agora` script no longer sets ROOT in one line; update this test"
    result = subprocess.run(
        ["bash", "-c", preamble + '\nprintf "%s\\n" "${MEMBERS[@]}"'],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if key != "AGORA_VENV"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.split()


@each_service
def test_every_service_is_a_member_of_the_agora_script(name: str) -> None:
    assert f"services/{name}" in agora_script_members(), missing(
        name,
        "the `agora` script's MEMBERS (derived from services/*/pyproject.toml)",
        f"give services/{name} a pyproject.toml",
    )


@each_service
def test_every_service_is_on_the_mypy_path(name: str) -> None:
    assert f"services/{name}" in pyproject()["tool"]["mypy"]["mypy_path"], missing(
        name, "pyproject.toml", f'add "services/{name}" to [tool.mypy] mypy_path'
    )


@each_service
def test_ruff_sorts_every_service_as_first_party(name: str) -> None:
    """Behaviour, not configuration: a service import after a third-party one, in its own
    section, is what ruff's isort accepts only if the service is first-party."""
    probe = f"import pydantic\n\nimport agora_{name}\n"
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [ruff, "check", "--no-cache", "--select", "I", "--stdin-filename", "tests/probe.py", "-"],
        cwd=ROOT,
        input=probe,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, missing(
        name,
        "ruff's first-party packages",
        'keep [tool.ruff.lint.isort] known-first-party = ["agora_*"] in pyproject.toml\n'
        + result.stdout,
    )


# -- the import contracts ------------------------------------------------------------------


@each_service
def test_every_service_is_a_root_package_of_the_import_contracts(name: str) -> None:
    assert f"agora_{name}" in import_linter()["root_packages"], missing(
        name,
        "pyproject.toml",
        f'add "agora_{name}" to [tool.importlinter] root_packages (else no contract sees it)',
    )


@each_service
def test_every_service_is_independent_of_the_others_in_the_import_contracts(name: str) -> None:
    assert f"agora_{name}" in contract(INDEPENDENCE)["modules"], missing(
        name,
        "pyproject.toml",
        f'add "agora_{name}" to the modules of the contract {INDEPENDENCE!r}',
    )


@each_service
def test_the_kernel_is_forbidden_to_import_every_service(name: str) -> None:
    assert f"agora_{name}" in contract(KERNEL_IMPORTS_NO_SERVICE)["forbidden_modules"], missing(
        name,
        "pyproject.toml",
        f'add "agora_{name}" to the forbidden_modules of the contract '
        f"{KERNEL_IMPORTS_NO_SERVICE!r}",
    )


@each_service
def test_every_service_domain_is_held_pure_by_the_import_contracts(name: str) -> None:
    package = ROOT / "services" / name / f"agora_{name}"
    assert (package / "domain.py").is_file() or (package / "domain" / "__init__.py").is_file(), (
        f"services/{name}/agora_{name} has no domain.py or domain/ package: the contract "
        f"{PURE_DOMAIN!r} checks agora_{name}.domain, and would check nothing of this service"
    )
    pure = contract(PURE_DOMAIN)
    assert any(
        module_expression_matches(expression, f"agora_{name}.domain")
        for expression in pure["source_modules"]
    ), missing(
        name,
        "pyproject.toml",
        f'keep "*.domain" (or add "agora_{name}.domain") in the source_modules of the '
        f"contract {PURE_DOMAIN!r}",
    )
    assert pure.get("as_packages", True), (
        f"the contract {PURE_DOMAIN!r} must treat its sources as packages, or a domain/ "
        "package's modules go unchecked"
    )


# -- the image and the manifests -----------------------------------------------------------


@each_service
def test_every_service_is_installed_in_the_image(name: str) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    installs = " ".join(re.findall(r"pip install[^\n]*", dockerfile))
    assert re.search(rf"\./services/{re.escape(name)}(?![\w/-])", installs), missing(
        name, "deploy/Dockerfile", f"add ./services/{name} to the pip install of the build stage"
    )


@each_service
def test_every_service_has_a_deployment_in_the_kustomization(name: str) -> None:
    resources = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    assert f"{name}.yaml" in resources, missing(
        name,
        "deploy/base/kustomization.yaml",
        f"add deploy/base/{name}.yaml (its Deployment and Service) to resources",
    )
    manifest = DEPLOY / f"{name}.yaml"
    assert manifest.is_file(), missing(name, "deploy/base/", f"add deploy/base/{name}.yaml")
    deployments = [d["metadata"]["name"] for d in manifests(manifest) if d["kind"] == "Deployment"]
    assert name in deployments, missing(
        name, f"deploy/base/{name}.yaml", f"define the Deployment named {name!r}"
    )


@each_service
def test_every_service_has_its_own_database(name: str) -> None:
    documents = manifests(DEPLOY / "postgres.yaml")
    cluster = next(d for d in documents if d["kind"] == "Cluster")
    roles = {role["name"] for role in cluster["spec"]["managed"]["roles"]}
    owners = {d["spec"]["name"]: d["spec"]["owner"] for d in documents if d["kind"] == "Database"}
    assert name in roles and owners.get(name) == name, missing(
        name,
        "deploy/base/postgres.yaml",
        f"add a managed role {name!r} (passwordSecret agora-pg-{name}) and a Database "
        f"{name!r} owned by it",
    )


@each_service
def test_every_service_has_a_nats_user_that_publishes_to_its_own_context(name: str) -> None:
    users = nats_user_blocks()
    place = "the auth.conf of deploy/base/nats.yaml"
    assert name in users, missing(
        name, place, f"add a user {name!r} like the other services' (see docs/operations.md)"
    )
    password = f"NATS_{name.upper()}_PASSWORD"
    assert f"password: ${password}" in users[name], missing(
        name, place, f"give the user {name!r} the password ${password}"
    )
    if writes_a_context(name):
        assert f'"{name}.>"' in users[name], missing(
            name, place, f'allow the user {name!r} to publish to "{name}.>"'
        )
    else:
        contexts = python_constant(KERNEL / "streams.py", "CONTEXTS")
        assert not [c for c in contexts if f'"{c}.>"' in users[name]], (
            f"{name} appends to no stream, yet its NATS user may publish on a context's subjects"
        )
    statefulset = next(d for d in manifests(DEPLOY / "nats.yaml") if d["kind"] == "StatefulSet")
    env = {
        variable["name"]: variable.get("valueFrom", {}).get("secretKeyRef", {})
        for variable in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env.get(password) == {"name": f"agora-nats-{name}", "key": "password"}, missing(
        name,
        "the NATS StatefulSet of deploy/base/nats.yaml",
        f"set {password} from the secret agora-nats-{name} (key: password)",
    )


@each_service
def test_the_subscriber_user_follows_every_service_contexts_feed(name: str) -> None:
    if not writes_a_context(name):
        return  # no stream, so no feed of its own to follow
    subscriber = nats_user_blocks().get("subscriber", "")
    subscribe = re.search(r"subscribe:\s*\{allow:\s*\[([^\]]*)\]", subscriber)
    assert subscribe, "the NATS user 'subscriber' of deploy/base/nats.yaml has no subscribe list"
    assert f'"feed.{name}.>"' in subscribe.group(1), missing(
        name,
        "the auth.conf of deploy/base/nats.yaml",
        f'add "feed.{name}.>" to the subscribe allow list of the user subscriber',
    )


@each_service
async def test_no_route_of_the_service_shadows_a_route_of_the_shell(name: str) -> None:
    """The service's own routes are matched before the shell's (they are asked for far more
    often), so none of them may claim the probes, the schemas, the metrics or the docs."""
    definition = definition_of(name)
    app = create_app(definition, definition.settings())  # no lifespan: nothing connects
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        health = await client.get("/healthz")
        assert health.json() == {"status": "ok", "service": definition.context}, health.text
        for path in ("/events/schemas", "/metrics", "/docs", "/openapi.json"):
            answer = await client.get(path)
            assert answer.status_code == 200, (path, answer.text[:300])
        assert (await client.get("/readyz")).status_code == 503  # the shell's: not started
