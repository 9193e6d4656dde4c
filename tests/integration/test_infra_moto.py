"""Apply, re-plan (clean) and destroy the Terraform stack against a local moto server; no real AWS."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
TERRAFORM = shutil.which("terraform")
COMMAND_TIMEOUT = 600

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _terraform_present() -> None:
    assert TERRAFORM, "terraform is not on PATH: this test applies the stack with it"


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server on a free loopback port."""
    from aws_emulator.sagemaker_registry import delete_model_package_group
    from moto.sagemaker.responses import SageMakerResponse
    from moto.server import ThreadedMotoServer

    # moto 5.2.5 lacks DeleteModelPackageGroup, which destroying the registry calls: the emulator's gap filler.
    SageMakerResponse.delete_model_package_group = delete_model_package_group  # type: ignore[attr-defined]

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # Backends are process-wide: start from a clean slate.
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30)
    try:
        yield url
    finally:
        server.stop()


def lambda_zip(tmp: Path) -> Path:
    """The package built by `make lambda-zip`, else the same builder's code-only package."""
    prebuilt = REPO / "build" / "lambda.zip"
    if prebuilt.is_file():
        return prebuilt
    sys.path.insert(0, str(INFRA / "tools"))
    try:
        import lambda_zip as builder
    finally:
        sys.path.pop(0)
    output = tmp / "lambda.zip"
    builder.main(
        [
            "--no-deps",
            "--build-dir",
            str(tmp / "lambda"),
            "--output",
            str(output),
            "--package",
            str(REPO / "lambda" / "classify_api"),
        ]
    )
    return output


def working_copy(tmp: Path, source: Path = INFRA) -> Path:
    """Copy a root module and swap the S3 backend for local state in the copy."""
    work = tmp / source.name
    shutil.copytree(source, work, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfbackend"))
    (work / "zz_backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    return work


def terraform(work: Path, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> int:
    """Run one terraform command in the working copy; fail the test with its output otherwise."""
    started = time.monotonic()
    result = subprocess.run(
        [TERRAFORM or "terraform", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    elapsed = time.monotonic() - started
    print(f"terraform {args[0]}: exit {result.returncode} in {elapsed:.0f} s")
    if result.returncode not in ok:
        pytest.fail(
            f"terraform {' '.join(args)} exited {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        )
    return result.returncode


def empty_buckets(moto_url: str) -> None:
    """Stop access logging and delete every object version, as an operator would before destroy."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    names = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    for name in names:  # stop access logging first, or every later call writes a new log object
        s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={})
    for name in names:
        # The TLS-only policy denies plain-HTTP calls, and the emulator speaks HTTP: drop it first.
        s3.delete_bucket_policy(Bucket=name)
        listing = s3.list_object_versions(Bucket=name)
        for item in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])


def emulator_env() -> dict[str, str]:
    """This process's environment without AWS or Terraform settings, plus dummy credentials."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "TF_VAR_")) and key not in {"TF_DATA_DIR", "TF_WORKSPACE"}
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
    )
    return env


def prepare(
    tmp: Path, name: str, moto_url: str, package: Path | None, extra: dict[str, object], source: Path = INFRA
) -> Path:
    """A working copy initialised for the emulator, with test variables in emulator.tfvars.json."""
    work = working_copy(tmp / name, source)
    variables: dict[str, object] = {"aws_endpoint_url": moto_url, **extra}
    if package is not None:
        variables.update({"emulator": True, "lambda_zip_path": str(package)})
    (work / "emulator.tfvars.json").write_text(json.dumps(variables))
    init = ["init", "-input=false", "-no-color"]
    if PLUGIN_DIR.is_dir():
        init.append(f"-plugin-dir={PLUGIN_DIR}")
    terraform(work, emulator_env(), *init)
    return work


REPOSITORY = "example-org/catdog-mlops"
WORKFLOWS = f"{REPOSITORY}/.github/workflows"
# Item 1 of the least-privilege design: one role per job, each trusting exactly one subject.
EXPECTED_SUBJECTS = {
    f"catdog-github-{role}": f"repo:{REPOSITORY}:{context}:job_workflow_ref:{WORKFLOWS}/{workflow}@refs/heads/main"
    for role, context, workflow in [
        ("deploy-staging", "environment:staging", "deploy.yml"),
        ("deploy-production", "environment:production", "promote.yml"),
        ("retrain", "ref:refs/heads/main", "retrain.yml"),
    ]
}


def iam_client(moto_url: str):
    import boto3

    return boto3.client(
        "iam",
        endpoint_url=moto_url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def check_roles_read_back(moto_url: str) -> None:
    """The trust policies and boundaries the emulator holds after the bootstrap apply."""
    iam = iam_client(moto_url)
    roles = {r["RoleName"]: r for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]}
    boundary = next(
        p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"] == "catdog-boundary"
    )
    provider = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    for name, subject in EXPECTED_SUBJECTS.items():
        trust = roles[name]["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        (statement,) = trust["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": provider}
        assert statement["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": subject,
            }
        }, name
    project_roles = [n for n in roles if n.startswith("catdog-")]
    assert len(project_roles) == 10, sorted(project_roles)
    for name in project_roles:
        role = iam.get_role(RoleName=name)["Role"]
        assert role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn") == boundary, name
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == [{"Arn": provider}]


def test_apply_plan_destroy(moto_url: str, tmp_path: Path) -> None:
    """bootstrap, then staging apply and converge (the next plan is empty), production plans, destroy cleans up."""
    package = lambda_zip(tmp_path)
    env = emulator_env()
    bootstrap = prepare(
        tmp_path,
        "bootstrap",
        moto_url,
        None,
        {"tf_state_bucket": "catdog-terraform-state", "enable_approval_trigger": True},
        source=INFRA / "bootstrap",
    )
    bootstrap_vars = ["-var-file=env/bootstrap.tfvars", "-var-file=emulator.tfvars.json"]
    terraform(bootstrap, env, "apply", "-auto-approve", "-input=false", "-no-color", *bootstrap_vars)
    check_roles_read_back(moto_url)
    # The approval trigger is the bootstrap's, and the dispatch token never reaches its state: the placeholder does.
    bootstrap_state = (bootstrap / "terraform.tfstate").read_text()
    assert "set-out-of-band" in bootstrap_state and "catdog-staging-model-approved" in bootstrap_state
    staging = prepare(
        tmp_path,
        "staging",
        moto_url,
        package,
        {"alarm_email": "alerts@example.com"},
    )
    var_files = ["-var-file=env/staging.tfvars", "-var-file=emulator.tfvars.json"]
    terraform(staging, env, "apply", "-auto-approve", "-input=false", "-no-color", *var_files)
    try:
        code = terraform(staging, env, "plan", "-detailed-exitcode", "-input=false", "-no-color", *var_files, ok=(0, 2))
        if code == 2:
            shown = subprocess.run(
                [TERRAFORM or "terraform", "plan", "-no-color", "-input=false", *var_files],
                cwd=staging,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
            pytest.fail(f"the plan after apply is not empty:\n{shown.stdout[-8000:]}")

        outputs = json.loads(
            subprocess.run(
                [TERRAFORM or "terraform", "output", "-json"],
                cwd=staging,
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=COMMAND_TIMEOUT,
            ).stdout
        )
        values = {name: item["value"] for name, item in outputs.items()}
        assert values["function_alias"] == "live"
        assert values["stage_name"] == "staging"
        assert values["endpoint_name"] == "catdog-staging-classifier"
        assert values["release_table"] == values["lock_table"] == "catdog-staging-releases"
        assert values["prediction_table"] == "catdog-staging-predictions"
        assert values["model_package_group_name"] == "catdog-staging-models"
        assert values["registration_signing_key"] == "alias/catdog-staging-registration-signing"
        assert len(values["endpoint_alarm_names"]) == 2
        assert values["inference_role_arn"].endswith(":role/catdog-staging-inference")
        assert values["sagemaker_role_arn"].endswith(":role/catdog-staging-pipeline")
        assert values["api_key_id"] != values["web_api_key_id"]
        assert values["max_body_bytes"] == 4613734
        # The environment stack creates no IAM at all: its roles come from the bootstrap stack.
        state = json.loads((staging / "terraform.tfstate").read_text())
        managed = [r["type"] for r in state["resources"] if r["mode"] == "managed"]
        assert managed and not [t for t in managed if t.startswith("aws_iam_")], managed
        assert not [t for t in managed if t.startswith("aws_cloudwatch_event")], managed  # the bootstrap's
        assert values["api_url"].startswith("https://")

        # Production shares the account: it must plan cleanly beside staging, reading staging's registry.
        production = prepare(tmp_path, "production", moto_url, package, {})
        terraform(
            production,
            env,
            "plan",
            "-input=false",
            "-no-color",
            "-var-file=env/production.tfvars",
            "-var-file=emulator.tfvars.json",
        )
    finally:
        try:
            empty_buckets(moto_url)
        finally:
            try:
                terraform(staging, env, "destroy", "-auto-approve", "-input=false", "-no-color", *var_files)
            finally:
                terraform(bootstrap, env, "destroy", "-auto-approve", "-input=false", "-no-color", *bootstrap_vars)
