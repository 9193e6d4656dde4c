"""The data set's manifest: every training and test photo by relative path, with its SHA-256 and size.

`mlops data upload` writes it beside the photos on S3 (`<data location>/manifest.json`), after every
photo; the Train and Evaluate steps (on SageMaker and in the local runner) check the photos they read
against it, and the registered version records the manifest's SHA-256 (`data_manifest_sha256`).
Layout: <root>/{train,test}/{cat,dog}/<photo>. Stdlib only: the control plane imports it without torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import NamedTuple

MANIFEST = "manifest.json"
FORMAT = 1
SPLITS = ("train", "test")
LABELS: tuple[str, ...] = ("cat", "dog")
# What the training code reads as a photo (torchvision's IMG_EXTENSIONS); other files are left out.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
UPLOAD_HINT = "upload the photos again with `mlops data upload`"


class DataManifestError(ValueError):
    """The folder or the photos do not match the expected layout or the manifest (one-line message)."""


class Photo(NamedTuple):
    sha256: str
    size: int


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_photos(split_root: Path, labels: tuple[str, ...] = LABELS) -> dict[str, Path]:
    """'<label>/<name>' -> path for every photo under split_root/<label>/ (sorted, symlinks followed)."""
    found: dict[str, Path] = {}
    for label in labels:
        folder = split_root / label
        if not folder.is_dir():
            raise DataManifestError(f"missing folder {folder} (expected {'/, '.join(labels)}/ under {split_root})")
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not photos:
            raise DataManifestError(f"no photos in {folder} ({', '.join(IMAGE_SUFFIXES)})")
        found.update((f"{label}/{p.name}", p) for p in photos)
    return found


def layout_photos(root: Path) -> dict[str, Path]:
    """'<split>/<label>/<name>' -> path for the whole data set; DataManifestError naming the first problem."""
    if not root.is_dir():
        raise DataManifestError(f"{root} is not a folder (expected train/{{cat,dog}} and test/{{cat,dog}} in it)")
    return {f"{split}/{rel}": path for split in SPLITS for rel, path in split_photos(root / split).items()}


def hash_file(path: Path) -> Photo:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return Photo(digest.hexdigest(), size)


def build_manifest(files: Mapping[str, Path], workers: int = 8) -> dict[str, Photo]:
    """Relative path -> Photo for every file (hashed in parallel: reading is most of the work)."""
    names = sorted(files)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return dict(zip(names, pool.map(lambda name: hash_file(files[name]), names), strict=True))


def manifest_bytes(photos: Mapping[str, Photo]) -> bytes:
    """The manifest's canonical bytes: the same photos give the same bytes, hence the same SHA-256."""
    body = {
        "format": FORMAT,
        "photos": {rel: {"sha256": p.sha256, "size": p.size} for rel, p in sorted(photos.items())},
    }
    return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()


def parse_manifest(body: bytes, where: str) -> dict[str, Photo]:
    """The photos a manifest lists; DataManifestError when it is not a data manifest."""
    try:
        doc = json.loads(body)
        if doc.get("format") != FORMAT:
            raise ValueError
        photos = {str(rel): Photo(str(e["sha256"]), int(e["size"])) for rel, e in doc["photos"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DataManifestError(f"{where} is not a data manifest (format {FORMAT}): {UPLOAD_HINT}") from None
    for rel in photos:
        parts = PurePosixPath(rel).parts
        if len(parts) != 3 or parts[0] not in SPLITS or ".." in parts or rel.startswith("/"):
            raise DataManifestError(f"{where} names {rel!r}, outside <split>/<label>/<photo>: {UPLOAD_HINT}")
    return photos


def verify_split(manifest_path: Path, split: str, split_root: Path, labels: tuple[str, ...] = LABELS) -> str:
    """Check the photos under split_root (<label>/<photo>, what a step reads) against the manifest's entries
    of `split`: the same photos, none missing or extra, each with the manifest's SHA-256 and size.

    Returns the manifest's SHA-256; DataManifestError naming the first difference."""
    try:
        body = manifest_path.read_bytes()
    except OSError:
        raise DataManifestError(f"no data manifest at {manifest_path}: {UPLOAD_HINT}") from None
    prefix = f"{split}/"
    listed = parse_manifest(body, str(manifest_path))
    expected = {rel.removeprefix(prefix): p for rel, p in listed.items() if rel.startswith(prefix)}
    present = split_photos(split_root, labels)
    missing = sorted(set(expected) - set(present))
    extra = sorted(set(present) - set(expected))
    if missing:
        raise DataManifestError(
            f"{len(missing)} {split} photo(s) of the data manifest are missing from {split_root}, "
            f"e.g. {split}/{missing[0]}: {UPLOAD_HINT}"
        )
    if extra:
        raise DataManifestError(
            f"{len(extra)} {split} photo(s) in {split_root} are not in the data manifest, e.g. {split}/{extra[0]}: "
            f"{UPLOAD_HINT}"
        )
    actual = build_manifest(present)
    for rel in sorted(present):
        if actual[rel] != expected[rel]:
            raise DataManifestError(
                f"{split}/{rel} differs from the data manifest (SHA-256 or size): the photos changed since the "
                f"manifest was written; {UPLOAD_HINT}"
            )
    return sha256_bytes(body)
