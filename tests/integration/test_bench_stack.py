"""make bench's hand-over from bench-train to bench-serve, and the earlier input size's model copy."""

from __future__ import annotations

import json
from pathlib import Path

from bench.bench_stack import trained_home
from bench.resolution import resize_for, resized_copy


def test_bench_serve_finds_the_model_bench_train_kept(tmp_path: Path) -> None:
    home = tmp_path / "bench-home"
    home.mkdir()
    train_json = tmp_path / "bench-train.json"
    assert trained_home(train_json) is None  # no bench-train run yet
    train_json.write_text(json.dumps({"state_dir": str(home), "registered_version": 3}))
    assert trained_home(train_json) is None  # its state folder holds no registry
    (home / "mlflow.db").write_bytes(b"")
    assert trained_home(train_json) == (home, "3")
    train_json.write_text("{not json")
    assert trained_home(train_json) is None


def test_the_earlier_size_copy_changes_only_the_preprocessing(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    meta = {"input_size": 224, "resize_size": 256, "version": "7", "labels": ["dog", "cat"]}
    (model / "metadata.json").write_text(json.dumps(meta))
    (model / "model.int8.onnx").write_bytes(b"weights")
    copy = resized_copy(model, 160, tmp_path / "160px")
    got = json.loads((copy / "metadata.json").read_text())
    assert (got["input_size"], got["resize_size"], got["version"]) == (160, 183, "7-160px")
    assert got["labels"] == meta["labels"] and (copy / "model.int8.onnx").read_bytes() == b"weights"
    assert json.loads((model / "metadata.json").read_text()) == meta  # the original is untouched
    assert resize_for(224) == 256  # the rule training/train.py applies
