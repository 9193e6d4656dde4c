"""The photos on disk: locate (or download) the data set, list a split, split or subsample it with a seed.

Free of torch, so the evaluation step and the control plane read photos without loading the training stack.
Layout is torchvision ImageFolder: <root>/train/{cat,dog}/*.jpg and <root>/test/{cat,dog}/*.jpg.
`train/` is split into train and validation with a fixed seed; `test/` is for evaluation only.
"""

from __future__ import annotations

import os
import random
import shutil
import urllib.request
import zipfile
from pathlib import Path

from training.data_manifest import IMAGE_SUFFIXES

# A public cats-vs-dogs archive (2,000 train + 1,000 validation photos), used when DATA_DIR is unset.
PUBLIC_ARCHIVE_URL = os.environ.get(
    "CATDOG_ARCHIVE_URL", "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
)
CACHE_DIR = Path(os.environ.get("MLOPS_DATA_CACHE", Path.home() / ".cache" / "catdog-mlops"))


class DataUnavailableError(RuntimeError):
    """No data set is configured and none could be downloaded."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None, timeout: float = 5.0) -> Path:
    """DATA_DIR (argument or env), else a cached or freshly downloaded public archive."""
    chosen = data_dir or os.environ.get("DATA_DIR")
    if chosen:
        root = Path(chosen)
        if not (root / "train").is_dir():
            raise DataUnavailableError(f"DATA_DIR={root} has no train/ folder (expected train/{{cat,dog}})")
        return root
    cached = CACHE_DIR / "cats_and_dogs_filtered"
    if (cached / "train").is_dir() and (cached / "test").is_dir():
        return cached
    return _download_public_archive(cached, timeout)


def _download_public_archive(dest: Path, timeout: float) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    zpath = dest.parent / "cats_and_dogs_filtered.zip"
    try:
        if not PUBLIC_ARCHIVE_URL.startswith(("https://", "http://")):
            raise OSError(f"refusing archive URL {PUBLIC_ARCHIVE_URL!r}: http(s) only")
        with urllib.request.urlopen(PUBLIC_ARCHIVE_URL, timeout=timeout) as resp, open(zpath, "wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out)
    except OSError as exc:
        zpath.unlink(missing_ok=True)
        raise DataUnavailableError(
            f"DATA_DIR is not set and the public cats-vs-dogs archive cannot be downloaded ({exc.__class__.__name__}); "
            "set DATA_DIR to a folder with train/{cat,dog} and test/{cat,dog}"
        ) from exc
    tmp = dest.parent / "extract.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(tmp)
    src = tmp / "cats_and_dogs_filtered"
    for split_src, split_dst in (("train", "train"), ("validation", "test")):
        for plural, label in (("cats", "cat"), ("dogs", "dog")):
            (dest / split_dst).mkdir(parents=True, exist_ok=True)
            shutil.move(str(src / split_src / plural), str(dest / split_dst / label))
    shutil.rmtree(tmp, ignore_errors=True)
    zpath.unlink(missing_ok=True)
    return dest


def list_images(split_dir: Path, labels: tuple[str, ...]) -> list[tuple[Path, int]]:
    """(path, class index) for every image under split_dir/<label>/, sorted for determinism."""
    samples: list[tuple[Path, int]] = []
    for index, label in enumerate(labels):
        folder = split_dir / label
        if not folder.is_dir():
            raise DataUnavailableError(f"missing class folder {folder}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        samples.extend((p, index) for p in files)
    if not samples:
        raise DataUnavailableError(f"no images under {split_dir}")
    return samples


def split_train_val(
    samples: list[tuple[Path, int]], val_fraction: float, seed: int, max_per_class: int = 0
) -> tuple[list, list]:
    """Stratified, seeded split; max_per_class > 0 keeps a small slice (quick runs, tests)."""
    rng = random.Random(seed)
    train, val = [], []
    for cls in sorted({c for _, c in samples}):
        items = [s for s in samples if s[1] == cls]
        rng.shuffle(items)
        if max_per_class:
            items = items[:max_per_class]
        n_val = max(1, round(len(items) * val_fraction))
        val.extend(items[:n_val])
        train.extend(items[n_val:])
    return train, val


def subsample(samples: list[tuple[Path, int]], max_per_class: int, seed: int) -> list[tuple[Path, int]]:
    """At most max_per_class samples per class, chosen with a fixed seed (0 keeps all)."""
    if not max_per_class:
        return samples
    rng = random.Random(seed)
    out = []
    for cls in sorted({c for _, c in samples}):
        items = [s for s in samples if s[1] == cls]
        rng.shuffle(items)
        out.extend(items[:max_per_class])
    return out
