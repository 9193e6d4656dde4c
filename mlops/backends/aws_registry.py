"""The SageMaker Model Registry as the aws backend's model registry (one model package group)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from mlops.backends.aws_config import AwsClients, aws_call
from mlops.backends.base import STATUSES, BackendError, ModelVersion

ACCURACY_KEYS = ("accuracy", "test_accuracy")


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/")


def read_accuracy(report: dict) -> float | None:
    """metrics.accuracy.value of an evaluation.json (training/evaluate.py), else None."""
    try:
        return float(report["metrics"]["accuracy"]["value"])
    except (KeyError, TypeError, ValueError):
        return None


class SageMakerRegistry:
    """Model versions = ModelPackageVersion of the packages in the group; approval = ModelApprovalStatus."""

    def __init__(self, clients: AwsClients, group: str) -> None:
        self.clients = clients
        self.group = group
        self._accuracy: dict[str, float | None] = {}

    @property
    def sm(self) -> Any:
        return self.clients.get("sagemaker")

    def _summaries(self) -> list[dict]:
        with aws_call(f"listing model packages of {self.group}"):
            pages = self.sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=self.group)
            return [s for page in pages for s in page.get("ModelPackageSummaryList", [])]

    def _describe(self, arn: str) -> dict:
        with aws_call(f"describing model package {arn}"):
            return self.sm.describe_model_package(ModelPackageName=arn)

    def _arn(self, version: str) -> str:
        for summary in self._summaries():
            if str(summary.get("ModelPackageVersion")) == str(version):
                return summary["ModelPackageArn"]
        raise BackendError(f"model version {version} not found in model package group {self.group}")

    def list_versions(self) -> list[ModelVersion]:
        versions = [self._to_version(self._describe(s["ModelPackageArn"])) for s in self._summaries()]
        return sorted(versions, key=lambda v: int(v.version) if v.version.isdigit() else 0)

    def get(self, version: str) -> ModelVersion:
        return self._to_version(self._describe(self._arn(version)))

    def container(self, version: str) -> dict:
        """Image and model data of a version, as its InferenceSpecification names them."""
        desc = self._describe(self._arn(version))
        containers = desc.get("InferenceSpecification", {}).get("Containers", [])
        if not containers or not containers[0].get("Image"):
            raise BackendError(f"model version {version} has no inference container in the registry")
        return {"Image": containers[0]["Image"], "ModelDataUrl": _model_data(containers[0])}

    def set_status(self, version: str, status: str, who: str, reason: str) -> ModelVersion:
        if status not in STATUSES:
            raise BackendError(f"unknown approval status {status!r}; one of {', '.join(STATUSES)}")
        arn = self._arn(version)
        with aws_call(f"setting model version {version} to {status}"):
            self.sm.update_model_package(
                ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=f"{who}: {reason}"[:1024]
            )
        return self.get(version)

    def _accuracy_of(self, desc: dict) -> float | None:
        props = desc.get("CustomerMetadataProperties") or {}
        for key in ACCURACY_KEYS:
            if props.get(key):
                try:
                    return float(props[key])
                except ValueError:
                    pass
        arn = desc.get("ModelPackageArn", "")
        if arn not in self._accuracy:
            uri = desc.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri", "")
            self._accuracy[arn] = self._read_report(uri) if uri else None
        return self._accuracy[arn]

    def _read_report(self, uri: str) -> float | None:
        """The accuracy in an evaluation.json on S3; None when it is missing or unreadable."""
        try:
            bucket, key = split_s3_uri(uri)
            body = self.clients.get("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            return read_accuracy(json.loads(body))
        except (ClientError, BotoCoreError, ValueError):
            return None

    def _to_version(self, desc: dict) -> ModelVersion:
        props = desc.get("CustomerMetadataProperties") or {}
        who, _, reason = (desc.get("ApprovalDescription") or "").partition(": ")
        created = desc.get("CreationTime")
        containers = desc.get("InferenceSpecification", {}).get("Containers", [{}])
        return ModelVersion(
            version=str(desc.get("ModelPackageVersion", "")),
            status=desc.get("ModelApprovalStatus", STATUSES[0]),
            accuracy=self._accuracy_of(desc),
            artifact_uri=_model_data(containers[0]) if containers else "",
            created=created.isoformat(timespec="seconds") if isinstance(created, datetime) else str(created or ""),
            run_id=props.get("mlflow_run_id", ""),
            git_sha=props.get("git_sha", ""),
            approved_by=who if reason else "",
            reason=reason or who,
        )


def _model_data(container: dict) -> str:
    source = container.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri", "")
    return container.get("ModelDataUrl") or source
