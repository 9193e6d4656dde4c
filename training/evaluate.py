"""Score the serving artifact on the held-out test photos: the SageMaker processing-job entry point.

Contract (same in a SageMaker processing job and locally):
  --model   /opt/ml/processing/model        model.tar.gz (or an unpacked model folder)
  --test    /opt/ml/processing/test         test/{cat,dog} photos (or {cat,dog} directly)
  --data-manifest /opt/ml/processing/manifest/manifest.json
                                            the data set's manifest (training/data_manifest.py): the test
                                            photos must match it, and the model must have been trained on
                                            it; evaluation.json records its SHA-256 under `data`
  --output  /opt/ml/processing/evaluation   evaluation.json + confusion_matrix.png written here, and the
                                            smoke set (smoke/: photos + manifest, training/smoke_set.py)
                                            reliability.png + confidently_wrong.png (training/report.py)

The model is run exactly as the endpoint runs it: ONNX Runtime on the serving model, with the
serving preprocessing. With REGISTRATION_SIGNING_KEY set (the pipeline's Evaluate step), the hashes the
Register step records are signed with that KMS key as the job's role (training/attestation.py), and the
signature is written under `attestation`; MODEL_PACKAGE_GROUP and GIT_SHA are the values it registers with.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from serving.artifact import ArtifactError, open_artifact
from serving.predictor import Predictor
from serving.preprocess import ImageDecodeError, preprocess_bytes
from training import attestation, tracking
from training.data_manifest import DataManifestError, verify_split
from training.metrics import model_quality
from training.photos import DataUnavailableError, list_images, subsample
from training.report import write_report
from training.smoke_set import MAX_PHOTO_BYTES, MIN_CONFIDENCE, PHOTOS_PER_CLASS, SUFFIXES, write_smoke_set

EVALUATION_FILE = "evaluation.json"
CONFUSION_PNG = "confusion_matrix.png"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="/opt/ml/processing/model")
    p.add_argument("--test", default="/opt/ml/processing/test")
    p.add_argument("--data-manifest", default="", help="the data set's manifest.json (empty: no check)")
    p.add_argument("--output", default="/opt/ml/processing/evaluation")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-images-per-class", type=int, default=0, help="0 = every test photo")
    p.add_argument("--smoke-photos-per-class", type=int, default=PHOTOS_PER_CLASS, help="Smoke set size per class")
    return p.parse_args(argv)


def predict_folder(predictor: Predictor, samples: list[tuple[Path, int]], batch_size: int) -> np.ndarray:
    """[N, num_classes] probabilities, as the endpoint computes them."""
    probs = []
    for start in tqdm(range(0, len(samples), batch_size), desc="evaluate", unit="batch"):
        batch = []
        for path, _ in samples[start : start + batch_size]:
            try:
                batch.append(preprocess_bytes(path.read_bytes(), predictor.prep))
            except ImageDecodeError as exc:
                raise DataUnavailableError(f"unreadable test photo {path}: {exc}") from exc
        probs.append(predictor.probabilities(np.stack(batch)))
    return np.concatenate(probs)


def smoke_picks(
    samples: list[tuple[Path, int]], probs: np.ndarray, labels: list[str], per_class: int
) -> list[tuple[Path, str, float]]:
    """Up to per_class JPEG photos of each label that the model classifies right with confidence."""
    picks: list[tuple[Path, str, float]] = []
    taken = dict.fromkeys(range(len(labels)), 0)
    for (path, truth), p in zip(samples, probs, strict=True):
        confident = int(p.argmax()) == truth and float(p[truth]) >= MIN_CONFIDENCE
        small = path.suffix.lower() in SUFFIXES and path.stat().st_size <= MAX_PHOTO_BYTES
        if confident and small and taken[truth] < per_class:
            picks.append((path, labels[truth], float(p[truth])))
            taken[truth] += 1
    return picks


def plot_confusion(matrix: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(matrix)
    cm = np.array([[matrix[t][p] for p in labels] for t in labels])
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(cm, cmap="Blues")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black"
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def check_data(args: argparse.Namespace, test_root: Path) -> dict:
    """The test photos against the data manifest, before anything else; what evaluation.json records
    under `data` ({} without a manifest)."""
    if not args.data_manifest:
        return {}
    return {"manifest_sha256": verify_split(Path(args.data_manifest), "test", test_root)}


def check_trained_on(data: dict, metadata: dict) -> None:
    """The model must have been trained on the same data set (a manifest replaced mid-run differs)."""
    trained_on, sha = metadata.get("data_manifest_sha256"), data.get("manifest_sha256")
    if sha and trained_on and trained_on != sha:
        raise DataManifestError(
            f"the model was trained on data manifest {trained_on[:12]}, the test photos belong to {sha[:12]}: "
            "the photos were uploaded again during the pipeline run; run it again"
        )


def attest(report: dict) -> dict:
    """{"signature", "key"} over what the Register step will record, signed by REGISTRATION_SIGNING_KEY (KMS);
    {} without one (a local run: the local registry signs at registration)."""
    key = os.environ.get("REGISTRATION_SIGNING_KEY", "")
    if not key:
        return {}
    import boto3

    body = attestation.message(
        os.environ.get("MODEL_PACKAGE_GROUP", ""),
        report["model"]["sha256"],
        report["smoke_set"]["manifest_sha256"],
        report.get("data", {}).get("manifest_sha256", ""),
        os.environ.get("GIT_SHA", ""),
    )
    try:
        return {"signature": attestation.sign_with_kms(boto3.client("kms"), key, body), "key": key}
    except Exception as exc:  # botocore's errors: no credentials, AccessDenied, no such key
        raise attestation.AttestationError(f"signing the registration with {key}: {exc}") from None


def evaluate(args: argparse.Namespace) -> dict:
    test_root = Path(args.test) / "test" if (Path(args.test) / "test").is_dir() else Path(args.test)
    data = check_data(args, test_root)
    model_path = Path(args.model)
    if model_path.is_dir() and (model_path / "model.tar.gz").is_file():
        model_path = model_path / "model.tar.gz"
    artifact = open_artifact(model_path)
    check_trained_on(data, artifact.metadata)
    predictor = Predictor(artifact)
    samples = subsample(list_images(test_root, tuple(artifact.labels)), args.max_images_per_class, seed=0)
    probs = predict_folder(predictor, samples, args.batch_size)
    y_pred = probs.argmax(axis=1)
    y_true = np.array([label for _, label in samples])
    report = model_quality(y_true, y_pred, artifact.labels)
    report["model"] = {k: artifact.metadata.get(k) for k in ("version", "serving_model", "git_sha", "input_size")}
    # The registry records the training run (SageMaker requires a non-empty value: "untracked" without MLflow).
    report["model"]["mlflow_run_id"] = artifact.metadata.get("mlflow_run_id") or "untracked"
    # What was scored, by content (serving.artifact): the registry records it, promotion and the model server
    # refuse an artifact that differs (the pipeline's Register step reads model.sha256).
    report["model"]["sha256"] = artifact.content_sha256()
    if data:  # the registered version records it (the pipeline's Register step reads data.manifest_sha256)
        report["data"] = data
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    picks = smoke_picks(samples, probs, list(artifact.labels), args.smoke_photos_per_class)
    report["smoke_set"] = write_smoke_set(out, picks, report["model"])
    report["report"] = write_report(out, samples, probs, list(artifact.labels))
    report["metrics"]["expected_calibration_error"] = {"value": report["report"]["expected_calibration_error"]}
    signed = attest(report)
    if signed:  # the pipeline's Register step reads attestation.signature
        report["attestation"] = signed
    (out / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n")
    accuracy = report["metrics"]["accuracy"]["value"]
    plot_confusion(report["metrics"]["confusion_matrix"], out / CONFUSION_PNG, f"test accuracy {accuracy:.4f}")
    run = tracking.active_run()
    run.log_metrics({"test_accuracy": accuracy, "test_f1": report["metrics"]["f1"]["value"]})
    per_class = report["metrics"]["per_class"]
    run.log_metrics({f"test_{k}_{label}": v[k] for label, v in per_class.items() for k in ("precision", "recall")})
    run.log_metrics({"test_ece": report["metrics"]["expected_calibration_error"]["value"]})
    for name in (report["report"]["reliability_plot"], report["report"]["contact_sheet"]):
        run.log_artifact(out / name, "evaluation")
    run.log_artifact(out / EVALUATION_FILE, "evaluation")
    run.log_artifact(out / CONFUSION_PNG, "evaluation")
    return report


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    try:
        with tracking.run_context():
            report = evaluate(args)
    except (ArtifactError, DataUnavailableError, DataManifestError, attestation.AttestationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = report["metrics"]
    print(json.dumps({"accuracy": m["accuracy"]["value"], "test_images": m["test_images"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
