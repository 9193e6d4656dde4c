"""Open a model artifact: a model.tar.gz or an already-unpacked model folder."""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METADATA_FILE = "metadata.json"


class ArtifactError(RuntimeError):
    """The artifact is missing, unreadable or incomplete (the message says which)."""


@dataclass(frozen=True)
class Artifact:
    root: Path
    metadata: dict[str, Any]

    @property
    def serving_model_path(self) -> Path:
        name: str = self.metadata.get("serving_model", "model.onnx")
        return self.root / name

    @property
    def reference_model_path(self) -> Path:
        name: str = self.metadata.get("reference_model", "model.onnx")
        return self.root / name

    @property
    def labels(self) -> list[str]:
        return list(self.metadata["labels"])

    def content_sha256(self) -> str:
        """The artifact's identity by content, the same packed or unpacked (SageMaker unpacks it): the
        SHA-256 of `sha256sum`-style lines, one per file (its bytes' SHA-256, its path), sorted by path.
        Registration records it; promotion and the model server at load refuse an artifact that differs."""
        lines = []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            digest = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            lines.append(f"{digest.hexdigest()}  {path.relative_to(self.root).as_posix()}\n")
        return hashlib.sha256("".join(lines).encode()).hexdigest()

    def verify(self, expected_sha256: str) -> None:
        """ArtifactError unless the content is the registered one (`expected_sha256`, content_sha256's)."""
        found = self.content_sha256()
        if found != expected_sha256.strip().lower():
            raise ArtifactError(
                f"model artifact content sha256 {found[:16]}… differs from the registered {expected_sha256[:16]}…: "
                "it changed after registration"
            )


def artifact_sha256(path: str | Path) -> str:
    """The content SHA-256 of the artifact at `path` (a folder, or a model.tar.gz unpacked to a temporary one
    that is removed after); ArtifactError when it cannot be opened."""
    with tempfile.TemporaryDirectory(prefix="model-") as tmp:
        return open_artifact(path, tmp).content_sha256()


def open_artifact(path: str | Path, workdir: str | Path | None = None) -> Artifact:
    """Return the artifact at `path` (a folder, or a .tar.gz extracted under `workdir`)."""
    path = Path(path)
    if path.is_dir():
        tars = [path / "model.tar.gz"] if (path / "model.tar.gz").is_file() else []
        if not (path / METADATA_FILE).is_file() and tars:
            return open_artifact(tars[0], workdir)
        root = path
    elif path.is_file():
        root = Path(workdir or tempfile.mkdtemp(prefix="model-"))
        try:
            with tarfile.open(path, "r:*") as tar:
                tar.extractall(root, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ArtifactError(f"cannot extract model artifact {path}: {exc}") from exc
    else:
        raise ArtifactError(f"model artifact not found: {path}")
    meta_path = root / METADATA_FILE
    if not meta_path.is_file():
        raise ArtifactError(f"{METADATA_FILE} missing from model artifact {path}")
    try:
        metadata = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"unreadable {METADATA_FILE} in {path}: {exc}") from exc
    artifact = Artifact(root=root, metadata=metadata)
    if not artifact.serving_model_path.is_file():
        raise ArtifactError(f"{artifact.serving_model_path.name} missing from model artifact {path}")
    return artifact
