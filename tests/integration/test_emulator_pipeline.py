"""Pipeline executions carry out the product's own definition: statuses, steps, gate, registration, Fail."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_emulator import Emulator
from emulator_support import wait_until

from pipelines.sagemaker_pipeline import definition_json
from pipelines.settings import PipelineSettings
from training import attestation
from training.attestation import SIGNATURE_KEY

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BUCKET = "catdog-staging-artifacts-123456789012"
DATA_MANIFEST = b'{"format": 1, "photos": {}}\n'  # what `mlops data upload` writes beside the photos

# Stand-ins for the project's training code, so the test exercises the pipeline machinery in seconds;
# the rehearsal runs the real training/train.py and training/evaluate.py.
TRAIN = """
import argparse, json, os, pathlib
p = argparse.ArgumentParser()
for name in ("image-size", "warmup-epochs", "finetune-epochs", "finetune-blocks", "batch-size", "seed"):
    p.add_argument("--" + name)
args, _ = p.parse_known_args()
channel = pathlib.Path(os.environ["SM_CHANNEL_TRAIN"])
photos = sorted(x.relative_to(channel).as_posix() for x in channel.rglob("*.jpg"))
out = pathlib.Path(os.environ["SM_MODEL_DIR"])
meta = {"photos": photos, "warmup": args.warmup_epochs, "git_sha": os.environ.get("GIT_SHA")}
(out / "metadata.json").write_text(json.dumps(meta))
"""
EVALUATE = """
import argparse, hashlib, json, pathlib, tarfile
p = argparse.ArgumentParser()
p.add_argument("--model"); p.add_argument("--test"); p.add_argument("--output"); p.add_argument("--data-manifest")
a = p.parse_args()
data = {"manifest_sha256": hashlib.sha256(pathlib.Path(a.data_manifest).read_bytes()).hexdigest()}
packed = pathlib.Path(a.model) / "model.tar.gz"
with tarfile.open(packed) as tar:
    meta = json.load(tar.extractfile("metadata.json"))
accuracy = float((pathlib.Path(a.test) / "accuracy.txt").read_text())
model = {"mlflow_run_id": "run-" + meta["git_sha"], "sha256": hashlib.sha256(packed.read_bytes()).hexdigest()}
doc = {"metrics": {"accuracy": {"value": accuracy}}, "model": model,
       "smoke_set": {"path": "smoke", "manifest_sha256": "ab" * 32}, "data": data}
import os, boto3
from training import attestation  # the product's own message and signing, as the Evaluate job signs
body = attestation.message(os.environ["MODEL_PACKAGE_GROUP"], model["sha256"], "ab" * 32, data["manifest_sha256"],
                           os.environ["GIT_SHA"])
signature = attestation.sign_with_kms(boto3.client("kms"), os.environ["REGISTRATION_SIGNING_KEY"], body)
doc["attestation"] = {"signature": signature}
pathlib.Path(a.output, "evaluation.json").write_text(json.dumps(doc))
"""


def bundle() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        attestation = (REPO / "training" / "attestation.py").read_text()
        files = [("training/train.py", TRAIN), ("training/evaluate.py", EVALUATE), ("requirements.txt", "")]
        for name, text in [*files, ("training/__init__.py", ""), ("training/attestation.py", attestation)]:
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = Emulator(tmp_path_factory.mktemp("emulator-pipeline")).start()
    try:
        settings = PipelineSettings(region="eu-west-1", environment="staging", git_sha="abc123")
        s3, sm = emu.client("s3"), emu.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket=BUCKET, Key="code/abc123/sourcedir.tar.gz", Body=bundle())
        s3.put_object(
            Bucket=BUCKET, Key="code/abc123/evaluate.sh", Body=(REPO / "pipelines" / "evaluate.sh").read_bytes()
        )
        for label in ("cat", "dog"):
            s3.put_object(Bucket=BUCKET, Key=f"data/cats-vs-dogs/train/{label}/1.jpg", Body=b"jpeg")
        s3.put_object(Bucket=BUCKET, Key="data/cats-vs-dogs/test/accuracy.txt", Body=b"0.95")
        s3.put_object(Bucket=BUCKET, Key="data/cats-vs-dogs/manifest.json", Body=DATA_MANIFEST)
        sm.create_model_package_group(ModelPackageGroupName=settings.model_package_group)
        # The pipeline role (SageMaker may assume it) and its registration key (infra/bootstrap/signing.tf).
        sagemaker = {"Service": "sagemaker.amazonaws.com"}
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": sagemaker}],
        }
        iam = emu.client("iam")
        iam.create_role(RoleName=f"{settings.prefix}-pipeline", AssumeRolePolicyDocument=json.dumps(trust))
        kms = emu.client("kms")
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=settings.signing_key, TargetKeyId=key)
        sm.create_pipeline(
            PipelineName=settings.pipeline_name,
            PipelineDefinition=definition_json(settings),
            RoleArn=settings.execution_role,
        )
        yield emu
    finally:
        emu.stop()


def run(emu: Emulator, **parameters: str) -> tuple[dict, list[dict]]:
    sm = emu.client("sagemaker")
    arn = sm.start_pipeline_execution(
        PipelineName="catdog-training", PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()]
    )["PipelineExecutionArn"]
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
    desc = wait_until(
        lambda: (
            (d := sm.describe_pipeline_execution(PipelineExecutionArn=arn))["PipelineExecutionStatus"] != "Executing"
            and d
        ),
        timeout=120,
        what="execution finished",
    )
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")["PipelineExecutionSteps"]
    return desc, steps


def test_passing_execution_trains_evaluates_and_registers(pipeline: Emulator) -> None:
    desc, steps = run(pipeline)
    assert desc["PipelineExecutionStatus"] == "Succeeded", desc
    kinds = [(next(iter(s["Metadata"])), s["StepStatus"]) for s in steps]
    assert kinds == [
        ("TrainingJob", "Succeeded"),
        ("ProcessingJob", "Succeeded"),
        ("Condition", "Succeeded"),
        ("RegisterModel", "Succeeded"),
    ]
    assert steps[2]["Metadata"]["Condition"]["Outcome"] == "True"
    sm, s3 = pipeline.client("sagemaker"), pipeline.client("s3")
    package = sm.describe_model_package(ModelPackageName=steps[3]["Metadata"]["RegisterModel"]["Arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    props = package["CustomerMetadataProperties"]
    assert {k: props[k] for k in ("git_sha", "mlflow_run_id", "smoke_manifest_sha256", "data_manifest_sha256")} == {
        "git_sha": "abc123",
        "mlflow_run_id": "run-abc123",
        "smoke_manifest_sha256": "ab" * 32,
        "data_manifest_sha256": hashlib.sha256(DATA_MANIFEST).hexdigest(),  # the manifest Evaluate was given
    }
    data_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, _, key = data_url.removeprefix("s3://").partition("/")
    packed = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert props["model_sha256"] == hashlib.sha256(packed).hexdigest()  # what Evaluate said it scored
    # Evaluate signed what Register recorded, with the registration key, as the job's role (the pipeline's).
    public = pipeline.client("kms").get_public_key(KeyId="alias/catdog-staging-registration-signing")["PublicKey"]
    attestation.verify(public, attestation.of_properties(package["ModelPackageGroupName"], props), props[SIGNATURE_KEY])
    decisions = [json.loads(line) for line in (pipeline.workdir / "iam-decisions.jsonl").read_text().splitlines()]
    signers = {d["principal"] for d in decisions if d["action"] == "kms:Sign"}
    assert signers and all(p.split(":")[-1].startswith("assumed-role/catdog-staging-pipeline/") for p in signers)
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
    assert meta == {"photos": ["cat/1.jpg", "dog/1.jpg"], "warmup": "15", "git_sha": "abc123"}
    job = sm.describe_processing_job(ProcessingJobName=steps[1]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
    uri = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    b, _, k = uri.removeprefix("s3://").partition("/")
    evaluation = json.loads(s3.get_object(Bucket=b, Key=k + "/evaluation.json")["Body"].read())
    assert props["smoke_set"] == uri.rstrip("/") + "/smoke"  # the smoke set beside the evaluation
    assert evaluation["metrics"]["accuracy"]["value"] == 0.95


def test_failing_gate_runs_the_fail_step_and_fails_the_execution(pipeline: Emulator) -> None:
    desc, steps = run(pipeline, AccuracyThreshold="0.99")
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert "0.95 is below the threshold" in desc["FailureReason"] and "0.99" in desc["FailureReason"]
    assert [(next(iter(s["Metadata"])), s["StepStatus"]) for s in steps][-2:] == [
        ("Condition", "Succeeded"),
        ("Fail", "Failed"),
    ]
    assert steps[-2]["Metadata"]["Condition"]["Outcome"] == "False"
    assert steps[-1]["Metadata"]["Fail"]["ErrorMessage"] == desc["FailureReason"]
    newest_first = pipeline.client("sagemaker").list_pipeline_execution_steps(
        PipelineExecutionArn=desc["PipelineExecutionArn"]
    )
    assert newest_first["PipelineExecutionSteps"][0]["StepName"] == steps[-1]["StepName"]
