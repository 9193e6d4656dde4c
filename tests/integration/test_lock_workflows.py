"""Each workflow job installs only what it runs: `make venv` with the job's environment, dry-run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from lock_support import REPO

WORKFLOWS = REPO / ".github" / "workflows"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# job -> the extras its `make venv` may sync (`--extra NAME`); none of them but ci's brings torch.
EXPECTED = {
    ("ci", "test"): ["all"],
    ("deploy", "deploy"): [],
    ("promote", "promote"): [],
    ("retrain", "retrain"): [],
}


def install_commands(workflow: str, job: str, venv: Path) -> str:
    """What `make venv` would run in that job (its `env:` block applied), without running it."""
    spec = yaml.safe_load((WORKFLOWS / f"{workflow}.yml").read_text())["jobs"][job]
    assert any(step.get("run", "").strip() == "make venv" for step in spec["steps"]), f"{workflow}: no make venv"
    env = {k: v for k, v in os.environ.items() if k not in ("EXTRAS", "TORCH_INDEX")}
    env.update({k: str(v) for k, v in spec.get("env", {}).items() if "${{" not in str(v)})
    out = subprocess.run(
        ["make", "-n", "venv", f"VENV={venv}"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.mark.parametrize(("workflow", "job"), sorted(EXPECTED))
def test_each_job_installs_only_what_it_runs(workflow: str, job: str, tmp_path: Path) -> None:
    commands = install_commands(workflow, job, tmp_path / "venv")
    (sync,) = [line for line in commands.splitlines() if " sync " in line]
    assert "--locked" in sync  # from the lock, failing when it is stale
    assert re.findall(r"--extra (\S+)", sync) == EXPECTED[(workflow, job)]
    trains = EXPECTED[(workflow, job)] == ["all"]
    if trains:  # torch, CPU-only, from PyTorch's index; PyPI's CUDA build left out
        assert f"--index-url {CPU_INDEX} torch==" in commands
        assert "--no-install-package nvidia-cublas" in sync
    else:
        assert "torch" not in commands


def test_the_release_jobs_keep_their_extras_for_later_make_calls() -> None:
    """The extras are job-wide (env), so `make infra-apply` and `make image-push` (which need `venv`) reuse
    the control-plane install instead of installing everything."""
    for workflow in ("deploy", "promote", "retrain"):
        spec = yaml.safe_load((WORKFLOWS / f"{workflow}.yml").read_text())["jobs"][workflow]
        assert "control" in spec["env"]["EXTRAS"].split(), workflow
