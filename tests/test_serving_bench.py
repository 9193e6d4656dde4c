"""The serving benchmark runs end to end on a small budget and the eager baseline is the same network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from serving_bad_inputs import real_jpeg
from serving_fixtures import build_artifact, data_dir


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_artifact(tmp_path_factory.getbasetemp() / "serving-artifact")


def test_eager_pytorch_rebuilt_from_onnx_computes_the_same_logits(artifact: Path) -> None:
    import torch

    from bench.bench_serve import torch_from_onnx
    from serving.artifact import open_artifact
    from serving.predictor import Predictor
    from serving.preprocess import preprocess_bytes

    art = open_artifact(artifact.parent / "model")
    predictor = Predictor(art, model_file=art.reference_model_path)
    x = preprocess_bytes(real_jpeg(), predictor.prep)[None]
    model = torch_from_onnx(art.reference_model_path)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 52  # as trained
    with torch.inference_mode():
        eager = model(torch.from_numpy(x)).numpy()
    onnx_logits = predictor.session.run(None, {predictor.input_name: x})[0]
    assert np.abs(eager - onnx_logits).max() < 1e-3


def test_benchmark_writes_figures_floors_and_a_plot(artifact: Path, tmp_path: Path) -> None:
    from bench.bench_serve import FLOORS, main

    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    argv = [
        "--artifact",
        str(artifact),
        "--photos",
        str(data_dir()),
        "--compute-n",
        "20",
        "--c1-n",
        "10",
        "--seconds",
        "0.5",
        "--concurrency",
        "2",
        "--cold-runs",
        "1",
        "--out",
        str(out),
        "--plot",
        str(plot),
    ]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["end_to_end"]["target"] == "model-server"
    assert result["end_to_end"]["c1"]["errors"] == 0 and result["end_to_end"]["c8"]["rps"] > 0
    assert result["compute"]["speedup_x"] > 1  # ONNX Runtime beats eager PyTorch even on a busy machine
    assert 0 < result["cold_start"]["median_s"] < 30
    assert {f["name"] for f in result["floors"]} == set(FLOORS)
    assert plot.stat().st_size > 10_000
