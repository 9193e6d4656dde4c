"""Pipeline settings shared by the SageMaker definition and the local runner: the one home of the gate
and hyperparameter defaults (no SDK, no AWS call)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from training.hyperparameters import DEFAULTS

# The accuracy gate: a caller may raise the threshold (AccuracyThreshold, --threshold, ACCURACY_THRESHOLD),
# never lower it below THRESHOLD_FLOOR. Both gates (SageMaker's condition, the local runner) apply it.
THRESHOLD_FLOOR = 0.90
DEFAULT_THRESHOLD = THRESHOLD_FLOOR
# Every registration waits for a person: no parameter or option changes this status.
PENDING = "PendingManualApproval"

# Where the pipeline reads the photos (written into its definition) and `mlops data upload` puts them:
# <prefix>/train/{cat,dog}, <prefix>/test/{cat,dog} and <prefix>/manifest.json (training/data_manifest.py).
DATA_PREFIX = "data/cats-vs-dogs"

# Hyperparameters passed to training/train.py as arguments, in SageMaker and locally (its own defaults).
DEFAULT_HYPERPARAMETERS: dict[str, str] = {name: str(value) for name, value in DEFAULTS.items()}


def gate_threshold(requested: float | None) -> tuple[float, str]:
    """The threshold the gate applies and, when the request was below the floor, a one-line notice."""
    if requested is None:
        return DEFAULT_THRESHOLD, ""
    if not requested >= THRESHOLD_FLOOR:  # also catches NaN
        return THRESHOLD_FLOOR, (
            f"notice: accuracy threshold {requested:g} raised to the {THRESHOLD_FLOOR:.2f} floor "
            "(a caller may raise the gate, never lower it)"
        )
    return float(requested), ""


@dataclass(frozen=True)
class PipelineSettings:
    """Where the AWS pipeline reads and writes; every field has an offline default."""

    region: str = field(default_factory=lambda: os.environ.get("AWS_REGION", "eu-west-1"))
    environment: str = field(default_factory=lambda: os.environ.get("MLOPS_ENV", "staging"))
    account_id: str = field(default_factory=lambda: os.environ.get("AWS_ACCOUNT_ID", "123456789012"))
    role_arn: str = ""
    bucket: str = ""
    code_uri: str = ""
    git_sha: str = "unknown"
    mlflow_tracking_uri: str = field(default_factory=lambda: os.environ.get("MLFLOW_TRACKING_ARN", ""))

    @property
    def prefix(self) -> str:
        return f"catdog-{self.environment}"

    @property
    def pipeline_name(self) -> str:
        """One pipeline per account, beside the registry (infra output `pipeline_name`)."""
        return "catdog-training"

    @property
    def artifact_bucket(self) -> str:
        return self.bucket or f"{self.prefix}-artifacts-{self.account_id}"

    @property
    def input_data_uri(self) -> str:
        return f"s3://{self.artifact_bucket}/{DATA_PREFIX}"

    @property
    def execution_role(self) -> str:
        return self.role_arn or f"arn:aws:iam::{self.account_id}:role/{self.prefix}-pipeline"

    @property
    def model_package_group(self) -> str:
        return f"{self.prefix}-models"

    @property
    def signing_key(self) -> str:
        """The KMS key only the pipeline role may sign registrations with (infra/bootstrap/signing.tf)."""
        return f"alias/{self.prefix}-registration-signing"

    @property
    def code_bundle_uri(self) -> str:
        return self.code_uri or f"s3://{self.artifact_bucket}/code/{self.git_sha}/sourcedir.tar.gz"

    @property
    def evaluate_script_uri(self) -> str:
        return self.code_bundle_uri.rsplit("/", 1)[0] + "/evaluate.sh"

    @property
    def inference_image(self) -> str:
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{self.prefix}-serving:{self.git_sha}"
