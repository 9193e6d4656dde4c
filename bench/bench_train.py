"""Benchmark the full local pipeline run (train → evaluate → gate → register): wall time and peak memory.

A benchmark, not a test: it prints figures and writes build/bench-train.json. The run's state folder
(registry, MLflow store, model) is kept in build/bench-home, so that `make bench-serve` can serve the
model this run trained when no local stack is up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.serve_load import machine
from bench.serve_report import machine_line

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 600.0
HOME = REPO / "build" / "bench-home"


def stop_stack(home: Path) -> None:
    """Stop a local stack a previous bench-serve left up in the state folder about to be emptied."""
    if (home / "local" / "control.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "mlops", "down"],
            env={**os.environ, "MLOPS_HOME": str(home)},
            cwd=REPO,
            capture_output=True,
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench-train.json")
    p.add_argument("--threshold", type=float, default=None, help="Raise the gate (default: the pipeline's own)")
    p.add_argument("--home", type=Path, default=HOME, help="State folder of the run (emptied first, then kept)")
    args = p.parse_args(argv)
    home = args.home.resolve()
    stop_stack(home)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**os.environ, "MLOPS_HOME": str(home)}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(name, None)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "pipeline", "run", "--json"]
        + ([] if args.threshold is None else ["--threshold", str(args.threshold)]),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "pipeline failed", file=sys.stderr)
        return proc.returncode
    result = json.loads(proc.stdout)
    figures = {
        "wall_seconds": round(wall, 1),
        "peak_rss_mb_largest_process": round(peak_mb, 1),
        "test_accuracy": result["accuracy"],
        "registered_version": result["version"],
        "artifact": result["artifact"],
        "state_dir": str(home),
        **{k: result[k] for k in ("expected_calibration_error", "reliability_plot", "contact_sheet") if k in result},
        "cpu_count": os.cpu_count(),
        "machine": machine(),
        "load_avg_after": os.getloadavg(),
        "budget_seconds": BUDGET_S,
        "within_budget": wall <= BUDGET_S,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(machine_line({**figures["machine"], "python": platform.python_version(), "load_avg": os.getloadavg()}))
    print(
        f"full local pipeline: {figures['wall_seconds']} s wall (budget {BUDGET_S:.0f} s: "
        f"{'PASS' if figures['within_budget'] else 'FAIL'}), peak RSS {figures['peak_rss_mb_largest_process']} MB, "
        f"test accuracy {result['accuracy']:.4f} on {os.cpu_count()} CPUs"
    )
    for key in ("reliability_plot", "contact_sheet"):
        if key in result:
            print(f"{key.replace('_', ' ')}: {result[key]}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
