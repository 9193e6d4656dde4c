"""Helpers for tests that run the local stack: free ports, CLI calls, broken artifacts, a steady client."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import tarfile
import threading
from pathlib import Path

import cli_zygote
import session_share
import urllib3

REPO = Path(__file__).resolve().parents[1]


def free_base_port() -> int:
    """A port with 20 free neighbours above it (the stack picks ports upwards from a base).

    Under pytest-xdist each worker takes its bases from its own band of 2,000 ports below the kernel's
    ephemeral range, in turn, so stacks started by two workers at once never pick the same neighbours."""
    band = session_share.worker().removeprefix("gw")
    if not band.isdigit():
        for _ in range(50):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                base = s.getsockname()[1]
            if base < 60000:
                return base
        raise RuntimeError("no free port")
    start = 20000 + 2000 * (int(band) % 6)
    for _ in range(2000 // 25):
        base = start + next(_band_offsets)
        if all(_bindable(port) for port in range(base, base + 21)):
            return base
    raise RuntimeError(f"no 21 free ports in a row in {start}-{start + 1999}")


_band_offsets = itertools.cycle(range(0, 2000, 25))


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stack_env(home: Path, data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "MLOPS_HOME": str(home),
        "DATA_DIR": str(data_dir),
        "SMOKE_PHOTOS_DIR": str(data_dir / "test"),
        "API_PORT": str(free_base_port()),
        "MODEL_PORT": str(free_base_port()),
        "LAMBDA_PORT": str(free_base_port()),
        # Its default (8600) is one machine-wide base: two stacks on two workers once raced for it, and the
        # second recorded the first one's runtime, so its releases were smoke-tested against another model.
        "SAGEMAKER_RUNTIME_PORT": str(free_base_port()),
        # A local release bakes for a second in tests (5 s by default); the bake's own tests set more.
        "MLOPS_BAKE_SECONDS": "1",
        "MLOPS_BAKE_POLL_SECONDS": "0.5",
        # The suite runs on more workers than cores, beside Terraform and training: a release's latency here
        # says how busy the machine is, not how fast the model is (make bench-serve measures that). The budget
        # still fails what is slow by design (test_local_release's too_slow candidate, with its own 300 ms).
        "SMOKE_P95_BUDGET_MS": "3000",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("LAMBDA_HANDLER", None)
    return env


def mlops(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m mlops ARGS`, forked from this worker's warm interpreter (cli_zygote says why and what differs)."""
    return cli_zygote.run(list(args), env=env, cwd=REPO, timeout=timeout)


def approve(version: str, env: dict[str, str]) -> None:
    """`mlops approve VERSION` as a test's set-up, run in this process: the same command and code, without the
    seconds a new interpreter spends importing MLflow. (The command's own tests run it as a process.)"""
    from typer.testing import CliRunner

    from mlops.cli import app

    changes: dict[str, str | None] = {k: v for k, v in env.items() if os.environ.get(k) != v}
    changes.update({k: None for k in os.environ if k not in env})
    result = CliRunner().invoke(app, ["approve", version], env=changes)
    assert result.exit_code == 0, f"mlops approve {version}: {result.output}{result.exception!r}"


def status(env: dict[str, str]) -> dict:
    out = mlops("status", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def rewrite_artifact(good: Path, dest: Path, files: dict[str, bytes] | None = None, **metadata) -> Path:
    """A copy of `good` with metadata fields replaced (e.g. labels swapped, a huge input size) and files
    replaced (name: bytes)."""
    work = dest.parent / (dest.name + ".d")
    work.mkdir(parents=True, exist_ok=True)
    with tarfile.open(good, "r:gz") as tar:
        tar.extractall(work, filter="data")
    meta = json.loads((work / "metadata.json").read_text())
    meta.update(metadata)
    (work / "metadata.json").write_text(json.dumps(meta))
    for name, data in (files or {}).items():
        assert (work / name).is_file(), f"{good} has no {name} to replace"
        (work / name).write_bytes(data)
    with tarfile.open(dest, "w:gz") as tar:
        for f in sorted(work.iterdir()):
            tar.add(f, arcname=f.name)
    return dest


class SteadyClient(threading.Thread):
    """Posts a real photo to the API about ten times a second and counts every answer that is not a 200.
    (Each request runs the front, a function and a model server: a faster client would take a core.)"""

    def __init__(self, api_url: str, photo: Path) -> None:
        super().__init__(daemon=True)
        self.url = api_url.rstrip("/") + "/predict"
        self.body = photo.read_bytes()
        self.ok = 0
        self.failures: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        http = urllib3.PoolManager(timeout=urllib3.Timeout(total=20.0), retries=False)
        while not self._halt.is_set():
            try:
                resp = http.request("POST", self.url, body=self.body, headers={"Content-Type": "image/jpeg"})
                if resp.status == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"{resp.status} {resp.data[:120]!r}")
            except urllib3.exceptions.HTTPError as exc:
                self.failures.append(repr(exc))
            self._halt.wait(0.1)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)
