"""The rehearsal that breaks releases on purpose (`python -m rehearsal --breakages`), started once per session
and read by the tests, each for its own breakage's segment of the results (tests/rehearsal/breakages.py).

It applies bootstrap and staging once and then breaks one thing at a time; it mostly waits on Terraform
and the emulated services, so it starts on first use (one session fixture) and runs beside other tests.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAULTS = REPO / "tests" / "rehearsal" / "faults"


class Runs:
    """The breakages rehearsal, started at once under `out`; `segment(name)` is one breakage's results."""

    def __init__(self, out: Path, artifact: Path) -> None:
        self.out = out
        env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "AWS_EMULATOR_IAM": "enforce"}
        env.update(REHEARSAL_FAULTS="", REHEARSAL_FAULTS_PATH=str(FAULTS))
        args = [sys.executable, "-m", "rehearsal", "--out", str(out / "breakages"), "--model-artifact", str(artifact),
                "--breakages"]  # fmt: skip
        self._log = (out / "breakages.log").open("w")
        self._proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self._results: list[dict[str, Any]] | None = None

    def results(self) -> list[dict[str, Any]]:
        """Every step of the run, once it has ended (it exits 1: the breakages fail their steps on purpose)."""
        if self._results is None:
            self._proc.wait(timeout=1800)
            self._log.close()
            path = self.out / "breakages" / "results.json"
            assert path.is_file(), f"the breakages rehearsal wrote no results: {self.log()[-4000:]}"
            self._results = json.loads(path.read_text())
        return self._results

    def segment(self, name: str) -> list[dict[str, Any]]:
        """The steps between `breakage NAME: begin` and `breakage NAME: end`."""
        steps = [r["step"] for r in self.results()]
        begin, end = f"breakage {name}: begin", f"breakage {name}: end"
        assert begin in steps and end in steps, f"no segment for {name}: {steps}"
        return self.results()[steps.index(begin) + 1 : steps.index(end)]

    def outside_segments(self) -> list[dict[str, Any]]:
        """The steps that set up and put back: every one of them must pass."""
        inside, out = False, []
        for r in self.results():
            if r["step"].startswith("breakage ") and r["step"].endswith(": begin"):
                inside = True
            elif r["step"].startswith("breakage ") and r["step"].endswith(": end"):
                inside = False
            elif not inside:
                out.append(r)
        return out

    def log(self) -> str:
        return (self.out / "breakages.log").read_text(errors="replace")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()


_started: list[Runs] = []


def started(tmp_path_factory: object) -> Runs:
    """The session's run, started by whichever test asks first (a module-level singleton, so two test
    modules importing the fixture share it)."""
    if not _started:
        from serving_fixtures import shared_artifact

        out = tmp_path_factory.mktemp("breakages")  # type: ignore[attr-defined]
        _started.append(Runs(out, shared_artifact(tmp_path_factory)))
        atexit.register(_started[0].stop)  # a session cut short leaves no rehearsal behind
    return _started[0]
