"""MLflow tracking for the training and evaluation steps.

Steps join the run named by MLFLOW_RUN_ID on the server named by MLFLOW_TRACKING_URI (a sqlite
file locally, an MLflow server or a SageMaker managed MLflow ARN in AWS). With neither set, a
step logs nothing (a bare SageMaker job without tracking still trains).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class _Run:
    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id

    @property
    def enabled(self) -> bool:
        return self.run_id is not None

    def log_params(self, params: dict[str, Any]) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_artifact(str(path), artifact_path=artifact_path)


_current = _Run(None)


def active_run() -> _Run:
    return _current


@contextlib.contextmanager
def run_context() -> Iterator[_Run]:
    """Join (or start) the MLflow run for this step when tracking is configured."""
    global _current
    if not (os.environ.get("MLFLOW_TRACKING_URI") or os.environ.get("MLFLOW_RUN_ID")):
        yield _current
        return
    import mlflow

    with mlflow.start_run(run_id=os.environ.get("MLFLOW_RUN_ID") or None) as run:
        _current = _Run(run.info.run_id)
        try:
            yield _current
        finally:
            _current = _Run(None)
