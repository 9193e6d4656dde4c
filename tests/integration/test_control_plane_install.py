"""The control plane installs alone: `make venv EXTRAS=control` (from uv.lock) gives an `mlops` that runs the AWS
backend's commands, against a local moto server, without torch, MLflow or numpy in the virtualenv."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aws_support
import pytest
from lock_support import PROJECT, REPO, lock_packages, normalize

HEAVY = {"torch", "torchvision", "mlflow", "numpy", "onnxruntime", "pillow", "pandas", "scipy", "sagemaker"}
# What `python -m venv` and the Makefile put there besides the lock's packages.
TOOLING = {"pip", "setuptools", "uv", PROJECT}
AWS = ("--backend", "aws", "--stage", "staging")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("control") / "venv"
    out = subprocess.run(
        ["make", "--no-print-directory", "venv", f"VENV={path}", "EXTRAS=control"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return path


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's backends are process-wide: what an earlier module of this worker left there (a role of the same
    # name) made make_stack fail with EntityAlreadyExists. Start from a clean slate, and leave one.
    reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=30).close()
    try:
        yield url
    finally:
        urllib.request.urlopen(reset, timeout=30).close()
        server.stop()


@pytest.fixture(scope="module")
def stack(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The staging stack and two registered versions in the moto server, plus the Terraform outputs file."""
    outputs_dir = tmp_path_factory.mktemp("infra")
    with pytest.MonkeyPatch.context() as mp:
        aws_support.aws_env(mp, str(outputs_dir))
        mp.setenv("AWS_ENDPOINT_URL", moto_url)
        mp.setattr(aws_support, "_session", [])  # a session whose clients reach the server
        made = aws_support.make_stack((0.95, 0.97))
        s3 = made.client("s3")
        s3.create_bucket(Bucket="catdog-staging-web", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        key = made.client("apigateway").create_api_key(name="clients", value="k" * 24)["id"]
        outputs = {"environment": "staging", "web_bucket": "catdog-staging-web", "api_key_id": key}
        (outputs_dir / "staging.json").write_text(json.dumps({k: {"value": v} for k, v in outputs.items()}))
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(outputs_dir),
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": aws_support.REGION,
            "AWS_DEFAULT_REGION": aws_support.REGION,
            "MLOPS_INFRA_OUTPUTS_DIR": str(outputs_dir),
            "MLOPS_HOME": str(outputs_dir / "mlops"),
            "ENDPOINT_POLL_SECONDS": "0",
            "COLUMNS": "200",
        }
        sm = made.client("sagemaker")
        first = made.backend.registry._arn("1")
        registered = sm.describe_model_package(ModelPackageName=first)["CustomerMetadataProperties"]
        yield {"env": env, "sm": sm, "s3": s3, "kms": made.client("kms"), "cwd": outputs_dir, "v1": (first, registered)}


def mlops(venv: Path, stack: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "mlops"), *args],
        env=stack["env"],
        cwd=stack["cwd"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def installed(venv: Path) -> dict[str, str]:
    site = next((venv / "lib").glob("python3*/site-packages"))
    pairs = (d.name.removesuffix(".dist-info").rsplit("-", 1) for d in site.glob("*.dist-info"))
    return {normalize(name): version for name, version in pairs}


def control_plane_closure() -> set[str]:
    """The locked packages the project's own dependencies need (no extra)."""
    packages = lock_packages()
    todo = [dep["name"] for dep in packages[PROJECT]["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [dep["name"] for dep in packages[name].get("dependencies", [])]
    return seen


def test_installs_the_locked_control_plane_and_nothing_heavy(venv: Path) -> None:
    found = installed(venv)
    assert not HEAVY & set(found), HEAVY & set(found)
    locked = lock_packages()
    closure = control_plane_closure()
    assert {"boto3", "botocore", "typer", "rich", "filelock"} <= closure
    assert set(found) - TOOLING == closure
    for name in closure:
        assert found[name] == locked[name]["version"], name


def test_help_runs(venv: Path, stack: dict) -> None:
    top = mlops(venv, stack, "--help")
    assert top.returncode == 0, top.stderr
    assert all(word in top.stdout for word in ("promote", "approve", "rollback", "status", "web"))
    promote = mlops(venv, stack, "promote", "--help")
    assert promote.returncode == 0, promote.stderr
    assert "--backend" in promote.stdout and "--stage" in promote.stdout


def test_aws_commands_run_against_moto(venv: Path, stack: dict) -> None:
    sm = stack["sm"]
    approve = mlops(
        venv, stack, "approve", "1", "--backend", "aws", "--stage", "staging", "--by", "ci", "--reason", "ok"
    )
    assert approve.returncode == 0, approve.stdout + approve.stderr
    packages = sm.list_model_packages(ModelPackageGroupName=aws_support.GROUP)["ModelPackageSummaryList"]
    arn = next(p["ModelPackageArn"] for p in packages if p["ModelPackageArn"].endswith("/1"))
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"

    status = mlops(venv, stack, "status", *AWS, "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    live = json.loads(status.stdout)
    assert live["backend"] == "aws" and live["lambda_version"] == "1" and live["model_version"] is None

    # Version 2 is still pending: the promotion is refused in one line, before anything moves.
    refused = mlops(venv, stack, "promote", "2", *AWS)
    said = (refused.stdout + refused.stderr).strip()
    assert refused.returncode == 1 and len(said.splitlines()) == 1, said
    assert "version 2 is PendingManualApproval, not Approved" in said

    publish = mlops(venv, stack, "web", "publish", *AWS)
    assert publish.returncode == 0, publish.stdout + publish.stderr
    page = stack["s3"].get_object(Bucket="catdog-staging-web", Key="index.html")["Body"].read().decode()
    assert f'"{"k" * 24}"' in page


def test_promote_reads_the_candidates_smoke_set_with_boto3_alone(venv: Path, stack: dict, data_dir: Path) -> None:
    """No training code, no data set: the set beside the model is fetched and checked; a bad one is refused."""
    from test_smoke_set import register_with_set

    sm, s3 = stack["sm"], stack["s3"]
    first, props = stack["v1"]
    approve = mlops(venv, stack, "approve", "1", *AWS, "--by", "ci", "--reason", "ok")
    assert approve.returncode == 0, approve.stdout + approve.stderr
    # Its properties restated: moto's UpdateModelPackage drops the ones a request leaves out.
    sm.update_model_package(ModelPackageArn=first, ModelApprovalStatus="Approved", CustomerMetadataProperties=props)
    # Version 1 was registered without a smoke set: refused in one line, at the smoke step, before anything moves.
    refused = mlops(venv, stack, "promote", "1", *AWS)
    said = (refused.stdout + refused.stderr).strip()
    assert refused.returncode == 1 and len(said.splitlines()) == 1, said
    assert "the smoke set of model version 1 cannot be used: model version 1 names no smoke set" in said
    assert "Traceback" not in said and "ModuleNotFoundError" not in said

    v3 = register_with_set(s3, sm, stack["cwd"] / "exec-3", data_dir, 3, start=20, kms=stack["kms"])
    arn = next(
        p["ModelPackageArn"]
        for p in sm.list_model_packages(ModelPackageGroupName=aws_support.GROUP)["ModelPackageSummaryList"]
        if p["ModelPackageArn"].endswith("/3")
    )
    # Approved with its properties restated: moto's UpdateModelPackage drops the ones a request leaves out.
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", CustomerMetadataProperties=v3["props"])
    key = f"{v3['prefix']}/smoke/cat/{v3['photos'][0].name}"
    s3.put_object(Bucket=aws_support.BUCKET, Key=key, Body=b"\xff\xd8 swapped after registration")
    altered = mlops(venv, stack, "promote", "3", *AWS)
    said = (altered.stdout + altered.stderr).strip()
    assert altered.returncode == 1 and len(said.splitlines()) == 1, said
    assert f"smoke photo cat/{v3['photos'][0].name}" in said and "was altered" in said
    assert "Traceback" not in said and "ModuleNotFoundError" not in said
    status = json.loads(mlops(venv, stack, "status", *AWS, "--json").stdout)
    assert status["release_id"] is None and status["lambda_version"] == "1"  # nothing moved
