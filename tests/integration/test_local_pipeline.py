"""`mlops pipeline run` end to end on a slice of real photos: the gate both ways and its floor, the registry,
bad setup."""

from __future__ import annotations

import json
import os
import subprocess
from hashlib import sha256
from pathlib import Path

import pytest
import stack_support

REPO = Path(__file__).resolve().parents[2]


def mlops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return stack_support.mlops(*args, env=env, timeout=900)


@pytest.fixture(scope="module")
def env(tmp_path_factory, data_dir, weights) -> dict[str, str]:
    home = tmp_path_factory.mktemp("mlops-home")
    e = {**os.environ, "MLOPS_HOME": str(home), "DATA_DIR": str(data_dir), "PRETRAINED_WEIGHTS": str(weights)}
    e.pop("MLFLOW_TRACKING_URI", None)
    return e


# 60 training photos per class keep the slice comfortably above the 0.90 floor (0.95 on 60 test photos).
SLICE = ["--max-images-per-class", "60", "--eval-images-per-class", "30", "--finetune-epochs", "1"]


def registry(env) -> list[dict]:
    out = mlops("registry", "list", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_gate_passes_and_registers_pending(env):
    # Asked for 0.0: the gate still applies its 0.90 floor, says so in one line, and registers as pending.
    out = mlops("pipeline", "run", *SLICE, "--threshold", "0.0", "--json", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    notice = "notice: accuracy threshold 0 raised to the 0.90 floor (a caller may raise the gate, never lower it)"
    assert notice in " ".join(out.stderr.split())
    result = json.loads(out.stdout)
    assert result["threshold"] == 0.90 and result["status"] == "PendingManualApproval"
    assert result["accuracy"] >= 0.90
    (version,) = registry(env)
    keys = {"version", "status", "accuracy", "artifact_uri", "created", "approved_by", "data_manifest_sha256",
            "model_sha256"}  # fmt: skip
    assert set(version) == keys
    assert version["version"] == result["version"] == "1"
    assert version["status"] == "PendingManualApproval"
    assert version["accuracy"] == pytest.approx(result["accuracy"], abs=1e-6)
    artifact = Path(version["artifact_uri"].removeprefix("file://"))
    assert artifact.is_file() and artifact.name == "model.tar.gz"
    run_dir = Path(env["MLOPS_HOME"]) / "runs" / result["run_id"]
    evaluation = json.loads((run_dir / "evaluation" / "evaluation.json").read_text())
    assert evaluation["metrics"]["accuracy"]["value"] == pytest.approx(result["accuracy"])
    assert evaluation["metrics"]["test_images"] == 60
    assert (run_dir / "evaluation" / "confusion_matrix.png").stat().st_size > 1000
    # The data manifest both steps checked the photos against, recorded with the version.
    data_manifest = (run_dir / "data" / "manifest.json").read_bytes()
    assert version["data_manifest_sha256"] == evaluation["data"]["manifest_sha256"] == sha256(data_manifest).hexdigest()
    # The content of the model Evaluate scored, recorded with the version (serving.artifact's SHA-256).
    from serving.artifact import artifact_sha256

    assert version["model_sha256"] == evaluation["model"]["sha256"] == artifact_sha256(artifact)
    # The smoke set travels with the model: beside evaluation.json, named by the registered version's tags.
    from mlops.backends.local import LocalBackend
    from mlops.smoke import SmokeConfig, smoke_photos

    smoke = evaluation["smoke_set"]
    assert smoke["path"] == "smoke" and smoke["labels"] == ["cat", "dog"] and 2 <= smoke["photos"] <= 10
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", env["MLOPS_HOME"])
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        backend = LocalBackend()
        mv = backend.get_version("1")
        assert mv.smoke_set == (run_dir / "evaluation" / "smoke").as_uri()
        photos = smoke_photos(SmokeConfig(), backend, mv)
    assert len(photos) == smoke["photos"] and {label for _, label in photos} == {"cat", "dog"}
    assert all(p.parent.parent == run_dir / "evaluation" / "smoke" and p.parent.name == label for p, label in photos)


def test_mlflow_run_tracked(env):
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{env['MLOPS_HOME']}/mlflow.db")
    (exp,) = [e for e in client.search_experiments() if e.name == "catdog-training"]
    (run,) = client.search_runs([exp.experiment_id], "tags.model_version = '1'")
    assert "test_accuracy" in run.data.metrics and "val_accuracy" in run.data.metrics
    assert run.data.params["image_size"] == "224"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert len(history) >= 2  # per-epoch metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "evaluation"} <= artifacts


# A weaker model for the failing gate, trained in a fraction of the time: 20 photos per class, the warm-up
# only. It scores 0.91 on the 100 test photos, 9 wrong (the training is seeded): far from the 0.999 asked.
WEAK = ["--max-images-per-class", "20", "--eval-images-per-class", "50", "--finetune-epochs", "0"]


def test_gate_fails_names_accuracy_and_registers_nothing(env):
    before = registry(env)
    out = mlops("pipeline", "run", *WEAK, "--threshold", "0.999", env={**env, "ACCURACY_THRESHOLD": "0.999"})
    assert out.returncode != 0
    assert "below the threshold 0.9990" in out.stderr and "Test accuracy 0." in out.stderr
    assert "Traceback" not in out.stderr
    assert registry(env) == before


def test_offline_without_data_dir_fails_at_once(env, tmp_path):
    e = {k: v for k, v in env.items() if k != "DATA_DIR"}
    e["MLOPS_DATA_CACHE"] = str(tmp_path / "cache")
    e["CATDOG_ARCHIVE_URL"] = "http://127.0.0.1:9/cats_and_dogs_filtered.zip"  # nothing listens: offline
    out = mlops("pipeline", "run", env=e)
    assert out.returncode != 0
    assert "DATA_DIR" in out.stderr and "Traceback" not in out.stderr
    assert len([ln for ln in out.stderr.strip().splitlines() if ln.strip()]) <= 3
