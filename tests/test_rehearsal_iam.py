"""The strict rehearsal fails where a real deploy would: one action the code uses, taken out of one
role's policy, fails the step that needs it, and the step names the action.

Three roles, three steps: the staging deploy role without dynamodb:CreateTable (Terraform's apply),
the function's role without sagemaker:InvokeEndpoint (the promotion's smoke tests, through the public
API), the inference role without s3:GetObject on model artifacts (the endpoint the promotion creates).
The three rehearsals run side by side (each mostly waits on Terraform and the emulated services).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serving_fixtures import build_artifact

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CASES = {
    "apply": ("modules/stack_access/apply.tf:Tables:dynamodb:CreateTable", "Terraform apply (staging)",
              "dynamodb:CreateTable", "deploy-staging"),
    "function": ("execution_roles.tf:InvokeEndpoint:sagemaker:InvokeEndpoint", "Promote",
                 "sagemaker:InvokeEndpoint", "staging-function"),
    "inference": ("execution_roles.tf:ReadModelArtifacts:s3:GetObject", "Promote", "s3:GetObject",
                  "staging-inference"),
}  # fmt: skip


def test_a_removed_grant_fails_the_step_that_needs_it_naming_the_action(tmp_path: Path) -> None:
    artifact = build_artifact(tmp_path / "artifact")
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "AWS_EMULATOR_IAM": "enforce"}
    runs = {}
    for name, (grant, step, _, _) in CASES.items():
        stop = "Terraform apply (staging)" if step.startswith("Terraform") else "staging serves version 1"
        args = [sys.executable, "-m", "rehearsal", "--out", str(tmp_path / name), "--model-artifact", str(artifact),
                "--skip-apply", "production", "--stop-after", stop, "--remove-grant", grant]  # fmt: skip
        log = (tmp_path / f"{name}.log").open("w")
        runs[name] = (subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    for name, (proc, log) in runs.items():
        assert proc.wait(timeout=1800) == 1, f"{name}: the rehearsal passed without the grant ({log.name})"
        log.close()
    for name, (_, step, action, role) in CASES.items():
        results = json.loads((tmp_path / name / "results.json").read_text())
        failed = [r for r in results if not r["ok"]]
        assert failed, name
        first = failed[0]
        assert first["step"].startswith(step), (name, first)
        assert action in first["note"] and role in first["note"], (name, first["note"])
        before = results[: results.index(first)]
        assert all(r["ok"] for r in before), (name, [r["step"] for r in before if not r["ok"]])
