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


def test_a_job_cancelled_mid_promotion_rolls_back_and_repairs_through_its_own_steps(runs: Runs) -> None:
    """Cancelled as GitHub cancels a job (SIGINT to the step's process, SIGTERM 7.5 s later, the tree killed
    2.5 s after that) once the candidate serves: the promotion starts its rollback on the signal, the
    repair step runs because the job was cancelled (and finishes the restore when the kill cut it short,
    once the killed holder's lease has expired), and the release before it serves again (the check right
    after the segment)."""
    segment = runs.segment("cancelled_promotion")
    promote = next(r for r in segment if r["step"].startswith("Promote"))
    assert promote["ok"] and promote["note"].startswith("cancelled at 'stage deployment"), promote
    log = Path(promote["note"].split("; log ")[-1].split(";")[0]).read_text()
    # The signal can land inside a library call that wraps it (seen: the idna codec), so only its name is sure.
    assert "rolling back: " in log and "interrupted by SIGINT" in log, log[-2000:]
    after_promote = [r["step"] for r in segment[segment.index(promote) + 1 :]]
    assert after_promote[:2] == ["Repair after a cancelled or failed release", "Job summary"], after_promote
    assert all(r["ok"] for r in segment), [(r["step"], r["note"]) for r in segment if not r["ok"]]
    steps = [r["step"] for r in runs.results()]
    after = runs.results()[steps.index("breakage cancelled_promotion: end") + 1]
    assert re.fullmatch(r"staging serves version \d+", after["step"]) and after["ok"], after
