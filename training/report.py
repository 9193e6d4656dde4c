"""Evaluation report: per-class precision and recall, calibration with a reliability plot, and the most
confidently wrong photos on a contact sheet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from training.metrics import calibration

RELIABILITY_PNG = "reliability.png"
CONTACT_SHEET_PNG = "confidently_wrong.png"
WRONG_SHOWN = 16
THUMB = 160


def confidently_wrong(
    samples: list[tuple[Path, int]], probs: np.ndarray, labels: list[str], limit: int = WRONG_SHOWN
) -> list[dict]:
    """The misclassified photos, most confident first: path, true and predicted label, confidence."""
    predicted = probs.argmax(axis=1)
    wrong = [i for i, (_, truth) in enumerate(samples) if predicted[i] != truth]
    wrong.sort(key=lambda i: (-float(probs[i, predicted[i]]), str(samples[i][0])))
    return [
        {
            "path": str(samples[i][0]),
            "true": labels[samples[i][1]],
            "predicted": labels[int(predicted[i])],
            "confidence": float(probs[i, predicted[i]]),
        }
        for i in wrong[:limit]
    ]


def plot_reliability(calib: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = calib["bins"]
    width = bins[0]["high"] - bins[0]["low"]
    filled = [b for b in bins if b["count"]]
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6), dpi=100, height_ratios=(3, 1), sharex=True)
    ax.plot([0, 1], [0, 1], "--", color="0.5", label="perfect calibration")
    ax.bar(
        [b["low"] for b in filled],
        [b["accuracy"] for b in filled],
        width=width,
        align="edge",
        edgecolor="black",
        alpha=0.8,
        label="accuracy in bin",
    )
    ax.plot(
        [b["confidence"] for b in filled],
        [b["accuracy"] for b in filled],
        "o",
        color="crimson",
        label="mean confidence",
    )
    ax.set(ylabel="accuracy", ylim=(0, 1.02), title=f"reliability, ECE {calib['expected_calibration_error']:.4f}")
    ax.legend(loc="upper left", fontsize=8)
    hist.bar([b["low"] for b in bins], [b["count"] for b in bins], width=width, align="edge", edgecolor="black")
    hist.set(xlabel="confidence of the predicted class", ylabel="photos", xlim=(0, 1), yscale="log")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def contact_sheet(wrong: list[dict], path: Path, columns: int = 4) -> None:
    """A grid of thumbnails, each captioned with true → predicted and the confidence."""
    from PIL import Image, ImageDraw, ImageOps

    caption = 30
    rows = max(1, math.ceil(len(wrong) / columns))
    sheet = Image.new("RGB", (columns * THUMB, rows * (THUMB + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    if not wrong:
        draw.text((8, 8), "no misclassified photos", fill="black")
    for k, item in enumerate(wrong):
        x, y = (k % columns) * THUMB, (k // columns) * (THUMB + caption)
        try:
            with Image.open(item["path"]) as img:
                thumb = ImageOps.fit(img.convert("RGB"), (THUMB - 4, THUMB - 4))
            sheet.paste(thumb, (x + 2, y + 2))
        except OSError:
            draw.rectangle((x + 2, y + 2, x + THUMB - 2, y + THUMB - 2), outline="gray")
        draw.text((x + 4, y + THUMB + 2), f"{item['true']} -> {item['predicted']}", fill="black")
        draw.text((x + 4, y + THUMB + 15), f"{item['confidence']:.3f} {Path(item['path']).name[:16]}", fill="crimson")
    sheet.save(path)


def write_report(out: Path, samples: list[tuple[Path, int]], probs: np.ndarray, labels: list[str]) -> dict:
    """Calibration and the confidently wrong photos, with their PNGs written to `out` (paths relative to it)."""
    y_true = np.array([label for _, label in samples])
    calib = calibration(probs, y_true)
    wrong = confidently_wrong(samples, probs, labels)
    plot_reliability(calib, out / RELIABILITY_PNG)
    contact_sheet(wrong, out / CONTACT_SHEET_PNG)
    return {
        "expected_calibration_error": calib["expected_calibration_error"],
        "reliability_bins": calib["bins"],
        "confidently_wrong": wrong,
        "misclassified": int((probs.argmax(axis=1) != y_true).sum()),
        "reliability_plot": RELIABILITY_PNG,
        "contact_sheet": CONTACT_SHEET_PNG,
    }
