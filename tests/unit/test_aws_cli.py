"""`mlops pipeline upsert|start` and `mlops lambda update-code` offline: Stubber for SageMaker, moto for the rest."""

from __future__ import annotations

import io
import json
import sys
import tarfile
import types
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import typer
from aws_support import BUCKET, PREFIX, REGION, aws_env, make_stack
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from mlops.cli import aws as cli_aws
from mlops.config import REPO_ROOT as ROOT

EXECUTION = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/catdog-training/execution/abc123def456"
JOB = f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/pipelines-abc123def456-evaluate-x1"
PACKAGE = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{PREFIX}-models/7"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_app() -> typer.Typer:
    app = typer.Typer()
    pipeline = typer.Typer()
    cli_aws.register_pipeline(pipeline)
    app.add_typer(pipeline, name="pipeline")
    cli_aws.register(app)
    return app


def run(*args: str):
    return CliRunner().invoke(make_app(), list(args))


@pytest.fixture
def stubs(monkeypatch) -> Iterator[tuple[Stubber, Stubber]]:
    """Stubbed SageMaker and S3 clients behind the CLI's client factory."""
    aws_env(monkeypatch)
    clients = {s: boto3.client(s, region_name=REGION) for s in ("sagemaker", "s3")}
    monkeypatch.setattr(cli_aws, "_client", lambda service, region: clients[service])
    with Stubber(clients["sagemaker"]) as sm, Stubber(clients["s3"]) as s3:
        yield sm, s3
        sm.assert_no_pending_responses()
        s3.assert_no_pending_responses()


def step(name: str, status: str, metadata: dict, reason: str = "") -> dict:
    out = {"StepName": name, "StepStatus": status, "StartTime": T0, "EndTime": T0, "Metadata": metadata}
    return {**out, "FailureReason": reason} if reason else out


def expect_run(sm: Stubber, final: dict, steps: list[dict], threshold: str | None = "0.9") -> None:
    """The start the CLI must send (GitSha abc123, AccuracyThreshold `threshold`), then the execution."""
    sent = [{"Name": "GitSha", "Value": "abc123"}]
    sent += [{"Name": "AccuracyThreshold", "Value": threshold}] if threshold is not None else []
    sm.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": EXECUTION},
        {
            "PipelineName": "catdog-training",
            "PipelineParameters": sent,
            "PipelineExecutionDescription": "staging abc123",
        },
    )
    for state in ({"PipelineExecutionStatus": "Executing"}, final):
        sm.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionArn": EXECUTION, **state},
            {"PipelineExecutionArn": EXECUTION},
        )
    sm.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": steps},
        {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending"},
    )


def expect_evaluation(sm: Stubber, s3: Stubber, accuracy: float) -> None:
    uri = f"s3://{BUCKET}/evaluation/abc123def456"
    sm.add_response(
        "describe_processing_job",
        {
            "ProcessingJobName": JOB.rsplit("/", 1)[-1],
            "ProcessingJobArn": JOB,
            "ProcessingJobStatus": "Completed",
            "CreationTime": T0,
            "AppSpecification": {"ImageUri": "pytorch-training:2.6"},
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
            },
            "ProcessingOutputConfig": {
                "Outputs": [{"OutputName": "evaluation", "S3Output": {"S3Uri": uri, "S3UploadMode": "EndOfJob"}}]
            },
        },
        {"ProcessingJobName": JOB.rsplit("/", 1)[-1]},
    )
    body = json.dumps({"metrics": {"accuracy": {"value": accuracy}}}).encode()
    s3.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(body), len(body))},
        {"Bucket": BUCKET, "Key": "evaluation/abc123def456/evaluation.json"},
    )


START = ("pipeline", "start", "--git-sha", "abc123", "--threshold", "0.9", "--wait", "--poll-seconds", "0")


def test_a_failed_accuracy_gate_fails_the_command_with_the_accuracy(stubs, tmp_path: Path) -> None:
    sm, s3 = stubs
    message = "Test accuracy 0.8123 is below the threshold max(0.9, 0.9)"
    expect_run(
        sm,
        {"PipelineExecutionStatus": "Failed", "FailureReason": f"Step failure: {message}"},
        [
            step("Train", "Succeeded", {"TrainingJob": {"Arn": JOB.replace("processing", "training")}}),
            step("Evaluate", "Succeeded", {"ProcessingJob": {"Arn": JOB}}),
            step("AccuracyGate", "Succeeded", {"Condition": {"Outcome": "False"}}),
            step("AccuracyBelowThreshold", "Failed", {"Fail": {"ErrorMessage": message}}, message),
        ],
    )
    expect_evaluation(sm, s3, 0.8123)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier job output\n")
    result = run(*START, "--summary", str(summary))
    assert result.exit_code == 1
    assert "accuracy gate failed: test accuracy 0.8123 is below 0.9000; nothing was registered" in result.output
    assert "Traceback" not in result.output
    text = summary.read_text()
    assert text.startswith("earlier job output\n### Training pipeline (staging): Failed")  # appended
    for row in ("| test accuracy | 0.8123 |", "| threshold | 0.9000 |", "| accuracy gate | failed |"):
        assert row in text
    assert "| AccuracyBelowThreshold | Failed | 2026-01-02 03:04:05 |" in text
    assert "registered model version" not in text


def test_a_successful_run_reports_the_registered_version(stubs, tmp_path: Path) -> None:
    sm, s3 = stubs
    expect_run(
        sm,
        {"PipelineExecutionStatus": "Succeeded"},
        [
            step("Evaluate", "Succeeded", {"ProcessingJob": {"Arn": JOB}}),
            step("AccuracyGate", "Succeeded", {"Condition": {"Outcome": "True"}}),
            step("Register", "Succeeded", {"RegisterModel": {"Arn": PACKAGE}}),
        ],
    )
    expect_evaluation(sm, s3, 0.9612)
    summary = tmp_path / "summary.md"
    result = run(*START, "--summary", str(summary))
    assert result.exit_code == 0, result.output
    assert "registered model version 7 (test accuracy 0.9612)" in result.output
    text = summary.read_text()
    assert "| accuracy gate | passed |" in text and "| test accuracy | 0.9612 |" in text
    assert "mlops approve 7 --backend aws --stage staging" in text


def test_the_accuracy_comes_from_the_gate_message_when_the_report_is_unreadable(stubs) -> None:
    sm, _ = stubs
    message = "Test accuracy 0.5 is below the threshold 0.9"
    expect_run(
        sm,
        {"PipelineExecutionStatus": "Failed", "FailureReason": message},
        [
            step("Evaluate", "Succeeded", {"ProcessingJob": {"Arn": JOB}}),
            step("AccuracyBelowThreshold", "Failed", {"Fail": {"ErrorMessage": message}}),
        ],
    )
    sm.add_client_error("describe_processing_job", "AccessDeniedException", "no", 400)
    result = run(*START)
    assert result.exit_code == 1 and "test accuracy 0.5000 is below 0.9000" in result.output


def test_other_failures_and_bad_parameters_are_one_line_errors(stubs) -> None:
    sm, _ = stubs
    expect_run(sm, {"PipelineExecutionStatus": "Failed", "FailureReason": "ClientError: AlgorithmError"}, [])
    result = run(*START)
    assert result.exit_code == 1 and "pipeline execution Failed: ClientError: AlgorithmError" in result.output
    result = run("pipeline", "start", "--param", "oops")
    assert result.exit_code == 1 and "expected NAME=VALUE" in result.output
    sm.add_client_error("start_pipeline_execution", "ResourceNotFound", "Pipeline not found", 400)
    result = run("pipeline", "start")
    assert result.exit_code == 1 and "ResourceNotFound" in result.output and "Traceback" not in result.output


NOTICE = "notice: accuracy threshold {} raised to the 0.90 floor (a caller may raise the gate, never lower it)"


@pytest.mark.parametrize(
    ("lowered", "asked"),
    [(("--threshold", "0.0"), "0"), (("--param", "GitSha=abc123", "--param", "AccuracyThreshold=0.1"), "0.1")],
)
def test_a_start_cannot_lower_the_gate(stubs, lowered, asked) -> None:
    sm, s3 = stubs
    expect_run(
        sm,
        {"PipelineExecutionStatus": "Succeeded"},
        [
            step("Evaluate", "Succeeded", {"ProcessingJob": {"Arn": JOB}}),
            step("AccuracyGate", "Succeeded", {"Condition": {"Outcome": "True"}}),
            step("Register", "Succeeded", {"RegisterModel": {"Arn": PACKAGE}}),
        ],
        threshold="0.9",  # what reaches SageMaker, whatever was asked
    )
    expect_evaluation(sm, s3, 0.9612)
    args = ("pipeline", "start", "--git-sha", "abc123", *lowered, "--wait", "--poll-seconds", "0")
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert NOTICE.format(asked) in " ".join(result.output.split())
    assert "registered model version 7" in result.output


def test_a_start_cannot_register_approved(stubs) -> None:
    # No response is queued: any SageMaker call would fail the Stubber.
    for args in (
        ("--threshold", "0.0", "--param", "ModelApprovalStatus=Approved"),
        ("--param", "ModelApprovalStatus=Approved"),
    ):
        result = run("pipeline", "start", "--git-sha", "abc123", *args)
        assert result.exit_code == 1
        assert "ModelApprovalStatus is not a pipeline parameter: every version registers as PendingManualApproval" in (
            " ".join(result.output.split())
        )
        assert "Traceback" not in result.output and "started" not in result.output


def test_a_start_cannot_choose_the_photos_the_gate_scores(stubs) -> None:
    # An easy test set of the caller's own, named at start: refused before any call (no response queued).
    result = run("pipeline", "start", "--git-sha", "abc123", "--param", "InputDataUri=s3://mine/easy")
    assert result.exit_code == 1 and "Traceback" not in result.output and "started" not in result.output
    assert "InputDataUri is not a pipeline parameter" in " ".join(result.output.split())
    result = run("pipeline", "start", "--input-uri", "s3://mine/easy")  # the option is gone
    assert result.exit_code == 2 and "No such option" in result.output and "Traceback" not in result.output


def test_unknown_or_malformed_parameters_are_refused_before_any_call(stubs) -> None:
    result = run("pipeline", "start", "--param", "AccuracyTreshold=0.95")
    assert result.exit_code == 1 and "unknown pipeline parameter AccuracyTreshold" in result.output
    result = run("pipeline", "start", "--param", "AccuracyThreshold=high")
    assert result.exit_code == 1 and "AccuracyThreshold 'high' is not a number" in result.output


def test_the_gate_message_names_the_threshold_that_applied(stubs) -> None:
    """Started through the API with a lowered parameter: the floor is what failed the model."""
    sm, _ = stubs
    message = "Test accuracy 0.87 is below the threshold max(0.9, 0.5)"
    expect_run(
        sm,
        {"PipelineExecutionStatus": "Failed", "FailureReason": message},
        [
            step("Evaluate", "Succeeded", {"ProcessingJob": {"Arn": JOB}}),
            step("AccuracyGate", "Succeeded", {"Condition": {"Outcome": "False"}}),
            step("AccuracyBelowThreshold", "Failed", {"Fail": {"ErrorMessage": message}}),
        ],
        threshold=None,
    )
    sm.add_client_error("describe_processing_job", "AccessDeniedException", "no", 400)
    result = run("pipeline", "start", "--git-sha", "abc123", "--wait", "--poll-seconds", "0")
    assert result.exit_code == 1 and "test accuracy 0.8700 is below 0.9000; nothing was registered" in result.output


def test_upsert_uploads_the_bundle_and_evaluate_script_then_upserts(monkeypatch, tmp_path: Path) -> None:
    aws_env(monkeypatch)
    captured = {}
    fake = types.ModuleType("pipelines.sagemaker_pipeline")
    fake.upsert = lambda settings, session: captured.update(settings=settings) or "arn:pipeline/catdog-training"
    monkeypatch.setitem(sys.modules, "pipelines.sagemaker_pipeline", fake)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        bundle = tmp_path / "sourcedir.tar.gz"
        result = run("pipeline", "upsert", "--git-sha", "abc123", "--bundle", str(bundle))
        assert result.exit_code == 0, result.output
        assert "pipeline upserted" in result.output
        code = s3.get_object(Bucket=BUCKET, Key="code/abc123/sourcedir.tar.gz")["Body"].read()
        script = s3.get_object(Bucket=BUCKET, Key="code/abc123/evaluate.sh")["Body"].read()
    assert code == bundle.read_bytes() and script.startswith(b"#!/usr/bin/env bash")
    settings = captured["settings"]
    assert settings.execution_role == f"arn:aws:iam::123456789012:role/{PREFIX}-pipeline"
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        requirements = tar.extractfile("requirements.txt").read()
        shipped = tar.extractfile("training/requirements.txt").read()
    assert {"training/train.py", "training/evaluate.py", "serving/preprocess.py"} <= set(names)
    assert not any("__pycache__" in n for n in names)
    # The jobs install exactly what `make requirements` generated from uv.lock: every pin with its hashes.
    assert requirements == (ROOT / "training" / "requirements.txt").read_bytes() == shipped
    pins = [line.split()[0] for line in requirements.decode().splitlines() if line and line[0].isalnum()]
    assert {"onnx", "onnxruntime", "mlflow", "matplotlib"} <= {p.split("==")[0] for p in pins}
    assert all("==" in p for p in pins) and "--hash=sha256:" in requirements.decode()
    assert not any(p.split("==")[0] in ("torch", "torchvision") for p in pins)  # the PyTorch image has them
    again = tmp_path / "again.tar.gz"
    assert run("pipeline", "upsert", "--dry-run", "--git-sha", "abc123", "--bundle", str(again)).exit_code == 0
    assert again.read_bytes() == bundle.read_bytes()  # reproducible


def test_lambda_update_code_replaces_latest_without_publishing(monkeypatch, tmp_path: Path) -> None:
    aws_env(monkeypatch)
    with mock_aws():
        stack = make_stack(())
        fn = stack.client("lambda")
        monkeypatch.setattr(cli_aws, "_client", lambda service, region: stack.client(service))
        name = f"{PREFIX}-classify-api"
        before = fn.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
        package = tmp_path / "lambda.zip"
        with zipfile.ZipFile(package, "w") as zf:
            zf.writestr("classify_api/handler.py", "def lambda_handler(event, context):\n    return {'v': 2}\n")
        result = run("lambda", "update-code", "--zip", str(package), "--stage", "staging")
        assert result.exit_code == 0, result.output
        after = fn.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
        assert after != before and after in result.output
        versions = [v["Version"] for v in fn.list_versions_by_function(FunctionName=name)["Versions"]]
        assert versions == ["$LATEST", "1"] and stack.backend.current_function_version() == "1"
    missing = run("lambda", "update-code", "--zip", str(tmp_path / "nope.zip"))
    assert missing.exit_code == 1 and "make lambda-zip" in missing.output


def test_aws_only_commands_refuse_another_backend(monkeypatch) -> None:
    aws_env(monkeypatch)
    for args in (("pipeline", "upsert"), ("pipeline", "start"), ("lambda", "update-code")):
        result = run(*args, "--backend", "local")
        assert result.exit_code == 1 and "works on AWS only" in result.output
    result = run("pipeline", "upsert", "--git-sha", "abc", "--image-tag", "def", "--dry-run")
    assert result.exit_code == 1 and "images are tagged with the commit" in result.output


def test_the_commands_are_registered() -> None:
    assert {"upsert", "start"} <= set(run("pipeline", "--help").output.split())
    assert "update-code" in run("lambda", "--help").output
