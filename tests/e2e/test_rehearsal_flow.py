"""The rehearsal of the documented AWS flow passes (`make aws-rehearsal`, run here as one test of make test).

It runs as its own process, exactly as `make aws-rehearsal` does, into build/rehearsal (CI uploads its
logs and state), so that it runs beside the rest of the suite on the xdist workers instead of after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "rehearsal"


def test_the_documented_flow_passes_against_the_emulator() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "rehearsal.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    with log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "rehearsal", "--out", str(OUT)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=2400,
        ).returncode
    text = log.read_text(errors="replace")
    assert code == 0, f"the rehearsal failed (full log: {log}):\n{text[-6000:]}"
    results = json.loads((OUT / "results.json").read_text())
    assert results and all(r["ok"] for r in results), [r["step"] for r in results if not r["ok"]]
    assert json.loads((OUT / "emulator-state.json").read_text())
