"""Where the project keeps its local state, and the settings read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """The project state folder (MLOPS_HOME, default .mlops/ in the checkout), created on demand."""
    path = Path(os.environ.get("MLOPS_HOME") or REPO_ROOT / ".mlops").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri() -> str:
    """MLflow tracking URI: MLFLOW_TRACKING_URI, else sqlite under the state folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{state_dir() / 'mlflow.db'}"


def registry_uri() -> str:
    """MLflow registry URI: MLFLOW_REGISTRY_URI, else the tracking URI."""
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri()


def artifact_root() -> str:
    """Where MLflow stores run artifacts for the local sqlite store."""
    return (state_dir() / "mlartifacts").as_uri()


MODEL_NAME = os.environ.get("MODEL_NAME", "catdog-mobilenetv2")
