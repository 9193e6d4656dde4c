"""The evaluation report: calibration error by hand, the most confidently wrong photos, the PNGs, MLflow logging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.metrics import calibration
from training.report import THUMB, confidently_wrong, contact_sheet, write_report

PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
TRUTH = np.array([0, 1, 1, 1])


def test_expected_calibration_error_by_hand() -> None:
    calib = calibration(PROBS, TRUTH)
    # confidences 0.9 (right), 0.8 (wrong), 0.7 (right), 0.55 (right), each alone in its bin
    assert calib["expected_calibration_error"] == pytest.approx((0.1 + 0.8 + 0.3 + 0.45) / 4)
    counts = [b["count"] for b in calib["bins"]]
    assert counts == [0, 0, 0, 0, 0, 1, 0, 1, 1, 1]
    assert calib["bins"][8] == {"low": 0.8, "high": 0.9, "count": 1, "confidence": 0.8, "accuracy": 0.0}


def test_a_calibrated_model_scores_zero_and_an_overconfident_one_does_not() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20_000)
    right = rng.uniform(size=confidence.size) < confidence  # right exactly as often as it claims
    probs = np.stack([confidence, 1 - confidence], axis=1)
    truth = np.where(right, 0, 1)
    assert calibration(probs, truth)["expected_calibration_error"] < 0.01
    sure = np.stack([np.full(confidence.size, 0.99), np.full(confidence.size, 0.01)], axis=1)
    assert calibration(sure, truth)["expected_calibration_error"] == pytest.approx(0.99 - right.mean(), abs=1e-9)
    with pytest.raises(ValueError):
        calibration(np.zeros((0, 2)), np.zeros(0))


def test_the_most_confidently_wrong_come_first_and_right_answers_never() -> None:
    samples = [(Path(f"/p/{i}.jpg"), int(t)) for i, t in enumerate([0, 1, 0, 1, 0])]
    probs = np.array([[0.2, 0.8], [0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    wrong = confidently_wrong(samples, probs, ["cat", "dog"])
    assert [w["path"] for w in wrong] == ["/p/1.jpg", "/p/0.jpg", "/p/3.jpg", "/p/4.jpg"]
    assert wrong[0] == {"path": "/p/1.jpg", "true": "dog", "predicted": "cat", "confidence": 0.95}
    assert len(confidently_wrong(samples, probs, ["cat", "dog"], limit=2)) == 2


def test_write_report_draws_both_pngs(tmp_path: Path, data_dir: Path) -> None:
    photos = (
        sorted((data_dir / "test" / "cat").glob("*.jpg"))[:3] + sorted((data_dir / "test" / "dog").glob("*.jpg"))[:3]
    )
    samples = [(p, 0 if p.parent.name == "cat" else 1) for p in photos]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9], [0.6, 0.4], [0.99, 0.01]])
    report = write_report(tmp_path, samples, probs, ["cat", "dog"])
    assert report["misclassified"] == 4
    assert [w["confidence"] for w in report["confidently_wrong"]] == [0.99, 0.8, 0.7, 0.6]
    with Image.open(tmp_path / report["contact_sheet"]) as sheet:
        assert sheet.format == "PNG" and sheet.size == (4 * THUMB, 1 * (THUMB + 30))
        # the first thumbnail is the photo, not the blank sheet
        assert np.asarray(sheet.convert("L"))[10 : THUMB - 10, 10 : THUMB - 10].std() > 5
    with Image.open(tmp_path / report["reliability_plot"]) as plot:
        assert plot.format == "PNG" and plot.size[0] > 300
    empty = tmp_path / "none.png"
    contact_sheet([], empty)
    assert Image.open(empty).size == (4 * THUMB, THUMB + 30)


@pytest.mark.slow
def test_evaluate_reports_and_logs_to_mlflow(tmp_path: Path, small_artifact: Path, data_dir: Path, monkeypatch) -> None:
    import mlflow

    from training import evaluate

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # before MLflow is used: restored afterwards
    client = mlflow.MlflowClient(uri)  # no global tracking URI: it would leak into later tests
    experiment = client.create_experiment("report", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    out = tmp_path / "evaluation"
    code = evaluate.main(
        [
            "--model",
            str(small_artifact),
            "--test",
            str(data_dir / "test"),
            "--output",
            str(out),
            "--max-images-per-class",
            "25",
        ]
    )
    assert code == 0
    doc = json.loads((out / "evaluation.json").read_text())
    ece = doc["metrics"]["expected_calibration_error"]["value"]
    assert 0 <= ece <= 1 and ece == doc["report"]["expected_calibration_error"]
    assert sum(b["count"] for b in doc["report"]["reliability_bins"]) == 50
    assert doc["report"]["misclassified"] == 50 - round(doc["metrics"]["accuracy"]["value"] * 50)
    assert set(doc["metrics"]["per_class"]) == {"cat", "dog"}
    run = mlflow.tracking.MlflowClient(uri).get_run(run_id)
    for label in ("cat", "dog"):
        assert run.data.metrics[f"test_precision_{label}"] == doc["metrics"]["per_class"][label]["precision"]
        assert run.data.metrics[f"test_recall_{label}"] == doc["metrics"]["per_class"][label]["recall"]
    assert run.data.metrics["test_ece"] == pytest.approx(ece)
    logged = {a.path for a in mlflow.tracking.MlflowClient(uri).list_artifacts(run_id, "evaluation")}
    assert {"evaluation/reliability.png", "evaluation/confidently_wrong.png"} <= logged


def test_the_pipeline_run_prints_where_the_report_is(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    import pipelines.local_runner as runner
    from mlops.cli import app

    report = {"expected_calibration_error": 0.0123, "reliability_plot": "reliability.png", "contact_sheet": "cw.png"}

    def fake_run(*args, **kwargs) -> runner.RunResult:
        evaluation = {"metrics": {"accuracy": {"value": 0.99}}, "report": report}
        return runner.RunResult("r1", 0.99, 0.9, "3", tmp_path / "m.tar.gz", evaluation, {}, tmp_path / "ev")

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(runner, "run_pipeline", fake_run)
    text = CliRunner().invoke(app, ["pipeline", "run", "--data-dir", str(data_dir)], env={"COLUMNS": "300"})
    assert text.exit_code == 0, text.output
    assert f"reliability plot: {tmp_path / 'ev' / 'reliability.png'}" in text.stdout
    assert f"contact sheet: {tmp_path / 'ev' / 'cw.png'}" in text.stdout
    doc = CliRunner().invoke(app, ["pipeline", "run", "--data-dir", str(data_dir), "--json"])
    summary = json.loads(doc.stdout)
    assert summary["expected_calibration_error"] == 0.0123
    assert summary["contact_sheet"] == str(tmp_path / "ev" / "cw.png")
