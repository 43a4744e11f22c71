"""The Kubernetes manifests agree with the code they deploy."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from agora_cli.services import SERVICES

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
