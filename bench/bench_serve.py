"""Serving benchmark: model compute vs eager PyTorch, end-to-end latency and throughput, cold start."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bench.bench_stack import trained_home, trained_stack
from bench.cpu_meter import CpuMeter
from bench.resolution import EARLIER_SIZE, compare
from bench.serve_load import bench_http, cold_start, free_port, machine, pct, request_id_run, start_server, wait_ready
from bench.serve_plot import plot
from bench.serve_report import report

REPO = Path(__file__).resolve().parents[1]
FLOORS = {  # name: (limit, "max" or "min")
    "compute_speedup_x": (8.0, "min"),
    "c1_p50_ms": (10.0, "max"),
    "c1_p95_ms": (20.0, "max"),
    "c8_rps": (150.0, "min"),
    "c8_errors": (0, "max"),
    "cold_start_s": (1.5, "max"),
    "id_run_errors": (0, "max"),  # the request-id run: failures plus answers carrying another request's id
}


def interleaved(fns: dict, n: int, block_s: float = 0.3, pause_s: float = 0.01, warmup_s: float = 1.0) -> dict:
    """Seconds per call of each function, in alternating blocks so that load drifts hit all alike.

    Blocks last the same time (not the same number of calls), so a fast function is not measured
    in short bursts that a virtual CPU, clocked down while idle, runs slower. A short pause after
    each block lets thread pools that spin after work (OpenMP, ONNX Runtime) go idle before the
    next function runs.
    """
    for fn in fns.values():
        until = time.perf_counter() + warmup_s
        while time.perf_counter() < until:
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    while min(len(v) for v in out.values()) < n:
        for name, fn in fns.items():
            time.sleep(pause_s)
            until = time.perf_counter() + block_s
            while time.perf_counter() < until:
                t = time.perf_counter()
                fn()
                out[name].append(time.perf_counter() - t)
    return out


def torch_from_onnx(onnx_path: Path):
    """torchvision MobileNetV2 computing what the ONNX model computes, layer for layer as trained.

    The export folded each batch norm into its convolution; the folded weights go into the
    convolutions and every BatchNorm2d stays in place as an identity transform, so eager PyTorch
    runs the same layers as the training code's network.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from torchvision.models import mobilenet_v2

    graph = onnx.load(str(onnx_path)).graph
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    model = mobilenet_v2(num_classes=int(weights[gemm.input[1]].shape[0]))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    onnx_convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == len(onnx_convs), (len(convs), len(onnx_convs))
    for conv, node in zip(convs, onnx_convs, strict=True):
        conv.weight.data = weights[node.input[1]]
        conv.bias = torch.nn.Parameter(weights[node.input[2]])
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.weight.data.fill_(1.0)
        bn.bias.data.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
    model.classifier[1].weight.data = weights[gemm.input[1]]
    model.classifier[1].bias.data = weights[gemm.input[2]]
    return model.eval()


def bench_compute(artifact_path: str, photo: bytes, n: int) -> dict:
    """(a) batch-1 compute on the preprocessed tensor: the server's ORT sessions vs eager PyTorch."""
    import torch

    from serving.engine import ModelEngine
    from serving.preprocess import preprocess_bytes

    engine = ModelEngine.load(artifact_path)
    x = preprocess_bytes(photo, engine.prep)
    model = torch_from_onnx(engine.artifact.reference_model_path)
    xt = torch.from_numpy(x[None])
    with torch.inference_mode():
        reference = make_reference(engine)(x[None])
        diff = float(np.abs(model(xt).numpy() - reference).max())
        times = interleaved(
            {
                "ort_serving": lambda: engine.probabilities(x),
                "ort_one_thread": lambda: engine.shared.run(None, {engine.input_name: x[None]}),
                "torch_eager": lambda: model(xt),
            },
            n,
        )
    stats = {name: pct(v) for name, v in times.items()}
    return {
        "serving_model": engine.artifact.serving_model_path.name,
        **stats,
        "ort_threads": engine.solo.get_session_options().intra_op_num_threads,
        "torch_threads": torch.get_num_threads(),
        "torch_vs_onnx_max_abs_diff": diff,
        "speedup_x": round(stats["torch_eager"]["p50_ms"] / stats["ort_serving"]["p50_ms"], 2),
        "preprocess": pct(interleaved({"p": lambda: preprocess_bytes(photo, engine.prep)}, n)["p"]),
    }


def make_reference(engine):
    """The fp32 reference model's logits function (what the eager network must reproduce)."""
    from serving.predictor import make_session

    session = make_session(engine.artifact.reference_model_path, 1, 0)
    return lambda batch: session.run(None, {engine.input_name: batch})[0]


def verdicts(figures: dict) -> list[dict]:
    out = []
    for name, (limit, kind) in FLOORS.items():
        value = figures.get(name)
        ok = None if value is None else (value >= limit if kind == "min" else value <= limit)
        out.append({"name": name, "value": value, "floor": f"{'>=' if kind == 'min' else '<='} {limit}", "pass": ok})
    return out


def local_stack() -> tuple[str | None, str | None, dict[str, int]]:
    """(live model artifact, API URL, pids of the API front, live function and model server) of `mlops up`."""
    from mlops.config import REPO_ROOT

    home = Path(os.environ.get("MLOPS_HOME") or REPO_ROOT / ".mlops")
    if not (home / "mlflow.db").is_file():  # no state there: nothing to serve, and none to create
        return None, None, {}
    try:
        from mlops.backends.local import LocalBackend, artifact_path

        backend = LocalBackend()
        state = backend.state.read()
        config = state["endpoint"].get("config", "")
        live = state["endpoint_configs"].get(config, {})
        artifact = live.get("artifact")
        if not artifact and (versions := backend.list_versions()):
            artifact = str(artifact_path(versions[-1].artifact_uri))
        procs = backend.processes()
        api = backend.api_url() if procs["api_front"]["alive"] else None
        function = procs["functions"].get(state["alias"].get("live", ""), {})
        pids = {
            "api_front": procs["api_front"].get("pid"),
            "function": function.get("pid"),
            "model_server": procs["model_servers"].get(config, {}).get("pid"),
        }
        return artifact, api, {name: pid for name, pid in pids.items() if pid}
    except Exception as exc:  # no state yet, or a layout this script does not know
        print(f"no local stack found ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return None, None, {}


def run_end_to_end(args: argparse.Namespace, model_dir: str, photos: list[bytes]) -> dict:
    """(b) against the API (--api-url), a running server (--server-url), or a server started here."""
    if args.api_url:
        target, url, path = "api", args.api_url.rstrip("/"), "/predict"
    else:
        target, url, path = "model-server", (args.server_url or "").rstrip("/"), "/invocations"
    proc, pids = None, dict(args.pids)
    if not url:
        port = free_port()
        proc, url = start_server(model_dir, port), f"http://127.0.0.1:{port}"
        pids = {"model_server": proc.pid}
        wait_ready(url, photos[0])
    print(f"end to end against {url}{path} ...", flush=True)
    headers = {"x-api-key": os.environ["API_KEY"]} if target == "api" and os.environ.get("API_KEY") else {}
    try:
        meter = CpuMeter(pids)
        out = bench_http(url, path, photos, args.c1_n, args.seconds, args.concurrency, meter, headers)
        if target == "api" and args.id_n:
            print(
                f"{args.id_n} requests at concurrency {args.id_c}, each checked for its own request id ...", flush=True
            )
            out["request_ids"] = request_id_run(url, path, photos, args.id_n, args.id_c, headers)
        return {"target": target, **out}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--artifact", help="model.tar.gz or model folder (default: the local stack's live model)")
    p.add_argument("--api-url", help="API base URL: POST {url}/predict (default: the local stack's, when up)")
    p.add_argument("--server-url", help="model server base URL: POST {url}/invocations (default: start one)")
    p.add_argument("--photos", default=os.environ.get("DATA_DIR") or str(REPO.parent / "shared/datasets/cats-vs-dogs"))
    p.add_argument("--compute-n", type=int, default=200)
    p.add_argument("--c1-n", type=int, default=300)
    p.add_argument("--seconds", type=float, default=8.0, help="length of the concurrency run")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--cold-runs", type=int, default=3)
    p.add_argument("--id-n", type=int, default=10_000, help="requests of the request-id run through the API (0: skip)")
    p.add_argument("--id-c", type=int, default=32, help="concurrency of the request-id run")
    p.add_argument("--resolution-n", type=int, default=200, help="runs per input size of the size comparison (0: skip)")
    p.add_argument("--earlier-px", type=int, default=EARLIER_SIZE, help="the input size to compare the model's with")
    p.add_argument("--out", default="build/bench-serve.json")
    p.add_argument("--plot", default="build/bench-serve.png")
    args = p.parse_args(argv)
    with contextlib.ExitStack() as scope:
        pick_target(args, scope)
        return measure(p, args)


def pick_target(args: argparse.Namespace, scope: contextlib.ExitStack) -> None:
    """What to measure: as given; else the local stack that is up; else, with nothing given and no stack
    up, the model `make bench-train` trained, behind a local stack brought up for this run."""
    args.pids = {}  # the processes to meter: the local stack's, when it is the target
    if args.artifact and (args.api_url or args.server_url):
        return
    artifact, api, pids = local_stack()
    nothing_given = not (args.artifact or args.api_url or args.server_url)
    if not api and nothing_given and (trained := trained_home()):
        os.environ.update(scope.enter_context(trained_stack(*trained)))
        artifact, api, pids = local_stack()
    args.artifact = args.artifact or artifact
    args.api_url = args.api_url or (None if args.server_url else api)
    if api and args.api_url == api:
        args.pids = pids


def measure(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.artifact:
        p.error("no model: pass --artifact, or run `make pipeline` (and `make up`) first")
    files = [f for label in ("cat", "dog") for f in sorted(Path(args.photos, "test", label).glob("*.jpg"))[:10]]
    if not files:
        p.error(f"no photos under {args.photos}/test/{{cat,dog}}")
    photos = [f.read_bytes() for f in files]
    from serving.artifact import open_artifact

    model_dir = str(open_artifact(args.artifact).root)  # unpacked, as SageMaker hands it to the container
    result: dict = {
        "artifact": args.artifact,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine(), "python": platform.python_version(), "load_avg": os.getloadavg()},
    }
    print("compute ...", flush=True)
    result["compute"] = bench_compute(model_dir, photos[0], args.compute_n)
    print("cold start ...", flush=True)
    runs = [round(cold_start(model_dir, photos[0]), 3) for _ in range(args.cold_runs)]
    packed = round(cold_start(args.artifact, photos[0]), 3) if args.artifact.endswith(".tar.gz") else None
    result["cold_start"] = {"runs_s": runs, "median_s": float(np.median(runs)), "model_tar_gz_s": packed}
    result["end_to_end"] = e2e = run_end_to_end(args, model_dir, photos)
    if args.resolution_n:
        print("input sizes ...", flush=True)
        result["resolution"] = compare(model_dir, photos, args.resolution_n, args.resolution_n, args.earlier_px)
    figures = {
        "compute_speedup_x": result["compute"]["speedup_x"],
        "c1_p50_ms": e2e["c1"]["p50_ms"],
        "c1_p95_ms": e2e["c1"]["p95_ms"],
        "c8_rps": e2e["c8"]["rps"],
        "c8_errors": e2e["c8"]["errors"] + e2e["c1"]["errors"],
        "cold_start_s": result["cold_start"]["median_s"],
    }
    if "request_ids" in e2e:
        ids = e2e["request_ids"]
        figures["id_run_errors"] = ids["errors"] + ids["mismatched"]
    result["floors"] = verdicts(figures)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    plot(result, Path(args.plot))
    report(result)
    print(f"wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
