"""The local model registry: MLflow's Model Registry on sqlite, approval status kept as a tag."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mlops import config
from mlops.backends.base import PENDING, STATUSES, ModelVersion, RegistryError
from mlops.backends.local import signing
from training import attestation

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion
    from mlflow.tracking import MlflowClient

APPROVAL_TAG = "approval_status"
SMOKE_SET_TAG, SMOKE_SHA_TAG = "smoke_set", "smoke_manifest_sha256"
DATA_SHA_TAG = "data_manifest_sha256"  # the same name as the model package's CustomerMetadataProperties key
MODEL_SHA_TAG = "model_sha256"  # likewise: the artifact's content SHA-256 (serving.artifact)


def _client() -> MlflowClient:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=config.tracking_uri(), registry_uri=config.registry_uri())


class LocalRegistry:
    """Model versions of one registered model in MLflow."""

    def __init__(self, name: str = config.MODEL_NAME) -> None:
        self.name = name
        self.client = _client()

    def register(
        self,
        run_id: str,
        artifact_uri: str,
        accuracy: float,
        git_sha: str,
        smoke_set: dict[str, Any] | None = None,
        data_manifest_sha256: str = "",
        model_sha256: str = "",
    ) -> ModelVersion:
        """One call creates the version with all its tags, so a version is never half-registered.

        smoke_set: {"uri": the run folder's smoke set (file://), "manifest_sha256": ...} from the evaluation;
        data_manifest_sha256: the data manifest's, which evaluation.json records (training/data_manifest.py);
        model_sha256: the content SHA-256 of the artifact evaluation scored. The registry hashes the artifact
        itself and refuses one that differs from it (it changed after the evaluation); without one given, it
        records its own (a file it cannot read gets none, and no promotion). It signs what it records with the
        state folder's registration key (mlops/backends/local/signing.py): promotion verifies the signature."""
        from mlflow.exceptions import MlflowException

        found = _content_sha256(artifact_uri)
        if model_sha256 and found != model_sha256:
            raise RegistryError(
                f"the artifact {artifact_uri} is not the one evaluated (content sha256 {found[:12] or 'unreadable'}, "
                f"evaluated {model_sha256[:12]}): nothing registered"
            )

        try:
            self.client.create_registered_model(self.name, description="MobileNetV2 cat/dog classifier (ONNX)")
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        smoke_sha = smoke_set["manifest_sha256"] if smoke_set else ""
        signed = attestation.message(self.name, found, smoke_sha, data_manifest_sha256, git_sha)
        mv = self.client.create_model_version(
            self.name,
            source=artifact_uri,
            run_id=run_id,
            tags={
                APPROVAL_TAG: PENDING,
                "test_accuracy": f"{accuracy:.6f}",
                "artifact_uri": artifact_uri,
                "git_sha": git_sha,
                **({SMOKE_SET_TAG: smoke_set["uri"], SMOKE_SHA_TAG: smoke_set["manifest_sha256"]} if smoke_set else {}),
                **({DATA_SHA_TAG: data_manifest_sha256} if data_manifest_sha256 else {}),
                **({MODEL_SHA_TAG: found} if found else {}),
                attestation.SIGNATURE_KEY: signing.sign(signed),
            },
            description=f"test accuracy {accuracy:.4f}",
        )
        return self._to_version(mv)

    def attestation_key(self) -> bytes:
        return signing.public_key_der()

    def list_versions(self) -> list[ModelVersion]:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name='{self.name}'")
        except MlflowException:
            return []
        return sorted((self._to_version(mv) for mv in found), key=lambda v: int(v.version))

    def get(self, version: str) -> ModelVersion:
        for mv in self.list_versions():
            if mv.version == str(version):
                return mv
        raise RegistryError(f"model version {version} not found in the registry")

    def set_status(self, version: str, status: str, who: str, reason: str) -> ModelVersion:
        if status not in STATUSES:
            raise RegistryError(f"unknown approval status {status!r}; one of {', '.join(STATUSES)}")
        self.get(version)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for key, value in (
            (APPROVAL_TAG, status),
            ("approved_by", who),
            ("approval_reason", reason),
            ("approval_time", now),
        ):
            self.client.set_model_version_tag(self.name, str(version), key, value)
        return self.get(version)

    @staticmethod
    def _to_version(mv: MlflowModelVersion) -> ModelVersion:
        tags = mv.tags or {}
        acc = tags.get("test_accuracy")
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds")
        return ModelVersion(
            version=str(mv.version),
            status=tags.get(APPROVAL_TAG, PENDING),
            accuracy=float(acc) if acc else None,
            artifact_uri=tags.get("artifact_uri", mv.source or ""),
            created=created,
            run_id=mv.run_id or "",
            git_sha=tags.get("git_sha", ""),
            approved_by=tags.get("approved_by", ""),
            reason=tags.get("approval_reason", ""),
            smoke_set=tags.get(SMOKE_SET_TAG, ""),
            smoke_sha256=tags.get(SMOKE_SHA_TAG, ""),
            data_manifest_sha256=tags.get(DATA_SHA_TAG, ""),
            model_sha256=tags.get(MODEL_SHA_TAG, ""),
            attestation=tags.get(attestation.SIGNATURE_KEY, ""),
        )


def artifact_path(artifact_uri: str) -> Path:
    """The local file a version's artifact URI names (file:// or a plain path)."""
    parsed = urlparse(artifact_uri)
    return Path(unquote(parsed.path) if parsed.scheme == "file" else artifact_uri)


def _content_sha256(artifact_uri: str) -> str:
    """The artifact's content SHA-256 (serving.artifact), "" when it cannot be read."""
    from serving.artifact import ArtifactError, artifact_sha256

    try:
        return artifact_sha256(artifact_path(artifact_uri))
    except ArtifactError:
        return ""


def smoke_folder(version: ModelVersion) -> Path:
    """The run folder's smoke set that the version's tags name (no copy: it is read where it is)."""
    parsed = urlparse(version.smoke_set)
    if parsed.scheme != "file" or not parsed.path:
        raise RegistryError(
            f"model version {version.version} names no smoke set (register it with `mlops pipeline run`, "
            "or pass --photos / SMOKE_PHOTOS_DIR)"
        )
    return Path(unquote(parsed.path))
