"""The AsyncAPI document passes the official parser, as CI's step does (when node is here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CHECKER = REPO / ".ci" / "asyncapi"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_committed_asyncapi_document_passes_the_official_parser() -> None:
    if not (CHECKER / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.skip(
            "@asyncapi/parser is not installed: "
            "npm ci --prefix .ci/asyncapi --ignore-scripts (CI's step does it)"
        )
    result = subprocess.run(
        ["node", str(CHECKER / "validate.mjs"), "docs/events/asyncapi.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout
