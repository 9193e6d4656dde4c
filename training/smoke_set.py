"""The smoke set: a few labelled test photos the model classifies right, travelling with the model.

Evaluation (training/evaluate.py) writes it beside evaluation.json — `smoke/manifest.json` plus
`smoke/<label>/<photo>` — and records the manifest's SHA-256 in evaluation.json; the registration
names it (SageMaker: CustomerMetadataProperties, MLflow: tags). Promotion reads the candidate's own
set and refuses it when anything differs from what was registered. Stdlib only: the control plane
imports this module without torch, numpy or MLflow.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

SMOKE_DIR = "smoke"  # beside evaluation.json
MANIFEST = "manifest.json"
FORMAT = 1
PHOTOS_PER_CLASS = 5
MIN_CONFIDENCE = 0.9  # above the smoke tests' own 0.6: the served model must pass them with room to spare
MAX_PHOTO_BYTES = 1024 * 1024  # a small set: it is downloaded at every promotion
SUFFIXES = (".jpg", ".jpeg")  # the smoke tests send image/jpeg


class SmokeSetError(ValueError):
    """The smoke set is missing, incomplete or not the one that was registered (one-line message)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_smoke_set(out_dir: Path, picks: Iterable[tuple[Path, str, float]], model: dict) -> dict:
    """Copy the picked photos (path, label, confidence) under out_dir/smoke and write its manifest.

    Returns what evaluation.json records: {"path", "manifest_sha256", "photos", "labels"}."""
    root = out_dir / SMOKE_DIR
    shutil.rmtree(root, ignore_errors=True)
    photos = []
    for source, label, confidence in picks:
        data = source.read_bytes()
        rel = f"{label}/{source.name}"
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        photos.append({"file": rel, "label": label, "sha256": sha256_bytes(data), "confidence": round(confidence, 4)})
    manifest = {"format": FORMAT, "model": model, "min_confidence": MIN_CONFIDENCE, "photos": photos}
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).write_bytes(body)
    labels = sorted({p["label"] for p in photos})
    return {"path": SMOKE_DIR, "manifest_sha256": sha256_bytes(body), "photos": len(photos), "labels": labels}


def read_smoke_set(folder: Path, manifest_sha256: str, labels: tuple[str, ...]) -> list[tuple[Path, str]]:
    """The verified photos of a smoke set folder: (path, label), every label present.

    SmokeSetError when the manifest is missing or its SHA-256 is not the registered one, or when a
    photo is missing or altered."""
    if not manifest_sha256:
        raise SmokeSetError("the registry names no smoke set SHA-256 for this version")
    try:
        body = (folder / MANIFEST).read_bytes()
    except OSError:
        raise SmokeSetError(f"no {MANIFEST} in {folder}") from None
    if sha256_bytes(body) != manifest_sha256:
        raise SmokeSetError(f"{MANIFEST} in {folder} is not the registered one (SHA-256 differs)")
    try:
        entries = json.loads(body)["photos"]
        photos = [(str(e["file"]), str(e["label"]), str(e["sha256"])) for e in entries]
    except (ValueError, KeyError, TypeError):
        raise SmokeSetError(f"{MANIFEST} in {folder} is not a smoke set manifest") from None
    out: list[tuple[Path, str]] = []
    for rel, label, digest in photos:
        path = folder / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or label not in labels:
            raise SmokeSetError(f"{MANIFEST} in {folder} names {rel!r} ({label}), outside the set")
        try:
            data = path.read_bytes()
        except OSError:
            raise SmokeSetError(f"smoke photo {rel} is missing from {folder}") from None
        if sha256_bytes(data) != digest:
            raise SmokeSetError(f"smoke photo {rel} in {folder} was altered (SHA-256 differs from the manifest)")
        out.append((path, label))
    missing = [label for label in labels if not any(lab == label for _, lab in out)]
    if missing:
        raise SmokeSetError(f"the smoke set in {folder} has no {' or '.join(missing)} photo")
    return out
