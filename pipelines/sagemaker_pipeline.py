"""The SageMaker Pipeline: Train → Evaluate → Condition(accuracy gate) → Register | Fail, with no SDK.

The definition is plain data in SageMaker's pipeline definition schema (version 2020-12-01): each
step's Arguments are the request of the API the step calls (CreateTrainingJob, CreateProcessingJob,
CreateModelPackage), with `Get`, `Std:Join` and `Std:JsonGet` expressions where a value is known only
at run time. `definition_json` builds it offline and byte-identical across runs; `upsert` sends that
same text with boto3 after `definition_check.validate` has checked it against botocore's model.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.definition_check import SCHEMA_VERSION, validate
from pipelines.images import training_image
from pipelines.settings import DEFAULT_HYPERPARAMETERS, DEFAULT_THRESHOLD, PENDING, THRESHOLD_FLOOR, PipelineSettings
from training.attestation import SIGNATURE_KEY
from training.data_manifest import MANIFEST

CONTENT_TYPES = ["image/jpeg", "image/png", "application/x-image", "application/json"]
INSTANCE = "ml.m5.xlarge"
VOLUME_GB = 30
MAX_TRAINING_SECONDS = 86400
# Processing-container paths; SageMaker needs one local path per input.
MODEL_DIR, TEST_DIR = "/opt/ml/processing/model", "/opt/ml/processing/test"
DATA_MANIFEST_DIR = "/opt/ml/processing/manifest"  # pipelines/evaluate.sh passes its manifest.json
BUNDLE_DIR, CODE_DIR = "/opt/ml/processing/input/bundle", "/opt/ml/processing/input/code"
EVALUATION_DIR = "/opt/ml/processing/evaluation"

Expr = dict[str, Any]


def get(path: str) -> Expr:
    return {"Get": path}


def param(name: str) -> Expr:
    return get(f"Parameters.{name}")


def join(values: list[Any], on: str = "") -> Expr:
    return {"Std:Join": {"On": on, "Values": values}}


def json_get(step: str, property_file: str, path: str) -> Expr:
    return {"Std:JsonGet": {"PropertyFile": get(f"Steps.{step}.PropertyFiles.{property_file}"), "Path": path}}


MODEL_ARTIFACTS = get("Steps.Train.ModelArtifacts.S3ModelArtifacts")
EXECUTION_ID = get("Execution.PipelineExecutionId")
ACCURACY = json_get("Evaluate", "Evaluation", "metrics.accuracy.value")


def data_uri(settings: PipelineSettings, part: str) -> str:
    """Where Train and Evaluate read the photos (`train`, `test`) and the data set's manifest: the stack's
    data location, written into the definition. Not a parameter: whoever starts a run cannot choose the
    photos the gate scores (nor train on them). `mlops data upload` writes the manifest last; both steps
    check the photos they read against it, and the registered version records its SHA-256."""
    return f"{settings.input_data_uri}/{part}"


def parameters(settings: PipelineSettings) -> list[dict[str, Any]]:
    """What a start may set. Neither the threshold's floor, the registration status nor the photos are among them."""

    def string(name: str, default: str) -> dict[str, Any]:
        return {"Name": name, "Type": "String", "DefaultValue": default}

    return [
        string("TrainingInstanceType", INSTANCE),
        string("ProcessingInstanceType", INSTANCE),
        {"Name": "AccuracyThreshold", "Type": "Float", "DefaultValue": DEFAULT_THRESHOLD},
        string("ModelPackageGroupName", settings.model_package_group),
        string("InferenceImageUri", settings.inference_image),
        string("GitSha", settings.git_sha),
    ]


def _hyperparameters(settings: PipelineSettings) -> dict[str, str]:
    """The PyTorch container's contract: JSON-encoded values, the entry point and the code bundle."""
    values: dict[str, Any] = {
        **DEFAULT_HYPERPARAMETERS,
        "sagemaker_program": "training/train.py",
        "sagemaker_submit_directory": settings.code_bundle_uri,
        "sagemaker_region": settings.region,
        "sagemaker_container_log_level": 20,
    }
    return {name: json.dumps(value) for name, value in values.items()}


def _channel(name: str, source: Any) -> dict[str, Any]:
    s3 = {"S3DataType": "S3Prefix", "S3Uri": source, "S3DataDistributionType": "FullyReplicated"}
    return {"ChannelName": name, "DataSource": {"S3DataSource": s3}}


def train_step(settings: PipelineSettings) -> dict[str, Any]:
    bucket = settings.artifact_bucket
    return {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {
                "TrainingImage": training_image(settings.region),
                "TrainingInputMode": "File",
                "EnableSageMakerMetricsTimeSeries": True,
            },
            "RoleArn": settings.execution_role,
            "HyperParameters": _hyperparameters(settings),
            "Environment": {"GIT_SHA": param("GitSha"), "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri},
            # SM_CHANNEL_TRAIN and SM_CHANNEL_MANIFEST (training/train.py checks the one against the other).
            "InputDataConfig": [
                _channel("train", data_uri(settings, "train")),
                _channel("manifest", data_uri(settings, MANIFEST)),
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models"},
            "ResourceConfig": {
                "InstanceCount": 1,
                "InstanceType": param("TrainingInstanceType"),
                "VolumeSizeInGB": VOLUME_GB,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": MAX_TRAINING_SECONDS},
            "ProfilerConfig": {"DisableProfiler": True},
        },
    }


def _input(name: str, source: Any, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": source,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def evaluate_step(settings: PipelineSettings) -> dict[str, Any]:
    """pipelines/evaluate.sh in the PyTorch image: unpack the bundle, run training/evaluate.py."""
    return {
        "Name": "Evaluate",
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": training_image(settings.region),
                "ContainerEntrypoint": ["bash", f"{CODE_DIR}/evaluate.sh"],
            },
            "RoleArn": settings.execution_role,
            # What the job signs the registration's hashes as (training/attestation.py), with the key only
            # the pipeline role may use: the group and commit the Register step records.
            "Environment": {
                "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
                "REGISTRATION_SIGNING_KEY": settings.signing_key,
                "MODEL_PACKAGE_GROUP": param("ModelPackageGroupName"),
                "GIT_SHA": param("GitSha"),
            },
            "ProcessingInputs": [
                _input("model", MODEL_ARTIFACTS, MODEL_DIR),
                _input("test", data_uri(settings, "test"), TEST_DIR),
                _input("manifest", data_uri(settings, MANIFEST), DATA_MANIFEST_DIR),
                _input("bundle", settings.code_bundle_uri, BUNDLE_DIR),
                _input("code", settings.evaluate_script_uri, CODE_DIR),
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "evaluation",
                        "AppManaged": False,
                        "S3Output": {
                            "S3Uri": join([f"s3://{settings.artifact_bucket}/evaluation", EXECUTION_ID], on="/"),
                            "LocalPath": EVALUATION_DIR,
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": param("ProcessingInstanceType"),
                    "VolumeSizeInGB": VOLUME_GB,
                }
            },
        },
        "PropertyFiles": [
            {"PropertyFileName": "Evaluation", "OutputName": "evaluation", "FilePath": "evaluation.json"}
        ],
    }


def register_step() -> dict[str, Any]:
    """CreateModelPackage, always PendingManualApproval: approval is a person's act (`mlops approve`)."""
    evaluation_uri = get("Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri")
    return {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": param("ModelPackageGroupName"),
            "ModelPackageDescription": "MobileNetV2 cat/dog classifier (ONNX); test accuracy in ModelMetrics",
            "ModelApprovalStatus": PENDING,
            "InferenceSpecification": {
                "Containers": [{"Image": param("InferenceImageUri"), "ModelDataUrl": MODEL_ARTIFACTS}],
                "SupportedContentTypes": CONTENT_TYPES,
                "SupportedResponseMIMETypes": ["application/json"],
                "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large", "ml.c6i.large"],
                "SupportedTransformInstanceTypes": ["ml.m5.large"],
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": join([evaluation_uri, "evaluation.json"], on="/"),
                    }
                }
            },
            # The smoke set evaluation wrote beside evaluation.json (training/smoke_set.py) and its manifest's
            # SHA-256: promotion smoke-tests with exactly these photos, and refuses a set that differs. And the
            # SHA-256 of the data manifest the photos of this run were checked against (training/data_manifest.py).
            "CustomerMetadataProperties": {
                "git_sha": param("GitSha"),
                "mlflow_run_id": json_get("Evaluate", "Evaluation", "model.mlflow_run_id"),
                "smoke_set": join([evaluation_uri, json_get("Evaluate", "Evaluation", "smoke_set.path")], on="/"),
                "smoke_manifest_sha256": json_get("Evaluate", "Evaluation", "smoke_set.manifest_sha256"),
                "data_manifest_sha256": json_get("Evaluate", "Evaluation", "data.manifest_sha256"),
                # The content SHA-256 of the model Evaluate scored: promotion and the model server check it.
                "model_sha256": json_get("Evaluate", "Evaluation", "model.sha256"),
                # The pipeline's signature over those values (training/attestation.py): promotion verifies it.
                SIGNATURE_KEY: json_get("Evaluate", "Evaluation", "attestation.signature"),
            },
        },
    }


def gate_step() -> dict[str, Any]:
    """Both conditions must hold: accuracy ≥ the floor AND accuracy ≥ AccuracyThreshold (a caller may
    raise the gate through the parameter, never lower it below the floor)."""
    floor = f"{THRESHOLD_FLOOR:g}"
    message = join(
        ["Test accuracy ", ACCURACY, f" is below the threshold max({floor}, ", param("AccuracyThreshold"), ")"]
    )
    return {
        "Name": "AccuracyGate",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {"Type": "GreaterThanOrEqualTo", "LeftValue": ACCURACY, "RightValue": THRESHOLD_FLOOR},
                {"Type": "GreaterThanOrEqualTo", "LeftValue": ACCURACY, "RightValue": param("AccuracyThreshold")},
            ],
            "IfSteps": [register_step()],
            "ElseSteps": [{"Name": "AccuracyBelowThreshold", "Type": "Fail", "Arguments": {"ErrorMessage": message}}],
        },
    }


def build_definition(settings: PipelineSettings) -> dict[str, Any]:
    # No PipelineExperimentConfig: runs are tracked in MLflow, and the pipeline role has no Experiments rights.
    return {
        "Version": SCHEMA_VERSION,
        "Metadata": {},
        "Parameters": parameters(settings),
        "PipelineExperimentConfig": None,
        "Steps": [train_step(settings), evaluate_step(settings), gate_step()],
    }


def definition_json(settings: PipelineSettings) -> str:
    """The pipeline definition as canonical JSON (sorted keys): the same settings give the same bytes."""
    return json.dumps(build_definition(settings), indent=2, sort_keys=True) + "\n"


def checked_definition_json(settings: PipelineSettings) -> str:
    """definition_json after validate(); ValueError naming every problem when the definition is invalid."""
    text = definition_json(settings)
    problems = validate(json.loads(text))
    if problems:
        raise ValueError("invalid pipeline definition: " + "; ".join(problems))
    return text


def upsert(settings: PipelineSettings, boto_session: Any) -> str:
    """Create or update the pipeline in SageMaker with the checked definition; returns its ARN."""
    name, body = settings.pipeline_name, checked_definition_json(settings)
    sm = boto_session.client("sagemaker")
    common = {
        "PipelineName": name,
        "PipelineDefinition": body,
        "PipelineDescription": "Train → Evaluate → accuracy gate → Register (PendingManualApproval) | Fail",
        "RoleArn": settings.execution_role,
    }
    # DescribePipeline, not ListPipelines: the deploy role may read this pipeline only (ListPipelines is
    # authorized on every pipeline of the account or none).
    try:
        sm.describe_pipeline(PipelineName=name)
    except sm.exceptions.ResourceNotFound:
        return str(sm.create_pipeline(**common)["PipelineArn"])
    return str(sm.update_pipeline(**common)["PipelineArn"])
