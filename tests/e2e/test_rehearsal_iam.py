"""The strict rehearsal fails where a real deploy would: one action the code uses, taken out of one
role's policy, fails the step that needs it, and the step names the action.

Three roles, three steps: the staging deploy role without dynamodb:CreateTable (Terraform's apply),
the function's role without sagemaker:InvokeEndpoint (the promotion's smoke tests, through the public
API), the inference role without s3:GetObject on model artifacts (the endpoint the promotion creates).
The rehearsals run side by side with the other breakages (tests/rehearsal_runs.py).
"""

from __future__ import annotations

import json

import pytest
from rehearsal_runs import Runs, started

pytestmark = pytest.mark.slow
CASES = {
    "no_create_table": ("Terraform apply (staging)", "dynamodb:CreateTable", "catdog-github-deploy-staging"),
    "no_invoke_endpoint": ("Promote", "sagemaker:InvokeEndpoint", "catdog-staging-function"),
    "no_model_read": ("Promote", "s3:GetObject", "catdog-staging-inference"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return started(tmp_path_factory)


@pytest.mark.parametrize("name", list(CASES))
def test_a_removed_grant_fails_the_step_that_needs_it_naming_the_action(runs: Runs, name: str) -> None:
    step, action, role = CASES[name]
    assert runs.wait(name) == 1, f"the rehearsal passed without {action}: {runs.log(name)[-3000:]}"
    results = json.loads((runs.out / name / "results.json").read_text())
    failed = [r for r in results if not r["ok"]]
    first = failed[0]
    assert first["step"].startswith(step), first
    assert f"AccessDenied: {role} may not {action}" in first["note"], first["note"]
    before = results[: results.index(first)]
    assert all(r["ok"] for r in before), [r["step"] for r in before if not r["ok"]]
