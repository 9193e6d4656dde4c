"""IAM analysis of the roles the bootstrap plan creates: an empty findings table, and widening fails.

The plan is made against a local moto server (only the caller identity is read); the policies are
analysed by cloudsplaining, parliament and the project's own checks (infra/tools/iam_rules.py),
which run in the IAM tools' virtualenv (`make iam-tools`, a prerequisite of `make pytest`).
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_infra_moto import INFRA, PLUGIN_DIR, REPO, TERRAFORM, emulator_env, free_port, working_copy

TOOLS_PYTHON = REPO / ".venv-tools" / "iam" / "bin" / "python"
ANALYSIS = INFRA / "tools" / "iam_analysis.py"
REPOSITORY = "example-org/catdog-mlops"


@pytest.fixture(autouse=True)
def _terraform_present() -> None:
    assert TERRAFORM, "terraform is not on PATH: the IAM analysis plans the bootstrap stack with it"


def run(work: Path, *args: str) -> str:
    result = subprocess.run(
        [TERRAFORM or "terraform", *args], cwd=work, env=emulator_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"terraform {args[0]}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`terraform show -json` of a plan of infra/bootstrap (against moto, for the caller identity)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        work = working_copy(tmp_path_factory.mktemp("iam"), INFRA / "bootstrap")
        init = ["init", "-input=false", "-no-color"] + ([f"-plugin-dir={PLUGIN_DIR}"] if PLUGIN_DIR.is_dir() else [])
        run(work, *init)
        run(
            work,
            "plan",
            "-input=false",
            "-no-color",
            "-var-file=env/bootstrap.tfvars",
            f"-var=aws_endpoint_url=http://127.0.0.1:{port}",
            "-out=bootstrap.tfplan",
        )
        yield json.loads(run(work, "show", "-json", "bootstrap.tfplan"))
    finally:
        server.stop()


def analyse(tmp_path: Path, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert TOOLS_PYTHON.is_file(), "the IAM tools are not installed: run `make iam-tools`"
    paths = []
    for i, item in enumerate(plans):
        path = tmp_path / f"plan-{i}.json"
        path.write_text(json.dumps(item))
        paths.append(str(path))
    result = subprocess.run(
        [str(TOOLS_PYTHON), str(ANALYSIS), "--json", "--repository", REPOSITORY, *paths],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_findings_table_is_empty(plan: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = subprocess.run(
        [str(TOOLS_PYTHON), str(ANALYSIS), "--repository", REPOSITORY, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    with capsys.disabled():
        print("\n" + result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 findings" in result.stdout
    assert "10 roles" in result.stdout


# --- widening a policy back -------------------------------------------------------------------------


def _resource(plan: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    for res in plan["planned_values"]["root_module"]["resources"]:
        if res["type"] == kind and res["values"].get("name") == name:
            return res["values"]
    raise KeyError(f"{kind} {name}")


def _add_statement(policy: str, statement: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(plan: dict[str, Any]) -> None:
        values = _resource(plan, "aws_iam_policy", policy)
        doc = json.loads(values["policy"])
        doc["Statement"].append({"Effect": "Allow", **statement})
        values["policy"] = json.dumps(doc)

    return mutate


def _add_inline_statement(policy: str, statement: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """An execution role's inline policy (aws_iam_role_policy, named by its key: staging-pipeline)."""

    def mutate(plan: dict[str, Any]) -> None:
        for res in plan["planned_values"]["root_module"]["resources"]:
            if res["type"] == "aws_iam_role_policy" and res["values"].get("name") == policy:
                doc = json.loads(res["values"]["policy"])
                doc["Statement"].append({"Effect": "Allow", **statement})
                res["values"]["policy"] = json.dumps(doc)
                return
        raise KeyError(f"aws_iam_role_policy {policy}")

    return mutate


def _edit_trust(role: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(plan: dict[str, Any]) -> None:
        values = _resource(plan, "aws_iam_role", role)
        doc = json.loads(values["assume_role_policy"])
        edit(doc["Statement"][0])
        values["assume_role_policy"] = json.dumps(doc)

    return mutate


def _drop_boundary(plan: dict[str, Any]) -> None:
    _resource(plan, "aws_iam_role", "catdog-github-deploy-staging")["permissions_boundary"] = None


def _boundary_allows_policy_writes(plan: dict[str, Any]) -> None:
    values = _resource(plan, "aws_iam_policy", "catdog-boundary")
    doc = json.loads(values["policy"])
    for st in doc["Statement"]:
        if st["Effect"] == "Deny" and isinstance(st["Action"], list):
            st["Action"] = [a for a in st["Action"] if a not in ("iam:Put*", "iam:Delete*")]
    values["policy"] = json.dumps(doc)


def _signing_key_allows(principal: str) -> Callable[[dict[str, Any]], None]:
    """The registration key's own policy (infra/bootstrap/signing.tf) letting `principal` sign too."""

    def mutate(plan: dict[str, Any]) -> None:
        (values,) = [
            r["values"]
            for r in plan["planned_values"]["root_module"]["resources"]
            if r["type"] == "aws_kms_key" and r["values"].get("key_usage") == "SIGN_VERIFY"
        ]
        doc = json.loads(values["policy"])
        signs = next(st for st in doc["Statement"] if st.get("Sid") == "PipelineSigns")
        signs["Principal"]["AWS"] = [signs["Principal"]["AWS"], principal]
        values["policy"] = json.dumps(doc)

    return mutate


ARN = "arn:aws:sagemaker:eu-west-1:123456789012"
WIDENINGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "deploy role writes role policies": (
        _add_statement(
            "catdog-staging-apply-core",
            {
                "Action": ["iam:PutRolePolicy", "iam:AttachRolePolicy"],
                "Resource": "arn:aws:iam::123456789012:role/catdog-*",
            },
        ),
        "iam-write",
    ),
    "deploy role creates roles": (
        _add_statement("catdog-staging-build", {"Action": "iam:CreateRole", "Resource": "*"}),
        "iam-write",
    ),
    "pass any role": (
        _add_statement("catdog-staging-release", {"Action": "iam:PassRole", "Resource": "*"}),
        "passrole-wildcard",
    ),
    "api gateway everywhere": (
        _add_statement("catdog-staging-apply-edge", {"Action": "apigateway:*", "Resource": "*"}),
        "changes-production",
    ),
    "staging changes the production endpoint": (
        _add_statement(
            "catdog-staging-release",
            {"Action": "sagemaker:UpdateEndpoint", "Resource": f"{ARN}:endpoint/catdog-production-classifier"},
        ),
        "changes-production",
    ),
    "staging approves versions": (
        _add_statement(
            "catdog-staging-release",
            {"Action": "sagemaker:UpdateModelPackage", "Resource": f"{ARN}:model-package/catdog-staging-models/*"},
        ),
        "approves-versions",
    ),
    "the pipeline registers approved versions": (
        _add_inline_statement(
            "staging-pipeline",
            {"Action": "sagemaker:CreateModelPackage", "Resource": f"{ARN}:model-package/catdog-staging-models/*"},
        ),
        "registers-approved",
    ),
    "a deploy role signs registrations": (
        _add_statement(
            "catdog-staging-release",
            {"Action": "kms:Sign", "Resource": "arn:aws:kms:eu-west-1:123456789012:key/*"},
        ),
        "signs-registrations",
    ),
    "an execution role signs with every KMS right": (
        _add_inline_statement("staging-function", {"Action": "kms:*", "Resource": "*"}),
        "signs-registrations",
    ),
    "the signing key lets a deploy role sign": (
        _signing_key_allows("arn:aws:iam::123456789012:role/catdog-github-deploy-staging"),
        "key-lets-others-sign",
    ),
    "a deploy role registers versions under a status it chooses": (
        _add_statement(
            "catdog-staging-release",
            {
                "Action": "sagemaker:CreateModelPackage",
                "Resource": f"{ARN}:model-package/catdog-staging-models/*",
                "Condition": {"StringLike": {"sagemaker:ModelApprovalStatus": "*"}},
            },
        ),
        "registers-approved",
    ),
    "a deploy role redirects the approval dispatch": (
        _add_statement(
            "catdog-staging-release",
            {
                "Action": "events:UpdateApiDestination",
                "Resource": "arn:aws:events:eu-west-1:*:api-destination/catdog-*",
            },
        ),
        "changes-dispatch",
    ),
    "production serves a model from the registry's bucket, which staging and the pipeline write": (
        _add_inline_statement(
            "production-inference",
            {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::catdog-staging-artifacts-123456789012/models/*"},
        ),
        "serves-from-elsewhere",
    ),
    "retrain deploys": (
        _add_statement(
            "catdog-retrain",
            {"Action": "sagemaker:UpdateEndpoint", "Resource": f"{ARN}:endpoint/catdog-staging-classifier"},
        ),
        "can-deploy",
    ),
    "production trusts staging too": (
        _edit_trust(
            "catdog-github-deploy-production",
            lambda st: st["Condition"]["StringEquals"].update(
                {
                    "token.actions.githubusercontent.com:sub": [
                        st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
                        f"repo:{REPOSITORY}:environment:staging",
                    ]
                }
            ),
        ),
        "production-not-gated",
    ),
    "trust by pattern": (
        _edit_trust(
            "catdog-github-retrain",
            lambda st: st["Condition"].update(
                {"StringLike": {"token.actions.githubusercontent.com:sub": f"repo:{REPOSITORY}:*"}}
            ),
        ),
        "aud-and-sub-not-pinned",
    ),
    "a policy over the size quota": (
        _add_statement(
            "catdog-staging-release",
            {"Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::catdog-staging-web-{i:040d}/*" for i in range(60)]},
        ),
        "managed-policy-too-large",
    ),
    "role without boundary": (_drop_boundary, "missing-boundary"),
    "boundary allows policy writes": (_boundary_allows_policy_writes, "does-not-deny"),
    "a service wildcard": (
        _add_statement("catdog-staging-build", {"Action": "s3:*", "Resource": "*"}),
        "ServiceWildcard",
    ),
    "a known escalation path": (
        _add_statement("catdog-retrain", {"Action": "iam:CreatePolicyVersion", "Resource": "*"}),
        "PrivilegeEscalation",
    ),
}


def test_widening_a_policy_back_fails(plan: dict[str, Any], tmp_path: Path) -> None:
    """Each widening, applied alone to the plan, yields the finding that names it (and only a widened plan does)."""
    variants = []
    for mutate, _finding in WIDENINGS.values():
        variant = copy.deepcopy(plan)
        mutate(variant)
        variants.append(variant)
    results = analyse(tmp_path, variants)
    for (name, (_mutate, finding)), result in zip(WIDENINGS.items(), results, strict=True):
        kinds = {row[2] for row in result["findings"]}
        assert finding in kinds, f"{name}: expected {finding}, got {sorted(kinds)}"
