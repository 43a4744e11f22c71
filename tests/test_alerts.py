"""The shipped alert rules and dashboard: valid for Prometheus (`promtool check rules`), the
stuck-projection alert firing on a stuck projection and not on a slow one (`promtool test
rules`), and every Agora metric they name one the services expose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import agora_events.metrics  # noqa: F401  (registers the metrics the rules name)
from tests import rendered

DASHBOARD = rendered.ROOT / "deploy" / "base" / "dashboards" / "agora.json"
AGORA_METRIC = re.compile(r"\bagora_[a-z_]+")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run does)")
    return found


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for rule in rendered.of_kind("PrometheusRule"):
        groups += rule["spec"]["groups"]
    return groups


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "agora-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups()}))
    return path


def test_the_shipped_rules_pass_promtool_check(rules_file: Path) -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def series(metric: str, projection: str, values: str) -> dict[str, str]:
    labels = f'namespace="agora",pod="a-1",projection="{projection}",stream="AGENDA"'
    return {"series": f"{metric}{{{labels}}}", "values": values}


STUCK_AND_SLOW = {
    "rule_files": ["agora-rules.yaml"],
    "evaluation_interval": "1m",
    "tests": [
        {
            "interval": "1m",
            "input_series": [
                # stuck: behind and rising, nothing applied on any replica
                series("agora_projection_lag", "roster", "5+5x30"),
                series("agora_projection_events_total", "roster", "100x30"),
                # slow: as far behind, but applying
                series("agora_projection_lag", "programme", "50x30"),
                series("agora_projection_events_total", "programme", "0+60x30"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "20m",
                    "alertname": "AgoraProjectionStuck",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "critical",
                                "namespace": "agora",
                                "projection": "roster",
                                "stream": "AGENDA",
                            },
                            "exp_annotations": {
                                "summary": "Projection roster on AGENDA is stuck",
                                "description": "105 events behind and applying none. Its "
                                "/readyz names it stalled; check the service's logs and "
                                'database (docs/operations.md, "Faults and recovery").',
                            },
                        }
                    ],
                }
            ],
        }
    ],
}


def test_the_stuck_projection_alert_fires_on_a_stuck_projection_only(
    rules_file: Path, tmp_path: Path
) -> None:
    tests = tmp_path / "agora-rules-test.yaml"
    tests.write_text(yaml.safe_dump(STUCK_AND_SLOW))
    tested = subprocess.run(
        [promtool(), "test", "rules", str(tests)], capture_output=True, text=True, cwd=tmp_path
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def exposed_metrics() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        for sample in family.samples:
            names.add(sample.name)
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_{part}" for part in ("bucket", "count", "sum")}
    return names


def test_every_agora_metric_the_rules_and_dashboard_name_is_exposed() -> None:
    expressions = [rule["expr"] for group in rule_groups() for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    expressions += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = {name for expression in expressions for name in AGORA_METRIC.findall(expression)}
    assert named
    assert named - exposed_metrics() == set()


def test_every_alert_says_how_bad_it_is_and_what_it_means() -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
