"""The SageMaker Pipeline definition, built without the SDK: steps, the gate nobody can lower, the
botocore check of every step's request, byte-identical offline builds, and the boto3 upsert."""

from __future__ import annotations

import ast
import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipelines.definition_check import validate
from pipelines.images import training_image
from pipelines.sagemaker_pipeline import build_definition, definition_json, upsert
from pipelines.settings import DEFAULT_HYPERPARAMETERS, PENDING, THRESHOLD_FLOOR, PipelineSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads(definition_json(PipelineSettings(git_sha="0123abc")))


def test_builds_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network call attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert json.loads(definition_json(PipelineSettings(git_sha="x")))["Steps"]


def test_cli_output_identical_byte_for_byte_and_checked(tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"d{i}.json"
        done = subprocess.run(
            [sys.executable, "-m", "mlops", "pipeline", "definition", "--output", str(out), "--git-sha", "abc"],
            check=True,
            capture_output=True,
            text=True,
        )
        assert "sagemaker.config" not in done.stderr + done.stdout  # no SDK involved
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 1000
    assert outs[0] == definition_json(PipelineSettings(git_sha="abc", environment="staging")).encode()


def test_the_pipeline_package_imports_neither_the_sdk_nor_mlops():
    for path in sorted((REPO / "pipelines").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in ("sagemaker", "mlops"), f"{path.name} imports {name}"
    code = "import sys, pipelines.sagemaker_pipeline, pipelines.local_runner; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO).stdout
    assert "'sagemaker'" not in loaded and "'mlops'" not in loaded


def test_steps_in_order(definition):
    assert definition["Version"] == "2020-12-01"
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert [s["Name"] for s in definition["Steps"]] == ["Train", "Evaluate", "AccuracyGate"]
    assert steps["Train"]["Type"] == "Training"
    assert steps["Evaluate"]["Type"] == "Processing"
    assert steps["Evaluate"]["PropertyFiles"][0]["PropertyFileName"] == "Evaluation"
    inputs = steps["Evaluate"]["Arguments"]["ProcessingInputs"]
    model_in = next(i for i in inputs if i["S3Input"]["LocalPath"] == "/opt/ml/processing/model")
    assert model_in["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    local_paths = [i["S3Input"]["LocalPath"] for i in inputs]
    assert len(set(local_paths)) == len(local_paths) == 5  # SageMaker refuses two inputs at one path


def test_the_gate_has_a_floor_no_parameter_can_lower(definition):
    gate = definition["Steps"][2]
    assert gate["Type"] == "Condition"
    accuracy = {
        "Std:JsonGet": {
            "Path": "metrics.accuracy.value",
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"},
        }
    }
    # Both conditions must hold (SageMaker ANDs a condition step's list).
    assert gate["Arguments"]["Conditions"] == [
        {"Type": "GreaterThanOrEqualTo", "LeftValue": accuracy, "RightValue": THRESHOLD_FLOOR},
        {"Type": "GreaterThanOrEqualTo", "LeftValue": accuracy, "RightValue": {"Get": "Parameters.AccuracyThreshold"}},
    ]
    assert THRESHOLD_FLOOR == 0.90
    (fail,) = gate["Arguments"]["ElseSteps"]
    assert fail["Type"] == "Fail"
    message = json.dumps(fail["Arguments"]["ErrorMessage"])
    assert "metrics.accuracy.value" in message and "AccuracyThreshold" in message and "max(0.9, " in message


def test_registration_is_always_pending_manual_approval(definition):
    (register,) = definition["Steps"][2]["Arguments"]["IfSteps"]
    assert register["Type"] == "RegisterModel"
    args = register["Arguments"]
    assert args["ModelApprovalStatus"] == PENDING == "PendingManualApproval"  # a literal, not a parameter
    assert "ModelApprovalStatus" not in {p["Name"] for p in definition["Parameters"]}
    assert "ModelApprovalStatus" not in json.dumps(definition["Parameters"])
    assert args["ModelPackageGroupName"] == {"Get": "Parameters.ModelPackageGroupName"}
    assert "ModelQuality" in args["ModelMetrics"]
    props = args["CustomerMetadataProperties"]
    assert set(props) == {
        "git_sha",
        "mlflow_run_id",
        "smoke_set",
        "smoke_manifest_sha256",
        "data_manifest_sha256",
        "model_sha256",
        "attestation_signature",
    }
    # The content SHA-256 of the model Evaluate scored: promotion and the model server refuse another.
    assert props["model_sha256"]["Std:JsonGet"]["Path"] == "model.sha256"
    # The data manifest the photos of the run were checked against, as evaluation.json records it.
    assert props["data_manifest_sha256"]["Std:JsonGet"]["Path"] == "data.manifest_sha256"
    # The smoke set is named beside the evaluation it came from, with its manifest's SHA-256 from evaluation.json.
    assert props["smoke_manifest_sha256"]["Std:JsonGet"]["Path"] == "smoke_set.manifest_sha256"
    evaluation_uri = {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}
    assert props["smoke_set"]["Std:Join"]["Values"][0] == evaluation_uri
    # Evaluate signs, with the key only the pipeline role may use (no parameter names it), the group and commit
    # this step records; the signature is evaluation.json's.
    assert props["attestation_signature"]["Std:JsonGet"]["Path"] == "attestation.signature"
    env = definition["Steps"][1]["Arguments"]["Environment"]
    assert env["REGISTRATION_SIGNING_KEY"] == "alias/catdog-staging-registration-signing"
    assert env["MODEL_PACKAGE_GROUP"] == args["ModelPackageGroupName"] and env["GIT_SHA"] == props["git_sha"]


def test_parameter_defaults(definition):
    params = {p["Name"]: p for p in definition["Parameters"]}
    assert params["AccuracyThreshold"] == {"Name": "AccuracyThreshold", "Type": "Float", "DefaultValue": 0.90}
    assert set(params) == {
        "TrainingInstanceType",
        "ProcessingInstanceType",
        "AccuracyThreshold",
        "ModelPackageGroupName",
        "InferenceImageUri",
        "GitSha",
    }
    assert params["GitSha"]["DefaultValue"] == "0123abc"


def test_training_contract(definition):
    train = definition["Steps"][0]["Arguments"]
    hp = train["HyperParameters"]
    assert json.loads(hp["sagemaker_program"]) == "training/train.py"
    assert {k: json.loads(hp[k]) for k in DEFAULT_HYPERPARAMETERS} == DEFAULT_HYPERPARAMETERS
    assert hp["image-size"] == '"224"'
    assert [c["ChannelName"] for c in train["InputDataConfig"]] == ["train", "manifest"]
    image = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.6-cpu-py312"
    assert train["AlgorithmSpecification"]["TrainingImage"] == image
    assert definition["Steps"][1]["Arguments"]["AppSpecification"]["ImageUri"] == image


@pytest.mark.parametrize(
    ("region", "uri"),
    [
        ("us-east-1", "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6-cpu-py312"),
        ("af-south-1", "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-training:2.6-cpu-py312"),
        ("cn-north-1", "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:2.6-cpu-py312"),
    ],
)
def test_training_image_table(region, uri):
    assert training_image(region) == uri


def test_an_unlisted_region_is_refused_with_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"no PyTorch 2\.6 training image is listed for region 'xx-nowhere-1'"):
        definition_json(PipelineSettings(region="xx-nowhere-1"))
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "pipeline", "definition"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "AWS_REGION": "xx-nowhere-1"},
    )
    assert done.returncode == 1 and "xx-nowhere-1" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1", "ap-southeast-3"])
def test_every_step_request_passes_botocores_model(region):
    definition = build_definition(PipelineSettings(region=region, git_sha="abc"))
    assert validate(definition) == []


def _mutated(change) -> list[str]:
    definition = build_definition(PipelineSettings(git_sha="abc"))
    change(definition)
    return validate(definition)


def test_the_check_finds_what_botocore_would_refuse():
    def train(d):
        return d["Steps"][0]["Arguments"]

    def evaluate(d):
        return d["Steps"][1]["Arguments"]

    def register(d):
        return d["Steps"][2]["Arguments"]["IfSteps"][0]["Arguments"]

    (p,) = _mutated(lambda d: train(d)["ResourceConfig"].update(InstanceCount="1"))
    assert "ResourceConfig.InstanceCount" in p and "CreateTrainingJob" in p
    (p,) = _mutated(lambda d: train(d).pop("RoleArn"))
    assert 'Missing required parameter in input: "RoleArn"' in p
    (p,) = _mutated(lambda d: evaluate(d).update(Bogus=1))
    assert 'Unknown parameter in input: "Bogus"' in p and "CreateProcessingJob" in p
    (p,) = _mutated(lambda d: register(d).update(ModelApprovalStatus="Aproved"))
    assert "'Aproved' is not one of" in p
    # A Float parameter where a string goes, and a Std:Join where a number goes.
    (p,) = _mutated(lambda d: train(d)["ResourceConfig"].update(InstanceType={"Get": "Parameters.AccuracyThreshold"}))
    assert "ResourceConfig.InstanceType" in p
    (p,) = _mutated(lambda d: train(d)["ResourceConfig"].update(VolumeSizeInGB={"Std:Join": {"On": "", "Values": []}}))
    assert "ResourceConfig.VolumeSizeInGB" in p
    (p,) = _mutated(lambda d: register(d).update(ModelPackageGroupName={"Get": "Parameters.ModelApprovalStatus"}))
    assert "unknown parameter 'ModelApprovalStatus'" in p
    (p,) = _mutated(
        lambda d: evaluate(d)["ProcessingInputs"][2]["S3Input"].update(LocalPath="/opt/ml/processing/model")
    )
    assert "input local path used twice: /opt/ml/processing/model" in p


def test_upsert_creates_then_updates_with_the_same_bytes(monkeypatch):
    from aws_emulator import patches

    patches.install()  # SageMaker's ResourceNotFound for a pipeline that does not exist (moto: ValidationError)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = boto3.Session(region_name="eu-west-1")
        sm = session.client("sagemaker")
        first = PipelineSettings(git_sha="a1")
        arn = upsert(first, session)
        described = sm.describe_pipeline(PipelineName=first.pipeline_name)
        assert described["PipelineDefinition"] == definition_json(first)
        assert described["RoleArn"] == first.execution_role
        second = PipelineSettings(git_sha="b2")
        assert upsert(second, session) == arn
        assert sm.describe_pipeline(PipelineName=first.pipeline_name)["PipelineDefinition"] == definition_json(second)
        assert [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]] == [first.pipeline_name]


def test_upsert_refuses_an_invalid_definition(monkeypatch):
    import pipelines.sagemaker_pipeline as sp

    broken = copy.deepcopy(build_definition(PipelineSettings()))
    broken["Steps"][0]["Arguments"].pop("RoleArn")
    monkeypatch.setattr(sp, "build_definition", lambda settings: broken)

    class NoCalls:
        def client(self, *args, **kwargs):
            raise AssertionError("an invalid definition must not reach AWS")

    with pytest.raises(ValueError, match="invalid pipeline definition: Train"):
        upsert(PipelineSettings(), NoCalls())


def test_both_steps_read_the_data_manifest_beside_the_photos(definition):
    """Train (channel `manifest`, SM_CHANNEL_MANIFEST) and Evaluate (its `manifest` input, which
    pipelines/evaluate.sh passes as --data-manifest) read <data location>/manifest.json, and the photos
    beside it: the stack's location written in the definition, which no start parameter can change."""
    data = PipelineSettings(git_sha="0123abc").input_data_uri
    assert data.endswith("/data/cats-vs-dogs")
    manifest = f"{data}/manifest.json"
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in definition["Steps"][0]["Arguments"]["InputDataConfig"]
    }
    assert channels["manifest"] == manifest
    inputs = {i["InputName"]: i["S3Input"] for i in definition["Steps"][1]["Arguments"]["ProcessingInputs"]}
    assert inputs["manifest"]["S3Uri"] == manifest
    script = (REPO / "pipelines" / "evaluate.sh").read_text()
    assert f"--data-manifest {inputs['manifest']['LocalPath']}/manifest.json" in script
    assert channels["train"] == f"{data}/train" and inputs["test"]["S3Uri"] == f"{data}/test"
    assert "InputDataUri" not in json.dumps(definition)
