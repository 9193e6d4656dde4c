"""Benchmark: wall time and size of `make venv EXTRAS=<extra>` for each extra, into fresh virtualenvs, warm cache."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTRAS = ("control", "lambda", "serve", "train", "dev", "all")
# The control plane's aim (issue: a lean, locked control plane).
AIM_MB, AIM_S = 150, 30
HEAVY = ("torch", "mlflow", "numpy")


def tree_size(root: Path) -> int:
    """Bytes of the regular files under root, as a fresh machine stores them (hard links to a cache count)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def install(venv: Path, extra: str) -> float:
    """Run `make venv` for one extra into venv; return the seconds it took."""
    start = time.perf_counter()
    subprocess.run(
        ["make", "--no-print-directory", "venv", f"VENV={venv}", f"EXTRAS={extra}"],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return time.perf_counter() - start


def installed(venv: Path) -> set[str]:
    site = next((venv / "lib").glob("python3*/site-packages"))
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def measure(extras: Sequence[str], scratch: Path) -> list[dict]:
    """Warm the caches with `all` once, then install each extra into its own fresh virtualenv."""
    install(scratch / "warm-up", "all")
    shutil.rmtree(scratch / "warm-up")
    rows = []
    for extra in extras:
        venv = scratch / extra
        seconds = install(venv, extra)
        packages = installed(venv)
        rows.append(
            {
                "extra": extra,
                "seconds": round(seconds, 1),
                "megabytes": round(tree_size(venv) / 1e6, 1),
                "packages": len(packages),
                "heavy": sorted(p for p in packages if p in HEAVY),
            }
        )
        shutil.rmtree(venv)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--extras", default=",".join(EXTRAS), help="comma-separated extras to measure")
    parser.add_argument("--out", type=Path, default=Path("build/bench-install.json"))
    args = parser.parse_args(argv)
    extras = [e for e in args.extras.split(",") if e]
    with tempfile.TemporaryDirectory(prefix="bench-install-") as scratch:
        rows = measure(extras, Path(scratch))
    print(f"{'extra':<10} {'seconds':>8} {'MB':>8} {'packages':>9}  heavy (torch, mlflow, numpy)")
    for row in rows:
        print(
            f"{row['extra']:<10} {row['seconds']:>8} {row['megabytes']:>8} {row['packages']:>9}  "
            + (", ".join(row["heavy"]) or "none")
        )
    control = next((r for r in rows if r["extra"] == "control"), None)
    if control:
        verdict = "within" if control["megabytes"] < AIM_MB and control["seconds"] < AIM_S else "OVER"
        figure = f"{control['megabytes']} MB, {control['seconds']} s"
        print(f"control plane: {figure} ({verdict} the aim: {AIM_MB} MB, {AIM_S} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"python": sys.version.split()[0], "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
