"""Classification metrics in SageMaker's model-quality shape (numpy only)."""

from __future__ import annotations

import math

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """cm[i, j] = photos of true class i predicted as class j."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true.astype(int), y_pred.astype(int)), 1)
    return cm


def model_quality(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix.

    `binary_classification_metrics` follows SageMaker Model Monitor's model-quality schema
    (the positive class is labels[1]); `metrics` is the same numbers keyed for the pipeline's
    JSONPath (`metrics.accuracy.value`).
    """
    if len(y_true) == 0:
        raise ValueError("no predictions to score")
    cm = confusion(y_true, y_pred, len(labels))
    total = int(cm.sum())
    accuracy = float(np.trace(cm) / total)
    per_class = {}
    for i, label in enumerate(labels):
        tp, fp, fn = cm[i, i], cm[:, i].sum() - cm[i, i], cm[i, :].sum() - cm[i, i]
        precision = float(tp / (tp + fp)) if tp + fp else 0.0
        recall = float(tp / (tp + fn)) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": int(cm[i, :].sum())}
    matrix = {t: {p: int(cm[i, j]) for j, p in enumerate(labels)} for i, t in enumerate(labels)}
    std = math.sqrt(accuracy * (1 - accuracy) / total)
    pos = per_class[labels[-1]]
    macro = {k: float(np.mean([c[k] for c in per_class.values()])) for k in ("precision", "recall", "f1")}
    return {
        "metrics": {
            "accuracy": {"value": accuracy, "standard_deviation": std},
            "precision": {"value": macro["precision"]},
            "recall": {"value": macro["recall"]},
            "f1": {"value": macro["f1"]},
            "per_class": per_class,
            "confusion_matrix": matrix,
            "test_images": total,
        },
        "binary_classification_metrics": {
            "confusion_matrix": matrix,
            "accuracy": {"value": accuracy, "standard_deviation": std},
            "precision": {"value": pos["precision"], "standard_deviation": 0.0},
            "recall": {"value": pos["recall"], "standard_deviation": 0.0},
            "f1": {"value": pos["f1"], "standard_deviation": 0.0},
        },
    }


def calibration(probs: np.ndarray, y_true: np.ndarray, bins: int = 10) -> dict:
    """Expected calibration error of the top-class confidence, and the reliability diagram's bins.

    Confidences fall into `bins` equal-width bins over [0, 1] (a confidence of exactly 1 goes in the
    last); ECE = sum over bins of (share of photos in the bin) x |accuracy - mean confidence|.
    """
    if len(y_true) == 0:
        raise ValueError("no predictions to calibrate")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true.astype(int)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        row = {"low": b / bins, "high": (b + 1) / bins, "count": n, "confidence": None, "accuracy": None}
        if n:
            row["confidence"] = float(confidence[mask].mean())
            row["accuracy"] = float(correct[mask].mean())
            ece += n / len(y_true) * abs(row["accuracy"] - row["confidence"])
        table.append(row)
    return {"expected_calibration_error": float(ece), "bins": table}
