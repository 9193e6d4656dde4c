"""The emulator's compute: real processes for function versions and endpoint models, started on demand.

A Lambda execution environment is the project's own Lambda runtime (mlops/standins/lambda_runtime.py,
run as a script beside its Granian-based server module) importing the handler from the version's
unpacked code; a SageMaker model is the project's model server (serving/) loading that model's
model.tar.gz. Each is kept warm, keyed by what defines it (a function version's code and
environment; a model's data), as the services do.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAMBDA_RUNTIME = REPO / "mlops" / "standins" / "lambda_runtime.py"


@dataclass
class Proc:
    key: str
    popen: subprocess.Popen
    url: str
    log: Path


class Processes:
    def __init__(self) -> None:
        self._procs: dict[str, Proc] = {}
        self._lock = threading.Lock()
        self._starting: dict[str, threading.Lock] = {}

    def get(self, key: str, start: callable) -> Proc:  # type: ignore[valid-type]
        """The running process for `key`, started by `start()` when there is none (or it died)."""
        with self._lock:
            gate = self._starting.setdefault(key, threading.Lock())
        with gate:
            proc = self._procs.get(key)
            if proc is not None and proc.popen.poll() is None:
                return proc
            proc = start()
            with self._lock:
                self._procs[key] = proc
            return proc

    def describe(self) -> list[dict]:
        with self._lock:
            return [
                {"key": p.key, "pid": p.popen.pid, "url": p.url, "alive": p.popen.poll() is None, "log": str(p.log)}
                for p in self._procs.values()
            ]

    def stop_all(self) -> None:
        with self._lock:
            procs, self._procs = list(self._procs.values()), {}
        for p in procs:
            if p.popen.poll() is None:
                p.popen.terminate()
        for p in procs:
            try:
                p.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.popen.kill()


PROCESSES = Processes()


def free_port() -> int:
    from aws_emulator.server import free_port as pick

    return pick()


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before it was ready:\n{tail}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"process not ready at {url} after {timeout:.0f} s")


def spawn(key: str, args: list[str], env: dict[str, str], cwd: Path, ready_path: str, port: int, log: Path) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(popen, url + ready_path, log)
    return Proc(key, popen, url, log)


def base_env() -> dict[str, str]:
    """PATH, HOME and locale of this process: nothing else leaks into a function or model."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ}


def python() -> str:
    return sys.executable
