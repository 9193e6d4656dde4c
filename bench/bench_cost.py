"""Cost benchmark: the figures cost depends on, measured here and by bench-serve, priced per serving mode."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBES = 3  # fresh processes per probe
sys.path.insert(0, str(REPO))

from mlops.cost import VOLUMES, CostError, Figures, Plan, Prices, plans  # noqa: E402
from mlops.cost.report import break_even, render, table, usd  # noqa: E402


def peak_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def tree_peak_mb(pid: int) -> float:
    """Peak memory of a process and its descendants (a server's workers), summed: an upper bound on their peak."""
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += (task / "children").read_text().split()
    return peak_mb(pid) + sum(tree_peak_mb(int(c)) for c in children)


def probe_inline(model: str, photos: list[str], n: int) -> dict:
    """In this fresh process: import and load as a Lambda function would (one thread), then time inferences."""
    started = time.perf_counter()
    from serving.engine import EngineOptions, ModelEngine

    engine = ModelEngine.load(model, EngineOptions(threads=1, max_concurrency=1))
    init_s = time.perf_counter() - started
    bodies = [Path(p).read_bytes() for p in photos]
    lat = []
    for i in range(n):
        t = time.perf_counter()
        engine.predict(bodies[i % len(bodies)])
        lat.append((time.perf_counter() - t) * 1e3)
    lat.sort()
    return {
        "inline_init_s": round(init_s, 3),
        "inline_p50_ms": round(lat[len(lat) // 2], 3),
        "inline_p95_ms": round(lat[int(len(lat) * 0.95)], 3),
        "inline_peak_mb": round(peak_mb(), 1),
        "response_kb": round(len(json.dumps(engine.predict(bodies[0]))) / 1024, 3),
    }


def probe_function() -> dict:
    """In this fresh process: the function module's import (its cold start's own work) and memory."""
    started = time.perf_counter()
    import classify_api.handler  # noqa: F401

    return {"function_init_s": round(time.perf_counter() - started, 3), "function_peak_mb": round(peak_mb(), 1)}


def median_of(runs: int, probe) -> dict:
    """Each figure's median over `runs` fresh-process probes: one import timed on a shared CPU is noise."""
    samples = [probe() for _ in range(runs)]
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def child(args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_cost", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'lambda'}", **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def server_peak_mb(model: str, photos: list[bytes]) -> float:
    """Peak memory of a model server (its processes together) after it has answered every photo."""
    from bench.serve_load import Client, free_port, start_server, wait_ready

    port = free_port()
    proc = start_server(model, port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, photos[0])
        client = Client(url, "/invocations")
        for body in photos:
            client.post(body)
        client.close()
        return round(tree_peak_mb(proc.pid), 1)
    finally:
        proc.terminate()
        proc.wait(10)


def measure(serve: dict, model: str, files: list[Path], n: int) -> tuple[dict, list[str]]:
    """The cost model's figures: bench-serve's latency, CPU and cold start; memory and the in-Lambda run here."""
    e2e, cpu = serve["end_to_end"], serve["end_to_end"]["c8"]["cpu"]["ms_per_request"]
    if "model_server" not in cpu:
        raise SystemExit("error: bench-serve measured no model server CPU (a remote API?): run it against `make up`")
    caveats = []
    if e2e["target"] != "api":
        caveats.append("bench-serve ran against the model server alone (no `make up`): function and API CPU are 0")
    figures = {
        "api_p50_ms": e2e["c1"]["p50_ms"],
        "api_p95_ms": e2e["c1"]["p95_ms"],
        "api_front_cpu_ms": cpu.get("api_front", 0.0),
        "function_cpu_ms": cpu.get("function", 0.0),
        "server_cpu_ms": cpu["model_server"],
        "server_cold_start_s": round(serve["cold_start"]["median_s"], 3),
        "request_kb": round(sum(f.stat().st_size for f in files) / len(files) / 1024, 2),
    }
    print("memory of the model server, the function's import, inference inside a function ...", flush=True)
    figures["server_peak_mb"] = server_peak_mb(model, [f.read_bytes() for f in files])
    function_env = {"AWS_REGION": "eu-west-1", "ENDPOINT_NAME": "probe"}
    figures.update(median_of(PROBES, lambda: child(["--probe-function"], function_env)))
    figures.update(median_of(PROBES, lambda: child(["--probe-inline", model, "--n", str(n), *map(str, files)])))
    return figures, caveats


def break_evens(all_plans: list[Plan]) -> list[dict]:
    """Crossings of the serverless endpoint with every mode (or none up to the limit), and any other crossing."""
    out = []
    for a, b in itertools.combinations(all_plans, 2):
        crossings = break_even(a, b)
        if crossings or "serverless" in (a.name, b.name):
            limit = min(a.max_volume, b.max_volume, 1e10)
            out.append(
                {"a": a.label, "b": b.label, "requests_per_month": [round(x) for x in crossings], "limit": limit}
            )
    return out


def plot(all_plans: list[Plan], region: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    volumes = [int(10 ** (3 + k / 10)) for k in range(0, 51)]  # 1,000 .. 100 million a month
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for p in all_plans:
        xs = [v for v in volumes if v <= p.max_volume]
        style = "--" if p.name == "in-lambda" else (":" if p.instance_type and p.instance_count else "-")
        ax.plot(xs, [p.monthly(v) for v in xs], style, label=p.label)
    for v in VOLUMES:
        ax.axvline(v, color="0.85", lw=0.8, zorder=0)
    ax.set(xscale="log", yscale="log", xlabel="requests per month", ylabel="USD per month")
    ax.set_title(f"Monthly cost by serving mode, {region} (list prices)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--serve-json", default="build/bench-serve.json", help="written by make bench-serve")
    p.add_argument("--photos", default=os.environ.get("DATA_DIR") or str(REPO.parent / "shared/datasets/cats-vs-dogs"))
    p.add_argument("--n", type=int, default=200, help="inferences of the in-Lambda run")
    p.add_argument("--regions", nargs="+", default=["us-east-1", "eu-west-1"])
    p.add_argument("--out", default="build/bench-cost.json")
    p.add_argument("--plot", default="build/bench-cost.png")
    p.add_argument("--probe-inline", metavar="MODEL")
    p.add_argument("--probe-function", action="store_true")
    p.add_argument("files", nargs="*")
    args = p.parse_args(argv)
    if args.probe_function:
        print(json.dumps(probe_function()))
        return 0
    if args.probe_inline:
        print(json.dumps(probe_inline(args.probe_inline, args.files, args.n)))
        return 0
    serve_path = Path(args.serve_json)
    if not serve_path.is_file():
        p.error(f"{serve_path} not found: run make bench-serve first")
    serve = json.loads(serve_path.read_text())
    files = [f for label in ("cat", "dog") for f in sorted(Path(args.photos, "test", label).glob("*.jpg"))[:10]]
    if not files:
        p.error(f"no photos under {args.photos}/test/{{cat,dog}}")
    from serving.artifact import open_artifact

    model = str(open_artifact(serve["artifact"]).root)
    raw, caveats = measure(serve, model, files, args.n)
    figures = Figures(**raw)
    result: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "figures": raw, "caveats": caveats}
    result["serve_run"] = {
        "when": serve.get("when"),
        "machine": serve.get("machine"),
        "target": serve["end_to_end"]["target"],
    }
    if serve.get("machine"):
        from bench.serve_report import machine_line  # not at the top: the probes time their own imports

        print(f"bench-serve run of {serve.get('when')}: " + machine_line(serve["machine"]))
    print("figures: " + ", ".join(f"{k} {v}" for k, v in raw.items()))
    plotted = False
    for region in args.regions:
        prices = Prices.load(region)
        try:
            priced = plans(figures, prices)
        except CostError as exc:
            print(f"\n{region}: unpriced ({exc})")
            result[region] = {"error": str(exc)}
            continue
        rows = table(priced)
        evens = break_evens(priced)
        print(f"\n{region}, prices checked {prices.checked}: monthly cost (cost per 1,000 inferences)")
        print(render(rows))
        for e in evens:
            where = ", ".join(f"{x:,}" for x in e["requests_per_month"]) or f"none up to {e['limit']:,.0f}"
            print(f"  break-even {e['a']} / {e['b']}: {where} requests a month")
        result[region] = {
            "table": rows,
            "break_even": evens,
            "per_1000_at_1M": {q.label: usd(q.per_thousand(1e6)) for q in priced},
        }
        if not plotted:
            plot(priced, region, Path(args.plot))
            plotted = True
    for c in caveats:
        print(f"caveat: {c}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}" + (f" and {args.plot}" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
