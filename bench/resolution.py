"""The chosen input size beside the earlier, smaller one: int8 compute and model-server latency in one run.

The serving model's input is dynamic in height and width, so the same int8 network runs at both
sizes; only the preprocessing differs (resize to size / 0.875, centre crop). Latency depends on the
network and the input size, not on the weights, so this measures what the earlier size cost without
its model (its accuracy is in docs/benchmarks.md, not measured here). The sizes run interleaved in
equal-time blocks, so the load other work puts on the machine hits both alike: the ratio is the
figure to compare across runs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.serve_load import Client, free_port, pct, start_server, wait_ready

EARLIER_SIZE = 160  # the default input size until 2026-11-30


def resize_for(size: int) -> int:
    """The resize before the centre crop, as training/train.py derives it from the input size."""
    return round(size / 0.875)


def resized_copy(model_dir: Path, size: int, dest: Path) -> Path:
    """A copy of the model folder whose metadata feeds the network `size` px photos."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, dest / f.name)
    meta = json.loads((dest / "metadata.json").read_text())
    meta.update(input_size=size, resize_size=resize_for(size), version=f"{meta.get('version', 'model')}-{size}px")
    (dest / "metadata.json").write_text(json.dumps(meta, indent=2))
    return dest


def compare(model_dir: str, photos: list[bytes], n_compute: int, n_http: int, earlier: int = EARLIER_SIZE) -> dict:
    """p50/p95 of int8 compute (one thread, batch 1) and of POST /invocations at concurrency 1, at both sizes."""
    from bench.bench_serve import interleaved
    from serving.engine import EngineOptions, ModelEngine
    from serving.preprocess import preprocess_bytes

    engine = ModelEngine.load(model_dir, EngineOptions(threads=1, max_concurrency=1))
    chosen = engine.prep.input_size
    if chosen == earlier:
        return {}  # nothing to compare: the model already takes that size
    sizes = {chosen: engine.prep, earlier: replace(engine.prep, input_size=earlier, resize_size=resize_for(earlier))}
    tensors = {s: preprocess_bytes(photos[0], prep)[None] for s, prep in sizes.items()}

    def run(size: int):
        return lambda: engine.solo.run(None, {engine.input_name: tensors[size]})

    compute = {f"{s}px": pct(v) for s, v in interleaved({s: run(s) for s in sizes}, n_compute).items()}
    with tempfile.TemporaryDirectory(prefix="bench-res-") as tmp:
        dirs = {chosen: model_dir, earlier: str(resized_copy(Path(model_dir), earlier, Path(tmp, f"{earlier}px")))}
        procs, clients = [], {}
        try:
            for size, folder in dirs.items():
                port = free_port()
                procs.append(start_server(folder, port))
                url = f"http://127.0.0.1:{port}"
                wait_ready(url, photos[0])
                clients[size] = Client(url, "/invocations")
            counters = dict.fromkeys(dirs, 0)

            def post(size: int):
                def call() -> None:
                    counters[size] += 1
                    status = clients[size].post(photos[counters[size] % len(photos)])
                    if status != 200:
                        raise RuntimeError(f"the {size} px model server answered {status}")

                return call

            http = {f"{s}px": pct(v) for s, v in interleaved({s: post(s) for s in dirs}, n_http).items()}
        finally:
            for c in clients.values():
                c.close()
            for proc in procs:
                proc.terminate()
                proc.wait(10)
    a, b = f"{chosen}px", f"{earlier}px"
    return {
        "chosen_px": chosen,
        "earlier_px": earlier,
        "compute_one_thread": compute,
        "compute_ratio_p50": round(compute[a]["p50_ms"] / compute[b]["p50_ms"], 2),
        "model_server_c1": http,
        "model_server_ratio_p50": round(http[a]["p50_ms"] / http[b]["p50_ms"], 2),
    }


def report(res: dict) -> str:
    a, b = f"{res['chosen_px']}px", f"{res['earlier_px']}px"
    comp, http = res["compute_one_thread"], res["model_server_c1"]
    return (
        f"input size {res['chosen_px']} px (chosen) vs {res['earlier_px']} px (earlier), same int8 network, "
        f"interleaved: compute 1 thread p50/p95 {comp[a]['p50_ms']}/{comp[a]['p95_ms']} vs "
        f"{comp[b]['p50_ms']}/{comp[b]['p95_ms']} ms ({res['compute_ratio_p50']}x); model server POST /invocations "
        f"c=1 p50/p95 {http[a]['p50_ms']}/{http[a]['p95_ms']} vs {http[b]['p50_ms']}/{http[b]['p95_ms']} ms "
        f"({res['model_server_ratio_p50']}x)"
    )
