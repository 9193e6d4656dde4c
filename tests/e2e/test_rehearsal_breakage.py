"""The rehearsal catches a broken release: with the alias move turned into a no-op, it fails at promotion.

The fault is injected only into the processes the workflow steps start (a module imported at
start-up through the emulated network's sitecustomize); the product's files are untouched.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from rehearsal_runs import Runs, started

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TERRAFORM = subprocess.run(["bash", "-c", "command -v terraform"], capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return started(tmp_path_factory)


def test_rehearsal_fails_at_the_promotion_that_does_not_move_the_alias(runs: Runs) -> None:
    assert TERRAFORM, "terraform is not on PATH: the rehearsal applies the stacks with it"
    segment = runs.segment("alias_not_moved")
    failed = [r for r in segment if not r["ok"]]
    assert failed, f"the broken release went through: {[r['step'] for r in segment]}"
    first = failed[0]
    # Either the product notices (its promotion step fails) or the rehearsal's check after it does.
    if first["step"].startswith("Promote"):
        assert re.fullmatch(r"\.github/workflows/deploy\.yml:\d+", first["workflow"]), first
    else:
        assert re.fullmatch(r"staging serves version \d+", first["step"]), first
        assert "function" in first["note"], first
