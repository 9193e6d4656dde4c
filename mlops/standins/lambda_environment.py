"""One local Lambda execution environment: a runtime-client process and the Runtime API it polls.

The process (awslambdaric when it is installed, else mlops/standins/lambda_runtime_client.py) imports the
handler once and then asks this environment's Runtime API for one invocation at a time. The
environment measures what Lambda's REPORT line shows: init duration of the cold start, duration
of each invocation, memory size and the process's peak resident memory.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API = "/2018-06-01/runtime"
ARN_PREFIX = "arn:aws:lambda:local:000000000000:function:"
CLIENT = Path(__file__).resolve().with_name("lambda_runtime_client.py")


@dataclass(frozen=True)
class Result:
    payload: bytes
    error_type: str  # "" for a normal result
    version: str


class _Invocation:
    def __init__(self, request_id: str, payload: bytes, deadline_epoch_ms: int) -> None:
        self.request_id, self.payload, self.deadline_epoch_ms = request_id, payload, deadline_epoch_ms
        self.done = threading.Event()
        self.started: float | None = None
        self.answer: tuple[bytes, str] | None = None
        self.peak_mb: int | None = None

    def finish(self, payload: bytes, error_type: str = "") -> None:
        if not self.done.is_set():
            self.answer = (payload, error_type)
            self.done.set()


def _error(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _client_command(spec: str) -> list[str]:
    if importlib.util.find_spec("awslambdaric") is not None:
        return [sys.executable, "-m", "awslambdaric", spec]
    return [sys.executable, str(CLIENT), spec]


def _peak_rss_mb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return math.ceil(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return 0


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Environment:
    """A process that runs one invocation at a time, for as long as it lives."""

    def __init__(self, spec: str, name: str, version: str, memory_mb: int, number: int) -> None:
        self.name, self.version, self.memory_mb = name, version, memory_mb
        self.max_response = 6 * 1024 * 1024
        self._next: queue.Queue[_Invocation | None] = queue.Queue()
        self._pending: dict[str, _Invocation] = {}
        self._init_error: bytes | None = None
        self._spawned = time.monotonic()
        self._init_ms: float | None = None
        self._init_reported = False
        self._killed = False
        self.api = _runtime_api(self)
        threading.Thread(target=self.api.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{number:04d}"
        env = {
            **os.environ,
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.api.server_address[1]}",
            "_HANDLER": spec,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        }
        self.proc = subprocess.Popen(_client_command(spec), env=env, stdin=subprocess.DEVNULL)

    def alive(self) -> bool:
        return not self._killed and self._init_error is None and self.proc.poll() is None

    def invoke(self, request_id: str, payload: bytes, timeout_s: float, max_response: int) -> Result:
        """Run one invocation here; a timeout or a crash discards the environment, as Lambda does."""
        self.max_response = max_response
        inv = _Invocation(request_id, payload, int((time.time() + timeout_s) * 1000))
        log(f"START RequestId: {request_id} Version: {self.version}")
        self._next.put(inv)
        while not inv.done.wait(0.05):
            if self._init_error is not None:
                inv.finish(self._init_error, "Unhandled")
            elif self.proc.poll() is not None:
                message = (
                    f"RequestId: {request_id} Error: Runtime exited with error: exit status {self.proc.returncode}"
                )
                inv.finish(_error(message, "Runtime.ExitError"), "Unhandled")
            elif inv.started is not None and time.monotonic() - inv.started > timeout_s:
                inv.peak_mb = _peak_rss_mb(self.proc.pid)
                self.stop()
                stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                message = f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds"
                log(message)
                inv.finish(_error(message, "Sandbox.Timedout"), "Unhandled")
        self._pending.pop(request_id, None)
        assert inv.answer is not None
        self._report(inv)
        return Result(inv.answer[0], inv.answer[1], self.version)

    def _report(self, inv: _Invocation) -> None:
        duration = (time.monotonic() - inv.started) * 1000 if inv.started is not None else 0.0
        line = (
            f"REPORT RequestId: {inv.request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {inv.peak_mb or _peak_rss_mb(self.proc.pid)} MB"
        )
        if not self._init_reported and self._init_ms is not None:
            line += f"\tInit Duration: {self._init_ms:.2f} ms"
            self._init_reported = True
        log(f"END RequestId: {inv.request_id}")
        log(line)

    def stop(self) -> None:
        self._killed = True
        self._next.put(None)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        threading.Thread(target=self._close_api, daemon=True).start()

    def _close_api(self) -> None:
        self.api.shutdown()
        self.api.server_close()

    # --- what the Runtime API calls ---------------------------------------------------------------
    def next_invocation(self) -> _Invocation | None:
        if self._init_ms is None:
            self._init_ms = (time.monotonic() - self._spawned) * 1000
        inv = self._next.get()
        if inv is not None:
            inv.started = time.monotonic()
            self._pending[inv.request_id] = inv
        return inv

    def respond(self, request_id: str, body: bytes, error_type: str | None) -> int:
        inv = self._pending.get(request_id)
        if inv is None:
            return 400
        if error_type is None and len(body) > self.max_response:
            limit = self.max_response
            message = f"Response payload size exceeded maximum allowed payload size ({limit} bytes)."
            inv.finish(_error(message, "Function.ResponseSizeTooLarge"), "Unhandled")
            return 413
        inv.finish(body, "" if error_type is None else (error_type or "Unhandled"))
        return 202

    def init_failed(self, body: bytes) -> None:
        self._init_error = body or _error("init failed", "Runtime.Unknown")


class RuntimeApiServer(ThreadingHTTPServer):
    """The Runtime API's server: a runtime client that went away before its acknowledgement is not an error.

    Stopping an environment kills its process, which may happen between the client posting an answer
    and reading the 202; the Lambda service logs nothing for that, and neither does this server.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _runtime_api(env: Environment) -> ThreadingHTTPServer:
    class RuntimeApi(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            return

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != f"{API}/invocation/next":
                self._send(404, b'{"errorMessage": "not found"}')
                return
            inv = env.next_invocation()
            if inv is None:  # the environment is being shut down
                self.close_connection = True
                self._send(410, b'{"errorMessage": "environment shut down"}')
                return
            headers = {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(inv.deadline_epoch_ms),
                "Lambda-Runtime-Invoked-Function-Arn": f"{ARN_PREFIX}{env.name}:{env.version}",
                "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{inv.request_id.replace('-', '')[:24]}",
            }
            self._send(200, inv.payload, headers)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.removeprefix(API).strip("/").split("/")
            if parts == ["init", "error"]:
                env.init_failed(body)
                self._send(202, b'{"status": "OK"}')
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in {"response", "error"}:
                error_type = (
                    None if parts[2] == "response" else self.headers.get("Lambda-Runtime-Function-Error-Type", "")
                )
                status = env.respond(parts[1], body, error_type)
                self._send(status, b'{"status": "OK"}' if status == 202 else b'{"errorMessage": "refused"}')
            else:
                self._send(404, b'{"errorMessage": "not found"}')

    return RuntimeApiServer(("127.0.0.1", 0), RuntimeApi)
