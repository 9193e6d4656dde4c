"""Start, health-check and stop the local stack's background processes; find free loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib3

from mlops import config

HOST = "127.0.0.1"


class ProcessStartError(RuntimeError):
    """A process exited or never became healthy; the message carries the last log line."""


def logs_dir() -> Path:
    path = config.state_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(start: int, taken: set[int] | None = None, span: int = 200) -> int:
    """The first free loopback port at or above `start` not in `taken`."""
    for port in range(start, start + span):
        if port not in (taken or set()) and port_free(port):
            return port
    raise ProcessStartError(f"no free port in {start}-{start + span}")


def spawn(name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `python args...` detached from this terminal, logging to .mlops/logs/<name>.log."""
    log = open(logs_dir() / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    merged = {**os.environ, **(env or {})}
    path = os.pathsep.join(p for p in (str(config.REPO_ROOT), merged.get("PYTHONPATH", "")) if p)
    full_env = {**merged, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=config.REPO_ROOT,
        start_new_session=True,
    )


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        resp = urllib3.request("GET", url, timeout=timeout, retries=False)
    except urllib3.exceptions.HTTPError:
        return False
    return resp.status == 200


def wait_healthy(name: str, proc_pid: int, url: str, timeout: float = 60.0) -> None:
    """Wait until `url` answers 200; raise ProcessStartError if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(url, timeout=2.0):
            return
        if not alive(proc_pid):
            raise ProcessStartError(f"{name} exited before becoming healthy: {last_log_line(name)}")
        time.sleep(0.05)
    stop(proc_pid)
    raise ProcessStartError(f"{name} not healthy at {url} after {timeout:.0f} s: {last_log_line(name)}")


def last_log_line(name: str) -> str:
    path = logs_dir() / f"{name}.log"
    if not path.is_file():
        return "(no log)"
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(empty log)"


def stop(pid: int | None, grace: float = 5.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL."""
    if not alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
