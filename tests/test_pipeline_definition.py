"""The SageMaker Pipeline definition: steps, condition, defaults, and byte-identical offline builds."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from pipelines.sagemaker_pipeline import definition_json
from pipelines.settings import PipelineSettings


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads(definition_json(PipelineSettings(git_sha="0123abc")))


def test_builds_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network call attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert json.loads(definition_json(PipelineSettings(git_sha="x")))["Steps"]


def test_cli_output_identical_byte_for_byte(tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"d{i}.json"
        subprocess.run(
            [sys.executable, "-m", "mlops.cli", "pipeline", "definition", "--output", str(out), "--git-sha", "abc"],
            check=True,
            capture_output=True,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 1000


def test_steps_in_order(definition):
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert [s["Name"] for s in definition["Steps"]] == ["Train", "Evaluate", "AccuracyGate"]
    assert steps["Train"]["Type"] == "Training"
    assert steps["Evaluate"]["Type"] == "Processing"
    assert steps["Evaluate"]["PropertyFiles"][0]["PropertyFileName"] == "Evaluation"
    inputs = steps["Evaluate"]["Arguments"]["ProcessingInputs"]
    model_in = next(i for i in inputs if i["S3Input"]["LocalPath"] == "/opt/ml/processing/model")
    assert model_in["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


def test_condition_and_branches(definition):
    gate = definition["Steps"][2]
    assert gate["Type"] == "Condition"
    (cond,) = gate["Arguments"]["Conditions"]
    assert cond["Type"] == "GreaterThanOrEqualTo"
    assert cond["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.accuracy.value"
    assert cond["RightValue"] == {"Get": "Parameters.AccuracyThreshold"}
    (register,) = gate["Arguments"]["IfSteps"]
    (fail,) = gate["Arguments"]["ElseSteps"]
    assert register["Type"] == "RegisterModel"
    args = register["Arguments"]
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert args["ModelPackageGroupName"] == {"Get": "Parameters.ModelPackageGroupName"}
    assert "ModelQuality" in args["ModelMetrics"]
    assert set(args["CustomerMetadataProperties"]) == {"git_sha", "mlflow_run_id"}
    assert fail["Type"] == "Fail"
    message = json.dumps(fail["Arguments"]["ErrorMessage"])
    assert "metrics.accuracy.value" in message and "AccuracyThreshold" in message


def test_parameter_defaults(definition):
    params = {p["Name"]: p for p in definition["Parameters"]}
    assert params["AccuracyThreshold"]["DefaultValue"] == 0.90
    assert params["AccuracyThreshold"]["Type"] == "Float"
    assert params["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"
    for name in (
        "InputDataUri",
        "TrainingInstanceType",
        "ProcessingInstanceType",
        "ModelPackageGroupName",
        "InferenceImageUri",
        "GitSha",
    ):
        assert name in params
    assert params["GitSha"]["DefaultValue"] == "0123abc"


def test_training_contract(definition):
    train = definition["Steps"][0]["Arguments"]
    hp = train["HyperParameters"]
    assert json.loads(hp["sagemaker_program"]) == "training/train.py"
    assert hp["image-size"] == '"160"'
    assert train["InputDataConfig"][0]["ChannelName"] == "train"
