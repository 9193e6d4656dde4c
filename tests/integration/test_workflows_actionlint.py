"""actionlint really lints: the repository's workflows pass and a deliberately broken one fails."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ACTIONLINT = Path(os.environ.get("ACTIONLINT", REPO / ".venv-tools" / "bin" / "actionlint"))

BROKEN = """\
name: broken
on:
  push:
    branchs: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.events.ref }}"
      - uses: actions/checkout@v4
        with:
          fetch-depthh: 1
"""


@pytest.fixture(scope="module")
def actionlint() -> Path:
    """The linter `make actionlint` uses, installed through that target when missing."""
    if not ACTIONLINT.exists():
        result = subprocess.run(
            ["make", "actionlint-install"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"actionlint could not be installed: {result.stderr[-500:]}")
    return ACTIONLINT


def lint(actionlint: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(actionlint), *map(str, files)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_repository_workflows_pass(actionlint: Path) -> None:
    workflows = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    result = lint(actionlint, *workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_broken_workflow_is_caught(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    result = lint(actionlint, broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'unexpected key "branchs"' in result.stdout
    assert 'property "events" is not defined' in result.stdout
    assert 'input "fetch-depthh" is not defined' in result.stdout
    assert result.stdout.count(f"{broken}:") >= 3
