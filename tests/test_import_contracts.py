"""The import contracts of pyproject.toml hold for the real code, and catch a broken service.

The broken service, ``agora_broken``, is added to a copy of the contracts the way the service
inventory (tests/test_service_inventory.py) has every new service added: wherever a list names
a service, it is named too. Its domain imports SQLAlchemy and another service; ``lint-imports``
must fail on both counts, with the domain a single module or a package of modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.test_service_inventory import (
    INDEPENDENCE,
    KERNEL_IMPORTS_NO_SERVICE,
    PURE_DOMAIN,
    PYPROJECT,
    ROOT,
    SERVICES,
)

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MODEL = "agora_agenda"  # the service whose place in each list the new one takes
BROKEN = "agora_broken"
BAD_IMPORTS = '"""Deliberately broken."""\n\nimport sqlalchemy\n\nimport agora_agenda\n'


def real_config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return config


def with_service(value: Any, new: str) -> Any:
    """``value`` with ``new`` named next to the model service, in every list that names it or
    one of its modules (``agora_agenda.x`` gives ``agora_broken.x``). Wildcards need nothing."""
    if isinstance(value, dict):
        return {key: with_service(item, new) for key, item in value.items()}
    if not isinstance(value, list):
        return value
    value = [with_service(item, new) for item in value]
    added = [
        new + item.removeprefix(MODEL)
        for item in value
        if isinstance(item, str) and (item == MODEL or item.startswith(MODEL + "."))
    ]
    return value + [item for item in added if item not in value]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r} in [tool.importlinter]; extend toml_value")


def write_config(path: Path, config: dict[str, Any]) -> None:
    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in config.items() if k != "contracts"]
    for contract in config["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in contract.items()]
    path.write_text("\n".join(lines) + "\n")


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    members = [ROOT / "libs" / "events", *(ROOT / "services" / s for s in SERVICES), ROOT / "cli"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in [cwd, *members]))
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo", config],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_real_code_keeps_every_import_contract() -> None:
    result = lint_imports(PYPROJECT, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in real_config()["contracts"]:
        assert f"{contract['name']} KEPT" in result.stdout, result.stdout


def test_the_broken_service_is_added_to_every_list_that_names_a_service() -> None:
    config = with_service(real_config(), BROKEN)
    assert BROKEN in config["root_packages"]
    contracts = {contract["name"]: contract for contract in config["contracts"]}
    assert BROKEN in contracts[INDEPENDENCE]["modules"]
    assert BROKEN in contracts[KERNEL_IMPORTS_NO_SERVICE]["forbidden_modules"]


@pytest.mark.parametrize(
    ("files", "offender"),
    [
        ({"domain.py": BAD_IMPORTS}, f"{BROKEN}.domain"),
        (
            {"domain/__init__.py": '"""A domain package."""\n', "domain/rules.py": BAD_IMPORTS},
            f"{BROKEN}.domain.rules",
        ),
    ],
    ids=["domain-module", "domain-package"],
)
def test_a_new_service_whose_domain_imports_sqlalchemy_and_another_service_fails(
    tmp_path: Path, files: dict[str, str], offender: str
) -> None:
    package = tmp_path / BROKEN
    package.mkdir()
    (package / "__init__.py").write_text('"""A service that breaks the contracts."""\n')
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    config = tmp_path / "pyproject.toml"
    write_config(config, with_service(real_config(), BROKEN))

    result = lint_imports(config, cwd=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{INDEPENDENCE} BROKEN" in result.stdout, output
    assert f"{PURE_DOMAIN} BROKEN" in result.stdout, output
    assert f"{KERNEL_IMPORTS_NO_SERVICE} KEPT" in result.stdout, output
    assert f"{offender} -> sqlalchemy" in result.stdout, output
    assert f"{offender} -> {MODEL}" in result.stdout, output
