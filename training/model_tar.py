"""The model folder as SageMaker ships it (model.tar.gz) and the commit a model is trained from.

Free of torch: the local pipeline's runner packs and registers without loading the training stack.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path


def git_sha() -> str:
    """The commit being trained (GIT_SHA env in CI/SageMaker, else git, else 'unknown')."""
    if os.environ.get("GIT_SHA"):
        return os.environ["GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pack_model_dir(model_dir: Path, tar_path: Path) -> Path:
    """Pack the model folder's files as model.tar.gz, as SageMaker does after a training job."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w:gz") as tar:
        for f in sorted(model_dir.iterdir()):
            if f.is_file():
                tar.add(f, arcname=f.name)
    return tar_path
