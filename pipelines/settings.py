"""Pipeline settings shared by the SageMaker definition and the local runner (no SDK import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_THRESHOLD = 0.90
PENDING = "PendingManualApproval"

# Hyperparameters passed to training/train.py as CLI arguments, in SageMaker and locally.
DEFAULT_HYPERPARAMETERS: dict[str, str] = {
    "image-size": "160",
    "warmup-epochs": "15",
    "finetune-epochs": "1",
    "finetune-blocks": "4",
    "batch-size": "32",
    "seed": "42",
}


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
    def execution_role(self) -> str:
        return self.role_arn or f"arn:aws:iam::{self.account_id}:role/{self.prefix}-sagemaker"

    @property
    def model_package_group(self) -> str:
        return f"{self.prefix}-models"

    @property
    def code_bundle_uri(self) -> str:
        return self.code_uri or f"s3://{self.artifact_bucket}/code/{self.git_sha}/sourcedir.tar.gz"

    @property
    def evaluate_script_uri(self) -> str:
        return self.code_bundle_uri.rsplit("/", 1)[0] + "/evaluate.sh"

    @property
    def inference_image(self) -> str:
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{self.prefix}-serving:{self.git_sha}"
