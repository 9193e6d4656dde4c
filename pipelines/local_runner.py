"""Run the training pipeline on this machine: the SageMaker pipeline's steps, order and contracts.

Train (training/train.py with SM_* variables and hyperparameters as arguments) → pack model.tar.gz
→ Evaluate (training/evaluate.py with the processing layout) → the same condition on the same
evaluation.json → register as PendingManualApproval, or fail. First, the data manifest the AWS pipeline
reads beside the photos (training/data_manifest.py) is written from DATA_DIR into the run folder, and both
steps check the photos against it. The caller supplies the workspace (state folder, MLflow store,
registry): this package imports nothing from `mlops`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.settings import DEFAULT_HYPERPARAMETERS, PENDING, gate_threshold
from training.data_manifest import (
    MANIFEST,
    DataManifestError,
    build_manifest,
    layout_photos,
    manifest_bytes,
    sha256_bytes,
)

EXPERIMENT = "catdog-training"


class PipelineFailed(RuntimeError):
    """A step failed or the accuracy gate refused the model (the message is the one-line reason)."""


@dataclass(frozen=True)
class Workspace:
    """Where a run keeps its files and how it registers a model version (the CLI builds it)."""

    state_dir: Path
    tracking_uri: str
    artifact_root: str
    code_root: Path  # on PYTHONPATH of the Train and Evaluate steps
    # register(run_id, artifact_uri, accuracy, git_sha, smoke_set, data_manifest_sha256, model_sha256) -> the new
    # version (with a `.version`), as PENDING; smoke_set = {"uri": the run folder's smoke set, "manifest_sha256":
    # ...} (training/smoke_set.py); data_manifest_sha256: the data manifest's (training/data_manifest.py);
    # model_sha256: the content SHA-256 of the artifact Evaluate scored (serving.artifact)
    register: Callable[[str, str, float, str, dict[str, Any] | None, str, str], Any]


@dataclass
class RunResult:
    run_id: str
    accuracy: float
    threshold: float
    version: str
    artifact: Path
    evaluation: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    evaluation_dir: Path | None = None  # evaluation.json and the report's PNGs (training/report.py)


def json_path(document: dict[str, Any], path: str) -> float:
    """Resolve a dotted JSONPath such as metrics.accuracy.value (what the pipeline's JsonGet reads)."""
    node: Any = document
    for part in path.split("."):
        node = node[part]
    return float(node)


def gate(evaluation: dict[str, Any], threshold: float) -> float:
    """The AccuracyGate condition: metrics.accuracy.value ≥ the floor and ≥ threshold; PipelineFailed below."""
    threshold, _ = gate_threshold(threshold)
    accuracy = json_path(evaluation, "metrics.accuracy.value")
    if not accuracy >= threshold:
        raise PipelineFailed(f"Test accuracy {accuracy:.4f} is below the threshold {threshold:.4f}: nothing registered")
    return accuracy


def _step(name: str, args: list[str], env: dict[str, str], log: Path) -> None:
    with open(log, "ab") as out:
        proc = subprocess.run([sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        raise PipelineFailed(f"{name} step failed (exit {proc.returncode}): {tail[0][:300]}")


def write_data_manifest(data_dir: Path, path: Path) -> str:
    """Write the data set's manifest (as `mlops data upload` writes it beside the photos on S3); its SHA-256."""
    try:
        body = manifest_bytes(build_manifest(layout_photos(data_dir)))
    except DataManifestError as exc:
        raise PipelineFailed(str(exc)) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return sha256_bytes(body)


def run_pipeline(
    data_dir: Path,
    threshold: float,
    hyperparameters: dict[str, str] | None = None,
    eval_max_per_class: int = 0,
    on_stage: Callable[[str], None] = print,
    *,
    workspace: Workspace,
    on_notice: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> RunResult:
    """Execute Train → Evaluate → Gate → Register; raises PipelineFailed with a one-line reason.

    A threshold below the floor is raised to it (on_notice says so); the version is always PENDING.
    """
    import mlflow

    from training.model_tar import git_sha, pack_model_dir

    threshold, notice = gate_threshold(threshold)
    if notice:
        on_notice(notice)
    mlflow.set_tracking_uri(workspace.tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=workspace.artifact_root)
    mlflow.set_experiment(EXPERIMENT)
    hp = {**DEFAULT_HYPERPARAMETERS, **(hyperparameters or {})}
    seconds: dict[str, float] = {}
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        mlflow.set_tags({"pipeline": "local", "git_sha": git_sha(), "threshold": str(threshold)})
        work = workspace.state_dir / "runs" / run_id
        model_dir, output_dir, eval_dir = work / "model", work / "output", work / "evaluation"
        log = work / "pipeline.log"
        work.mkdir(parents=True, exist_ok=True)
        data_manifest = work / "data" / MANIFEST
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": workspace.tracking_uri,
            "MLFLOW_RUN_ID": run_id,
            "SM_CHANNEL_TRAIN": str(data_dir / "train"),
            "SM_CHANNEL_MANIFEST": str(data_manifest.parent),
            "SM_MODEL_DIR": str(model_dir),
            "SM_OUTPUT_DATA_DIR": str(output_dir),
            "TRAINING_JOB_NAME": run_id,
            "GIT_SHA": git_sha(),
            "PYTHONPATH": str(workspace.code_root),
        }
        try:
            t = time.perf_counter()
            write_data_manifest(data_dir, data_manifest)
            on_stage("Train")
            _step("Train", ["-m", "training.train", *[f"--{k}={v}" for k, v in hp.items()]], env, log)
            packed = pack_model_dir(model_dir, work / "artifacts" / "model.tar.gz")
            seconds["train"] = time.perf_counter() - t
            t = time.perf_counter()
            on_stage("Evaluate")
            _step(
                "Evaluate",
                [
                    "-m",
                    "training.evaluate",
                    "--model",
                    str(packed.parent),
                    "--test",
                    str(data_dir / "test"),
                    "--data-manifest",
                    str(data_manifest),
                    "--output",
                    str(eval_dir),
                    "--max-images-per-class",
                    str(eval_max_per_class),
                ],
                env,
                log,
            )
            evaluation = json.loads((eval_dir / "evaluation.json").read_text())
            seconds["evaluate"] = time.perf_counter() - t
            on_stage("AccuracyGate")
            accuracy = gate(evaluation, threshold)
        except PipelineFailed as exc:
            mlflow.set_tag("failure", str(exc))
            mlflow.end_run(status="FAILED")
            raise
        on_stage("Register")
        mlflow.log_artifact(str(packed), "model")
        store = workspace.state_dir / "models" / run_id
        store.mkdir(parents=True, exist_ok=True)
        shutil.copy2(packed, store / "model.tar.gz")
        artifact_uri = (store / "model.tar.gz").as_uri()
        smoke = evaluation.get("smoke_set")  # written by training/evaluate.py beside evaluation.json
        smoke_ref = {"uri": (eval_dir / smoke["path"]).as_uri(), "manifest_sha256": smoke["manifest_sha256"]}
        data_sha = evaluation["data"]["manifest_sha256"]  # the manifest Train and Evaluate checked the photos against
        model_sha = evaluation["model"]["sha256"]  # what Evaluate scored; the registry refuses another artifact
        version = workspace.register(run_id, artifact_uri, accuracy, git_sha(), smoke_ref, data_sha, model_sha)
        mlflow.set_tags(
            {"model_version": version.version, "approval_status": PENDING, "data_manifest_sha256": data_sha}
        )
    return RunResult(
        run_id, accuracy, threshold, version.version, store / "model.tar.gz", evaluation, seconds, eval_dir
    )
