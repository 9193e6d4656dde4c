"""The strict rehearsal fails where a real deploy would: one action the code uses, taken out of one
role's policy, fails the step that needs it, and the step names the action.

Three roles, three steps: the staging deploy role without iam:GetRole on its stack's roles (Terraform's apply),
the function's role without sagemaker:InvokeEndpoint (the promotion's smoke tests, through the public
API), the inference role without s3:GetObject on model artifacts (the endpoint the promotion creates).
Each is one segment of the breakages rehearsal (tests/rehearsal_runs.py, tests/rehearsal/breakages.py).
"""

from __future__ import annotations

import pytest
from rehearsal_runs import Runs, started

pytestmark = pytest.mark.slow
CASES = {
    "no_role_read": ("Terraform apply (staging)", "iam:GetRole", "catdog-github-deploy-staging"),
    "no_invoke_endpoint": ("Promote", "sagemaker:InvokeEndpoint", "catdog-staging-function"),
    "no_model_read": ("Promote", "s3:GetObject", "catdog-staging-inference"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return started(tmp_path_factory)


@pytest.mark.parametrize("name", list(CASES))
def test_a_removed_grant_fails_the_step_that_needs_it_naming_the_action(runs: Runs, name: str) -> None:
    step, action, role = CASES[name]
    segment = runs.segment(name)
    failed = [r for r in segment if not r["ok"]]
    assert failed, f"the rehearsal passed without {action}: {[r['step'] for r in segment]} {runs.log()[-3000:]}"
    first = failed[0]
    assert first["step"].startswith(step), first
    assert f"AccessDenied: {role} may not {action}" in first["note"], first["note"]
    before = segment[: segment.index(first)]
    assert all(r["ok"] for r in before), [r["step"] for r in before if not r["ok"]]


def test_with_every_grant_back_every_step_passes(runs: Runs) -> None:
    """Every step around the breakages (set-up, and the releases after each grant was put back) passed."""
    around = runs.outside_segments()
    assert around and all(r["ok"] for r in around), [(r["step"], r["note"]) for r in around if not r["ok"]]
