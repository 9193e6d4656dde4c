"""The SageMaker Pipeline (SDK v2): Train → Evaluate → Condition(accuracy ≥ threshold) → Register | Fail.

This is the one module that imports the SageMaker Python SDK. `definition_json` builds the
pipeline offline and deterministically; `upsert` and `start` talk to AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import logging
import warnings

import boto3
from sagemaker import image_uris
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.model_metrics import MetricsSource, ModelMetrics
from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sagemaker.pytorch import PyTorch
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
from sagemaker.workflow.execution_variables import ExecutionVariables
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join, JsonGet
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.parameters import ParameterFloat, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import ProcessingStep, TrainingStep

from pipelines.settings import DEFAULT_HYPERPARAMETERS, DEFAULT_THRESHOLD, PENDING, PipelineSettings

# The SDK logs every field it drops from a pipeline definition; keep the CLI output readable.
logging.getLogger("sagemaker").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="Running within a PipelineSession")

FRAMEWORK_VERSION = "2.6"
PY_VERSION = "py312"
# No SDK telemetry: the definition is built offline, and upserts send nothing beyond the API calls.
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
CONTENT_TYPES = ["image/jpeg", "image/png", "application/x-image", "application/json"]


def _session(settings: PipelineSettings, boto_session: boto3.Session | None = None) -> PipelineSession:
    # Offline, a session with placeholder credentials: building the definition makes no AWS call.
    boto_session = boto_session or boto3.Session(
        region_name=settings.region,
        aws_access_key_id="offline",
        aws_secret_access_key="offline",  # noqa: S106 - placeholder, no call is made
    )
    return PipelineSession(
        boto_session=boto_session, default_bucket=settings.artifact_bucket, sagemaker_config=SDK_CONFIG
    )


def build_pipeline(settings: PipelineSettings, boto_session: boto3.Session | None = None) -> Pipeline:
    session = _session(settings, boto_session)
    bucket = settings.artifact_bucket
    input_uri = ParameterString("InputDataUri", default_value=f"s3://{bucket}/data/cats-vs-dogs")
    train_instance = ParameterString("TrainingInstanceType", default_value="ml.m5.xlarge")
    eval_instance = ParameterString("ProcessingInstanceType", default_value="ml.m5.xlarge")
    threshold = ParameterFloat("AccuracyThreshold", default_value=DEFAULT_THRESHOLD)
    group = ParameterString("ModelPackageGroupName", default_value=settings.model_package_group)
    approval = ParameterString("ModelApprovalStatus", default_value=PENDING)
    inference_image = ParameterString("InferenceImageUri", default_value=settings.inference_image)
    git_sha = ParameterString("GitSha", default_value=settings.git_sha)

    estimator = PyTorch(
        entry_point="training/train.py",
        source_dir=settings.code_bundle_uri,
        framework_version=FRAMEWORK_VERSION,
        py_version=PY_VERSION,
        instance_type=train_instance,
        instance_count=1,
        role=settings.execution_role,
        output_path=f"s3://{bucket}/models",
        code_location=f"s3://{bucket}/code",
        hyperparameters=dict(DEFAULT_HYPERPARAMETERS),
        environment={"GIT_SHA": git_sha, "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri},
        sagemaker_session=session,
        disable_profiler=True,
    )
    step_train = TrainingStep(
        name="Train",
        step_args=estimator.fit({"train": TrainingInput(Join(on="/", values=[input_uri, "train"]))}),
    )

    processor = ScriptProcessor(
        image_uri=image_uris.retrieve(
            "pytorch",
            settings.region,
            version=FRAMEWORK_VERSION,
            py_version=PY_VERSION,
            instance_type="ml.m5.xlarge",
            image_scope="training",
        ),
        command=["bash"],
        instance_type=eval_instance,
        instance_count=1,
        role=settings.execution_role,
        env={"MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri},
        sagemaker_session=session,
    )
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    step_eval = ProcessingStep(
        name="Evaluate",
        step_args=processor.run(
            code=settings.evaluate_script_uri,
            inputs=[
                ProcessingInput(
                    source=step_train.properties.ModelArtifacts.S3ModelArtifacts, destination="/opt/ml/processing/model"
                ),
                ProcessingInput(source=Join(on="/", values=[input_uri, "test"]), destination="/opt/ml/processing/test"),
                ProcessingInput(source=settings.code_bundle_uri, destination="/opt/ml/processing/input/code"),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="evaluation",
                    source="/opt/ml/processing/evaluation",
                    destination=Join(
                        on="/", values=[f"s3://{bucket}/evaluation", ExecutionVariables.PIPELINE_EXECUTION_ID]
                    ),
                )
            ],
        ),
        property_files=[evaluation],
    )
    accuracy = JsonGet(step_name=step_eval.name, property_file=evaluation, json_path="metrics.accuracy.value")
    evaluation_uri = Join(
        on="/",
        values=[step_eval.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"],
    )

    model = Model(
        image_uri=inference_image,
        model_data=step_train.properties.ModelArtifacts.S3ModelArtifacts,
        role=settings.execution_role,
        sagemaker_session=session,
    )
    step_register = ModelStep(
        name="Register",
        step_args=model.register(
            content_types=CONTENT_TYPES,
            response_types=["application/json"],
            inference_instances=["ml.m5.large", "ml.c6i.large"],
            transform_instances=["ml.m5.large"],
            model_package_group_name=group,
            approval_status=approval,
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(s3_uri=evaluation_uri, content_type="application/json")
            ),
            customer_metadata_properties={
                "git_sha": git_sha,
                "mlflow_run_id": JsonGet(
                    step_name=step_eval.name, property_file=evaluation, json_path="model.mlflow_run_id"
                ),
            },
            description="MobileNetV2 cat/dog classifier (ONNX); test accuracy in ModelMetrics",
        ),
    )
    step_fail = FailStep(
        name="AccuracyBelowThreshold",
        error_message=Join(on=" ", values=["Test accuracy", accuracy, "is below the threshold", threshold]),
    )
    step_gate = ConditionStep(
        name="AccuracyGate",
        conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold)],
        if_steps=[step_register],
        else_steps=[step_fail],
    )
    return Pipeline(
        name=settings.pipeline_name,
        parameters=[input_uri, train_instance, eval_instance, threshold, group, approval, inference_image, git_sha],
        steps=[step_train, step_eval, step_gate],
        sagemaker_session=session,
    )


@contextlib.contextmanager
def _offline_env() -> Iterator[None]:
    """The SDK builds helper clients from the default credential chain: keep that chain offline."""
    offline = {"AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in [*offline, "AWS_SESSION_TOKEN", "AWS_PROFILE"]}
    os.environ.update(offline)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def definition_json(settings: PipelineSettings) -> str:
    """The pipeline definition as canonical JSON (sorted keys), built offline: identical across runs."""
    with _offline_env():
        definition = build_pipeline(settings).definition()
    return json.dumps(json.loads(definition), indent=2, sort_keys=True) + "\n"


def upsert(settings: PipelineSettings, boto_session: boto3.Session) -> str:
    """Create or update the pipeline in SageMaker; returns its ARN."""
    pipeline = build_pipeline(settings, boto_session)
    response = pipeline.upsert(role_arn=settings.execution_role)
    return response["PipelineArn"]
