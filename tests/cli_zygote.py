"""`python -m mlops` for the tests, forked from a warm interpreter instead of started cold.

A cold `mlops` process on the local backend spends about 4 CPU-seconds importing MLflow, SQLAlchemy and
Alembic before it runs a line of the command; the suite runs about a hundred of them. Each pytest worker
starts one zygote: a Python process that imports those libraries (and nothing of the project) once, then,
for each call, forks a child that takes the call's working directory, environment, arguments and
stdin/stdout/stderr and runs the `mlops` package as `__main__`, exactly as `python -m mlops` does. The
project's own modules are imported in the child, under the call's environment. The child is a real
process with its own pid, exit status and signals; the tests that signal the CLI, and the tests of the
entry point itself, still start it cold.

Run as a script, this file is the zygote; imported, `run` is the client.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PRELOAD = (
    "mlflow",
    "mlflow.tracking",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_store",
    "alembic",
    "typer",
    "rich.console",
)


def _child(request: dict) -> None:
    """In the forked child: become `python -m mlops ARGS` and exit with its status. Never returns."""
    import runpy
    import traceback

    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["stdout"], os.O_WRONLY | os.O_TRUNC),
            (2, request["stderr"], os.O_WRONLY | os.O_TRUNC),
        ):
            opened = os.open(path, flags)
            os.dup2(opened, fd)
            os.close(opened)
        sys.argv = ["-m", *request["args"]]
        runpy.run_module("mlops", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:
            print(done.code, file=sys.stderr)
    except BaseException:  # what an uncaught exception does to `python -m mlops`: a traceback, status 1
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    """The zygote: preload, then one call at a time from stdin, answering its pid, then its status."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the zygote itself might print goes to its log, never into its answers
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), file=reply, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), file=reply, flush=True)


class _Zygote:
    def __init__(self) -> None:
        self.log = Path(tempfile.mkdtemp(prefix="cli-zygote-")) / "zygote.log"
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.proc = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        os.close(log)
        self.pending = ""

    def _answer(self, deadline: float | None) -> dict | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while "\n" not in self.pending:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], wait)[0]:
                return None
            chunk = os.read(fd, 4096).decode()
            if not chunk:
                raise RuntimeError(f"the CLI zygote died; its log: {self.log}")
            self.pending += chunk
        line, self.pending = self.pending.split("\n", 1)
        return json.loads(line)

    def run(self, args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
        assert self.proc.stdin is not None
        with tempfile.TemporaryDirectory(prefix="cli-") as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            out.touch()
            err.touch()
            request = {"args": args, "env": env, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            started = self._answer(deadline=time.monotonic() + 120)
            if started is None:
                raise RuntimeError(f"the CLI zygote did not fork within 120 s; its log: {self.log}")
            done = self._answer(deadline=time.monotonic() + timeout)
            if done is None:
                os.kill(started["pid"], signal.SIGKILL)
                self._answer(deadline=None)
                raise subprocess.TimeoutExpired(
                    ["mlops", *args], timeout, output=out.read_text(), stderr=err.read_text()
                )
            return subprocess.CompletedProcess(
                ["mlops", *args], done["returncode"], stdout=out.read_text(), stderr=err.read_text()
            )


_zygote: _Zygote | None = None
_lock = threading.Lock()


@atexit.register
def _stop() -> None:
    """The zygote ends when its stdin closes; wait for it, so no worker leaves one behind."""
    if _zygote is not None and _zygote.proc.poll() is None:
        assert _zygote.proc.stdin is not None and _zygote.proc.stdout is not None
        _zygote.proc.stdin.close()
        _zygote.proc.wait(timeout=30)
        _zygote.proc.stdout.close()


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """`python -m mlops ARGS` in CWD under ENV, as `subprocess.run(..., capture_output=True, text=True)` runs it."""
    global _zygote
    with _lock:
        if _zygote is None or _zygote.proc.poll() is not None:
            _zygote = _Zygote()
        return _zygote.run(args, env, cwd, timeout)


if __name__ == "__main__":
    serve()
