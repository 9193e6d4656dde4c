"""Each local stage's own copies of the model artifacts it serves, apart from the registry's runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mlops.backends.base import BackendError, ModelVersion
from mlops.backends.local.registry import artifact_path


def kept_path(home: Path, stage: str, version: ModelVersion) -> Path:
    """Where `stage` keeps its copy of `version`: <state folder>/local/released/<stage>/v<N>-<sha256[:16]>/."""
    sha = version.model_sha256[:16] or "unhashed"
    return home / "local" / "released" / stage / f"v{version.version}-{sha}" / "model.tar.gz"


def keep_copy(version: ModelVersion, dest: Path) -> Path:
    """Copy the registered artifact to `dest`, whole or not at all: a model server never reads half a copy."""
    source = artifact_path(version.artifact_uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, dest)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackendError(f"model version {version.version}: copying {source}: {exc.strerror or exc}") from None
    return dest
