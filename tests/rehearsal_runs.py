"""Reduced rehearsals that break something on purpose, started together and waited on by the tests.

Each run applies bootstrap and staging and goes as far as its breakage shows; they mostly wait on
Terraform and the emulated services, so the runs of a session start side by side on first use
(one session fixture) instead of one after another, and each test waits only for its own.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAULTS = REPO / "tests" / "rehearsal" / "faults"


@dataclass(frozen=True)
class Breakage:
    stop_after: str
    faults: str = ""  # modules imported by every process the steps start (tests/rehearsal/faults)
    remove_grant: str = ""  # FILE:SID:ACTION taken out of infra/bootstrap


RUNS = {
    "alias_not_moved": Breakage("staging serves version 1", faults="alias_not_moved"),
    "no_create_table": Breakage(
        "Terraform apply (staging)", remove_grant="modules/stack_access/apply.tf:Tables:dynamodb:CreateTable"
    ),
    "no_invoke_endpoint": Breakage(
        "staging serves version 1", remove_grant="execution_roles.tf:InvokeEndpoint:sagemaker:InvokeEndpoint"
    ),
    "no_model_read": Breakage(
        "staging serves version 1", remove_grant="execution_roles.tf:ReadModelArtifacts:s3:GetObject"
    ),
}


class Runs:
    """The rehearsals of RUNS, started at once under `out`; `wait(name)` is the finished run's exit code."""

    def __init__(self, out: Path, artifact: Path) -> None:
        self.out = out
        self._procs: dict[str, tuple[subprocess.Popen, object]] = {}
        for name, run in RUNS.items():
            env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "AWS_EMULATOR_IAM": "enforce"}
            env.update(REHEARSAL_FAULTS=run.faults, REHEARSAL_FAULTS_PATH=str(FAULTS))
            args = [sys.executable, "-m", "rehearsal", "--out", str(out / name), "--model-artifact", str(artifact),
                    "--skip-apply", "production", "--stop-after", run.stop_after]  # fmt: skip
            if run.remove_grant:
                args += ["--remove-grant", run.remove_grant]
            log = (out / f"{name}.log").open("w")
            proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            self._procs[name] = (proc, log)

    def wait(self, name: str) -> int:
        proc, log = self._procs[name]
        code = proc.wait(timeout=1800)
        log.close()  # type: ignore[attr-defined]
        return code

    def log(self, name: str) -> str:
        return (self.out / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc, _ in self._procs.values():
            if proc.poll() is None:
                proc.kill()


_started: list[Runs] = []


def started(tmp_path_factory: object) -> Runs:
    """The session's Runs, started by whichever test asks first (a module-level singleton, so two test
    modules importing the fixture share one set of runs)."""
    if not _started:
        from serving_fixtures import shared_artifact

        out = tmp_path_factory.mktemp("breakages")  # type: ignore[attr-defined]
        _started.append(Runs(out, shared_artifact(tmp_path_factory)))
        atexit.register(_started[0].stop)  # a session cut short leaves no rehearsal behind
    return _started[0]
