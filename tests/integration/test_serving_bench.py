"""The serving benchmark runs end to end on a small budget and the eager baseline is the same network."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from serving_bad_inputs import real_jpeg
from serving_fixtures import data_dir, shared_artifact


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_artifact(tmp_path_factory)


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


def test_benchmark_writes_figures_floors_and_a_plot(
    artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.bench_serve import FLOORS, main

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "no-stack"))  # a stack the user has up is not the target

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
        "--resolution-n",
        "5",
        "--earlier-px",
        "96",
        "--out",
        str(out),
        "--plot",
        str(plot),
    ]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["end_to_end"]["target"] == "model-server"
    assert result["end_to_end"]["c1"]["errors"] == 0 and result["end_to_end"]["c8"]["rps"] > 0
    cpu = result["end_to_end"]["c8"]["cpu"]
    assert set(cpu["ms_per_request"]) == {"load_client", "model_server"}  # the server the benchmark started
    assert cpu["ms_per_request"]["model_server"] > 0 and cpu["ceiling_rps"] > 0
    assert result["compute"]["speedup_x"] > 1  # ONNX Runtime beats eager PyTorch even on a busy machine
    assert 0 < result["cold_start"]["median_s"] < 30
    assert {f["name"] for f in result["floors"]} == set(FLOORS)
    sizes = result["resolution"]  # the model's input size beside a smaller one, the same network at both
    assert (sizes["chosen_px"], sizes["earlier_px"], set(sizes["compute_one_thread"])) == (128, 96, {"128px", "96px"})
    assert all(v["n"] >= 5 and v["p50_ms"] > 0 for v in sizes["model_server_c1"].values())
    assert sizes["compute_ratio_p50"] > 0 and sizes["model_server_ratio_p50"] > 0
    assert plot.stat().st_size > 10_000


def _settled(pid: int) -> float:
    """The CPU seconds of a process once they stop growing (its start-up is over)."""
    from bench.cpu_meter import process_cpu_seconds

    last, deadline = -1.0, time.monotonic() + 20
    while time.monotonic() < deadline:
        now = process_cpu_seconds(pid) or 0.0
        if now == last:
            return now
        last = now
        time.sleep(0.3)
    raise AssertionError(f"process {pid} kept using CPU")


def test_cpu_meter_charges_each_process_its_own_cpu_time() -> None:
    import subprocess
    import sys

    from bench.cpu_meter import CLIENT, CpuMeter

    spin = "import sys, time\nsys.stdin.readline()\nt = time.process_time()\n"
    spin += "while time.process_time() - t < 0.6: pass\n"
    busy = subprocess.Popen([sys.executable, "-c", spin + "time.sleep(30)"], stdin=subprocess.PIPE)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for proc in (busy, idle):
            _settled(proc.pid)
        meter = CpuMeter({"busy": busy.pid, "idle": idle.pid, "gone": 2**22 + 12345})
        assert set(meter.pids) == {"busy", "idle"}  # a process that does not exist is left out
        meter.start()
        busy.stdin.write(b"go\n")  # type: ignore[union-attr]
        busy.stdin.flush()  # type: ignore[union-attr]
        assert _settled(busy.pid) >= 0.6
        out = meter.per_request(10, cpus=2)
    finally:
        busy.kill()
        idle.kill()
    per = out["ms_per_request"]
    assert set(per) == {"busy", "idle", CLIENT}
    assert 55 <= per["busy"] <= 75  # 0.6 s of CPU over 10 requests (clock ticks of 10 ms)
    assert per["idle"] <= 1
    assert out["total_ms"] == round(sum(per.values()), 2)
    assert out["ceiling_rps"] == round(2 * 1e3 / out["total_ms"], 1)
