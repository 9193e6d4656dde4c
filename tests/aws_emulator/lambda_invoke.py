"""Lambda Invoke without Docker: the version's own code and environment, in a real process.

moto 5.2.5 runs a function only inside Docker (without it, Invoke answers a canned string). Lambda
runs each published version in its own execution environment: the version's code package, its
frozen environment variables, the handler it names, credentials of its role, and AWS_LAMBDA_*
variables; an unhandled exception comes back as HTTP 200 with X-Amz-Function-Error: Unhandled and
an {"errorMessage", "errorType"} payload. Here the environment is a process running the project's
Lambda runtime with the handler imported from the unpacked package; it stays warm per version.
What it writes reaches the function's CloudWatch log group (lambda_logs); which version an alias
runs is drawn by its weights (lambda_routing).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aws_emulator import context, lambda_logs, lambda_routing
from aws_emulator.processes import LAMBDA_RUNTIME, PROCESSES, Proc, base_env, free_port, python, spawn

INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def _key(fn: Any) -> str:
    env = json.dumps(fn.environment_vars or {}, sort_keys=True)
    digest = hashlib.sha256(f"{fn.code_sha_256}|{env}|{fn.handler}".encode()).hexdigest()[:12]
    return f"lambda:{fn.function_name}:{fn.version}:{digest}"


def _start(fn: Any, key: str) -> Proc:
    emu = context.emulator()
    folder: Path = emu.workdir / "lambda" / key.replace(":", "_").replace("$", "")
    code = folder / "code"
    if not code.is_dir():
        code.mkdir(parents=True)
        with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as zf:
            zf.extractall(code)
    port = free_port()
    env = base_env()
    env.update(emu.role_env(fn.role, "lambda.amazonaws.com", fn.function_name))  # the function's role, as Lambda does
    env.pop("AWS_EMULATOR_PORT", None)
    env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
    env.update(
        PYTHONPATH=str(code),
        LAMBDA_TASK_ROOT=str(code),
        _HANDLER=fn.handler or "",
        AWS_LAMBDA_FUNCTION_NAME=fn.function_name,
        AWS_LAMBDA_FUNCTION_VERSION=str(fn.version),
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(fn.memory_size),
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
        AWS_EXECUTION_ENV="AWS_Lambda_python_emulated",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",  # each line the function prints reaches its log group at once, as on Lambda
    )
    args = [python(), str(LAMBDA_RUNTIME), "--port", str(port), "--handler", fn.handler or ""]
    args += ["--function-name", fn.function_name, "--version", str(fn.version), "--timeout", str(fn.timeout or 3)]
    return spawn(key, args, env, code, "/_runtime/ready", port, folder / "runtime.log")


def invoke_version(fn: Any, payload: bytes) -> tuple[bytes, str]:
    """Run one invocation; returns (payload, function error or "")."""
    return run(fn, payload)[:2]


def run(fn: Any, payload: bytes) -> tuple[bytes, str, float | None]:
    """Run one invocation; returns (payload, function error or "", the Duration its REPORT line gave it, in
    ms: the handler's time, a cold start's init not included, as in Lambda's metric; None without one)."""
    key = _key(fn)
    proc = PROCESSES.get(key, lambda: _start(fn, key))
    request_id = ""
    try:
        out, error, request_id = _invoke(proc, fn, payload)
    finally:
        lambda_logs.ship(fn, proc.log, fn.account_id, fn.region)
    return out, error, lambda_logs.reported_duration(request_id)


def _invoke(proc: Proc, fn: Any, payload: bytes) -> tuple[bytes, str, str]:
    req = urllib.request.Request(proc.url + INVOKE_PATH, data=payload or b"{}", method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=float(fn.timeout or 3) + 30) as resp:
            return resp.read(), resp.headers.get("X-Amz-Function-Error", ""), resp.headers.get("x-amzn-RequestId", "")
    except urllib.error.HTTPError as exc:
        error = exc.headers.get("X-Amz-Function-Error", "") or "Unhandled"
        return exc.read(), error, exc.headers.get("x-amzn-RequestId", "")
    except OSError as exc:
        took = time.monotonic() - started
        body = {"errorMessage": f"{took:.2f}s: {exc}", "errorType": "Sandbox.Timedout"}
        return json.dumps(body).encode(), "Unhandled", ""


def patched_invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
    """Replaces moto's LambdaFunction.invoke (same signature)."""
    raw = body if isinstance(body, bytes) else (body or "{}").encode()
    if request_headers.get("x-amz-invocation-type") == "DryRun":
        return b""
    payload, error = invoke_version(self, raw)
    if error:
        response_headers["x-amz-function-error"] = error
    return payload


def qualifier_from_query(original: Any) -> Any:
    """LambdaResponse.invoke reads `qualifier` while clients send `?Qualifier=` (server mode lost it); a
    synchronous Invoke in the emulator runs the version the alias's weights draw (lambda_routing) and
    answers with X-Amz-Executed-Version, as Lambda does."""

    def invoke(self: Any) -> Any:
        given = self.querystring.get("Qualifier")
        if given and "qualifier" not in self.querystring:
            self.querystring["qualifier"] = given
        if not context.in_emulator() or self.headers.get("X-Amz-Invocation-Type") in ("Event", "DryRun"):
            return original(self)
        name = unquote(self.path.rsplit("/", 2)[-2])
        try:
            self.backend.get_function(*lambda_routing.split(name, self._get_param("qualifier")))
        except Exception:  # an unknown function or qualifier: moto's own answer
            return original(self)
        raw = self.body if isinstance(self.body, bytes) else (self.body or "{}").encode()
        payload, error, version = lambda_routing.invoke(
            self.backend, self.region, name, self._get_param("qualifier"), raw
        )
        headers = {"content-type": "application/json", "X-Amz-Executed-Version": version}
        if error:
            headers["x-amz-function-error"] = error
        return 200, headers, payload

    return invoke
