"""Evaluation maths, the JSONPath the gate reads, the gate both ways and its floor."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.local_runner import PipelineFailed, gate, json_path
from pipelines.settings import THRESHOLD_FLOOR, gate_threshold
from training.metrics import model_quality


def test_model_quality_numbers():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0])
    report = model_quality(y_true, y_pred, ["cat", "dog"])
    m = report["metrics"]
    assert m["accuracy"]["value"] == pytest.approx(0.7)
    assert m["confusion_matrix"] == {"cat": {"cat": 3, "dog": 1}, "dog": {"cat": 2, "dog": 4}}
    assert m["per_class"]["cat"]["precision"] == pytest.approx(3 / 5)
    assert m["per_class"]["cat"]["recall"] == pytest.approx(3 / 4)
    assert m["per_class"]["dog"]["precision"] == pytest.approx(4 / 5)
    assert m["per_class"]["dog"]["recall"] == pytest.approx(4 / 6)
    f1_dog = 2 * (0.8 * 4 / 6) / (0.8 + 4 / 6)
    assert m["per_class"]["dog"]["f1"] == pytest.approx(f1_dog)
    assert report["binary_classification_metrics"]["f1"]["value"] == pytest.approx(f1_dog)
    assert m["test_images"] == 10


def test_empty_predictions_refused():
    with pytest.raises(ValueError):
        model_quality(np.array([]), np.array([]), ["cat", "dog"])


def test_json_path_and_gate_both_ways():
    evaluation = {"metrics": {"accuracy": {"value": 0.93}}}
    assert json_path(evaluation, "metrics.accuracy.value") == 0.93
    assert gate(evaluation, 0.90) == 0.93
    assert gate(evaluation, 0.93) == 0.93  # >= : equal passes
    with pytest.raises(PipelineFailed, match=r"0\.9300 is below the threshold 0\.9500"):
        gate(evaluation, 0.95)


def test_the_gate_never_applies_a_threshold_below_the_floor():
    evaluation = {"metrics": {"accuracy": {"value": 0.85}}}
    for lowered in (0.0, 0.5, 0.8499, float("nan")):
        with pytest.raises(PipelineFailed, match=r"0\.8500 is below the threshold 0\.9000"):
            gate(evaluation, lowered)
    assert gate({"metrics": {"accuracy": {"value": 0.90}}}, 0.0) == 0.90  # the floor itself passes


def test_gate_threshold_raises_a_low_request_with_one_line_notice():
    assert gate_threshold(None) == (0.90, "")
    assert gate_threshold(0.95) == (0.95, "")
    assert gate_threshold(0.90) == (0.90, "")
    value, notice = gate_threshold(0.0)
    assert value == THRESHOLD_FLOOR == 0.90
    assert (
        notice == "notice: accuracy threshold 0 raised to the 0.90 floor (a caller may raise the gate, never lower it)"
    )
