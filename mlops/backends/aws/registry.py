"""The SageMaker Model Registry as the aws backend's model registry (one model package group)."""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from mlops.backends.aws.config import AwsClients, aws_call
from mlops.backends.base import STATUSES, BackendError, ModelVersion
from training.attestation import SIGNATURE_KEY
from training.smoke_set import MANIFEST

ACCURACY_KEYS = ("accuracy", "test_accuracy")
# CustomerMetadataProperties the pipeline's Register step writes (pipelines/sagemaker_pipeline.py).
SMOKE_SET_KEY, SMOKE_SHA_KEY = "smoke_set", "smoke_manifest_sha256"
DATA_SHA_KEY = "data_manifest_sha256"
MODEL_SHA_KEY = "model_sha256"  # the artifact's content SHA-256 (serving.artifact), from evaluation.json
MAX_MODEL_BYTES = 1 << 30  # a model.tar.gz promotion will download to check (this one is about 15 MB)
MAX_SMOKE_OBJECT_BYTES = 4 * 1024 * 1024


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/")


def read_accuracy(report: dict[str, Any]) -> float | None:
    """metrics.accuracy.value of an evaluation.json (training/evaluate.py), else None."""
    try:
        return float(report["metrics"]["accuracy"]["value"])
    except (KeyError, TypeError, ValueError):
        return None


class SageMakerRegistry:
    """Model versions = ModelPackageVersion of the packages in the group; approval = ModelApprovalStatus."""

    def __init__(self, clients: AwsClients, group: str, signing_key: str = "") -> None:
        self.clients = clients
        self.group = group
        self.signing_key = signing_key  # the pipeline's registration key (KMS key id, ARN or alias)
        self._accuracy: dict[str, float | None] = {}
        self._public_key = b""

    @property
    def name(self) -> str:
        return self.group

    def attestation_key(self) -> bytes:
        """The configured key's public half (GetPublicKey), never a key a model package names itself."""
        if not self._public_key:
            if not self.signing_key:
                raise BackendError("no registration signing key is configured (REGISTRATION_SIGNING_KEY)")
            with aws_call(f"reading the public key of {self.signing_key}"):
                found = self.clients.get("kms").get_public_key(KeyId=self.signing_key)
            spec = found.get("KeySpec") or found.get("CustomerMasterKeySpec")  # AWS returns both, older SDKs one
            if spec != "ECC_NIST_P256" or found.get("KeyUsage") != "SIGN_VERIFY":
                raise BackendError(f"{self.signing_key} is not an ECC_NIST_P256 signing key")
            self._public_key = bytes(found["PublicKey"])
        return self._public_key

    @property
    def sm(self) -> Any:
        return self.clients.get("sagemaker")

    def _summaries(self) -> list[dict[str, Any]]:
        with aws_call(f"listing model packages of {self.group}"):
            pages = self.sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=self.group)
            return [s for page in pages for s in page.get("ModelPackageSummaryList", [])]

    def _describe(self, arn: str) -> dict[str, Any]:
        with aws_call(f"describing model package {arn}"):
            return cast(dict[str, Any], self.sm.describe_model_package(ModelPackageName=arn))

    def _arn(self, version: str) -> str:
        for summary in self._summaries():
            if str(summary.get("ModelPackageVersion")) == str(version):
                return str(summary["ModelPackageArn"])
        raise BackendError(f"model version {version} not found in model package group {self.group}")

    def list_versions(self) -> list[ModelVersion]:
        versions = [self._to_version(self._describe(s["ModelPackageArn"])) for s in self._summaries()]
        return sorted(versions, key=lambda v: int(v.version) if v.version.isdigit() else 0)

    def get(self, version: str) -> ModelVersion:
        return self._to_version(self._describe(self._arn(version)))

    def container(self, version: str) -> dict[str, Any]:
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

    def _accuracy_of(self, desc: dict[str, Any]) -> float | None:
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

    def _to_version(self, desc: dict[str, Any]) -> ModelVersion:
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
            smoke_set=props.get(SMOKE_SET_KEY, ""),
            smoke_sha256=props.get(SMOKE_SHA_KEY, ""),
            data_manifest_sha256=props.get(DATA_SHA_KEY, ""),
            model_sha256=props.get(MODEL_SHA_KEY, ""),
            attestation=props.get(SIGNATURE_KEY, ""),
        )

    def copy_model(self, version: ModelVersion, dest_uri: str) -> str:
        """Copy the version's model.tar.gz (its ModelDataUrl) to `dest_uri` inside S3 (CopyObject: the
        destination bucket's default encryption, its own key, applies to the copy); returns `dest_uri`."""
        try:
            (bucket, key), (dest_bucket, dest_key) = split_s3_uri(version.artifact_uri), split_s3_uri(dest_uri)
        except ValueError as exc:
            raise BackendError(f"model version {version.version}: {exc}") from None
        with aws_call(f"copying the model of version {version.version} to {dest_uri}"):
            self.clients.get("s3").copy_object(
                CopySource={"Bucket": bucket, "Key": key},
                Bucket=dest_bucket,
                Key=dest_key,
                MetadataDirective="REPLACE",
                Metadata={"model-version": version.version, "model-sha256": version.model_sha256},
            )
        return dest_uri

    def fetch_model(self, version: ModelVersion, into: Path, uri: str = "") -> Path:
        """Download the version's model.tar.gz (`uri`, else its ModelDataUrl) into `into`, to check it by content."""
        uri = uri or version.artifact_uri
        try:
            bucket, key = split_s3_uri(uri)
        except ValueError as exc:
            raise BackendError(f"model version {version.version}: {exc}") from None
        dest = into / "model.tar.gz"
        try:
            obj = self.clients.get("s3").get_object(Bucket=bucket, Key=key)
            if obj.get("ContentLength", 0) > MAX_MODEL_BYTES:
                raise BackendError(f"model version {version.version}: {uri} is too large to check")
            with dest.open("wb") as out:
                for chunk in obj["Body"].iter_chunks(1 << 20):
                    out.write(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise BackendError(f"reading the model artifact of version {version.version}: {exc}") from None
        return dest

    def fetch_smoke_set(self, version: ModelVersion) -> Path:
        """Download the version's smoke set (its manifest, then the photos it names) into a temporary folder.

        Only GetObject under the registered prefix; the folder is removed with this registry. Whether
        the files are the registered ones is checked by the caller (training/smoke_set.py)."""
        if not version.smoke_set:
            raise BackendError(
                f"model version {version.version} names no smoke set in the registry (register it again with "
                "the pipeline, or pass --photos / SMOKE_PHOTOS_DIR)"
            )
        try:
            bucket, prefix = split_s3_uri(version.smoke_set.rstrip("/"))
        except ValueError as exc:
            raise BackendError(f"model version {version.version}: {exc}") from None
        dest = Path(tempfile.mkdtemp(prefix=f"catdog-smoke-v{version.version}-"))
        weakref.finalize(self, shutil.rmtree, dest, True)
        manifest = self._get_smoke_object(bucket, f"{prefix}/{MANIFEST}", version)
        if manifest is None:
            raise BackendError(f"model version {version.version}: no {MANIFEST} at {version.smoke_set}")
        (dest / MANIFEST).write_bytes(manifest)
        try:
            names = [str(p["file"]) for p in json.loads(manifest)["photos"]]
        except (ValueError, KeyError, TypeError):
            names = []  # the manifest check refuses it
        for name in names:
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts:
                continue  # never written outside dest; the manifest check refuses it
            data = self._get_smoke_object(bucket, f"{prefix}/{rel}", version)
            if data is not None:  # a missing photo is reported by the manifest check
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                (dest / rel).write_bytes(data)
        return dest

    def _get_smoke_object(self, bucket: str, key: str, version: ModelVersion) -> bytes | None:
        try:
            obj = self.clients.get("s3").get_object(Bucket=bucket, Key=key)
            if obj.get("ContentLength", 0) > MAX_SMOKE_OBJECT_BYTES:
                raise BackendError(f"model version {version.version}: s3://{bucket}/{key} is too large for a smoke set")
            data: bytes = obj["Body"].read()
            return data
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise BackendError(f"reading the smoke set of model version {version.version}: {exc}") from None
        except BotoCoreError as exc:
            raise BackendError(f"reading the smoke set of model version {version.version}: {exc}") from None


def _model_data(container: dict[str, Any]) -> str:
    source = container.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri", "")
    return str(container.get("ModelDataUrl") or source)
