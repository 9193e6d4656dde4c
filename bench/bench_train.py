"""Benchmark the full local pipeline run (train → evaluate → gate → register): wall time and peak memory.

A benchmark, not a test: it prints figures and writes build/bench-train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 600.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench-train.json")
    p.add_argument("--threshold", type=float, default=None, help="Raise the gate (default: the pipeline's own)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as home:
        env = {**os.environ, "MLOPS_HOME": home}
        env.pop("MLFLOW_TRACKING_URI", None)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mlops.cli", "pipeline", "run", "--json"]
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
        "cpu_count": os.cpu_count(),
        "budget_seconds": BUDGET_S,
        "within_budget": wall <= BUDGET_S,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"full local pipeline: {figures['wall_seconds']} s wall (budget {BUDGET_S:.0f} s: "
        f"{'PASS' if figures['within_budget'] else 'FAIL'}), peak RSS {figures['peak_rss_mb_largest_process']} MB, "
        f"test accuracy {result['accuracy']:.4f} on {os.cpu_count()} CPUs"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
