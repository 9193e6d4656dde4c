"""The rehearsal catches a broken release: with the alias move turned into a no-op, it fails at promotion.

The fault is injected only into the processes the workflow steps start (a module imported at
start-up through the emulated network's sitecustomize); the product's files are untouched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from serving_fixtures import build_artifact

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
TERRAFORM = subprocess.run(["bash", "-c", "command -v terraform"], capture_output=True, text=True).stdout.strip()


def rehearse(out: Path, artifact: Path, faults: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    env.update(REHEARSAL_FAULTS=faults, REHEARSAL_FAULTS_PATH=str(REPO / "tests" / "rehearsal" / "faults"))
    args = [sys.executable, "-m", "rehearsal", "--out", str(out), "--model-artifact", str(artifact)]
    args += ["--skip-apply", "production", "--stop-after", "staging serves version 1"]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)


def test_rehearsal_fails_at_the_promotion_that_does_not_move_the_alias(tmp_path: Path) -> None:
    assert TERRAFORM, "terraform is not on PATH: the rehearsal applies the stacks with it"
    artifact = build_artifact(tmp_path / "artifact")
    broken = rehearse(tmp_path / "broken", artifact, "alias_not_moved")
    assert broken.returncode == 1, broken.stdout[-4000:]
    results = json.loads((tmp_path / "broken" / "results.json").read_text())
    steps = [r["step"] for r in results]
    start = steps.index("Approve version 1")
    after = [r for r in results[start + 1 :] if not r["ok"]]
    assert after, f"the broken release went through: {steps[start:]}"
    first = after[0]
    # Either the product notices (its promotion step fails) or the rehearsal's check after it does.
    if first["step"].startswith("Promote"):
        assert re.fullmatch(r"\.github/workflows/deploy\.yml:\d+", first["workflow"]), first
    else:
        assert first["step"] == "staging serves version 1", first
        assert "function" in first["note"], first
