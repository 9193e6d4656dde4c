"""A local Lambda function version: execution environments behind the invoke API.

POST /2015-03-31/functions/function/invocations runs one invocation the way Lambda does: in an
idle execution environment if there is one, else in a new one (a cold start) as long as fewer
than the reserved concurrency exist, else it is throttled (429 TooManyRequestsException). Each
environment is its own process running mlops/standins/lambda_runtime_client.py against its own Runtime
API, so it handles exactly one invocation at a time. Payloads over Lambda's 6 MB are refused,
a handler that runs past the timeout has its environment discarded, and every invocation logs
START, END and a REPORT line (duration, memory, and the init duration of a cold start). The invoke
API runs on the stand-ins' HTTP server (http_server.py): capped connections, header and body
deadlines, graceful SIGTERM; an invocation waits for its environment on a thread of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import threading
import uuid
from pathlib import Path

try:  # run as `-m mlops.standins.lambda_runtime` or as a script (the AWS emulator does the latter)
    from mlops.standins.http_server import (
        DEFAULT_MAX_CONNECTIONS,
        BodyTimeoutError,
        BodyTooLargeError,
        Limits,
        Request,
        Response,
        Server,
        json_response,
    )
    from mlops.standins.lambda_environment import Environment, Result
except ImportError:  # pragma: no cover - script mode
    from http_server import (  # type: ignore[no-redef, import-not-found]  # script mode: a sibling on sys.path
        DEFAULT_MAX_CONNECTIONS,
        BodyTimeoutError,
        BodyTooLargeError,
        Limits,
        Request,
        Response,
        Server,
        json_response,
    )
    from lambda_environment import Environment, Result  # type: ignore[no-redef, import-not-found]  # script mode

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
READY_PATH = "/_runtime/ready"
MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit (request and response)
UNRESERVED_LIMIT = 1000  # an account's default concurrency quota, for a function with none reserved
VARIABLES_TF = Path(__file__).resolve().parents[2] / "infra" / "variables.tf"
DRAIN_LIMIT = 16 * 1024 * 1024  # a body over MAX_PAYLOAD up to this size is read (and dropped) before the 413
# Connections served at once: a front serving its whole cap, plus readiness checks and direct invokes.
MAX_CONNECTIONS = 2 * DEFAULT_MAX_CONNECTIONS


def terraform_default(name: str, fallback: float) -> float:
    """The default of `variable "<name>"` in infra/variables.tf: the value the AWS stack gets."""
    try:
        text = VARIABLES_TF.read_text()
    except OSError:
        return fallback
    found = re.search(rf'variable "{re.escape(name)}" \{{.*?\n\s*default\s*=\s*(-?[0-9.]+)', text, re.S)
    return float(found.group(1)) if found else fallback


class Function:
    """The environments of one function version, scaled out up to its reserved concurrency."""

    def __init__(self, spec: str, name: str, version: str, timeout_s: float, memory_mb: int, limit: int) -> None:
        self.spec, self.name, self.version = spec, name, version
        self.timeout_s, self.memory_mb, self.limit = timeout_s, memory_mb, limit
        self._lock = threading.Lock()
        self._idle: list[Environment] = []
        self._busy = 0
        self._all: list[Environment] = []

    def acquire(self) -> Environment | None:
        """A warm idle environment, a new one, or None when the concurrency limit is reached."""
        with self._lock:
            while self._idle:
                env = self._idle.pop()  # the most recently used: Lambda keeps reusing warm ones
                if env.alive():
                    self._busy += 1
                    return env
                self._all.remove(env)
            if self._busy >= self.limit:
                return None
            self._busy += 1
            env = Environment(self.spec, self.name, self.version, self.memory_mb, len(self._all) + 1)
            self._all.append(env)
            return env

    def release(self, env: Environment) -> None:
        with self._lock:
            self._busy -= 1
            if env.alive():
                self._idle.append(env)
            elif env in self._all:
                self._all.remove(env)

    def invoke(self, payload: bytes) -> tuple[int, bytes, dict[str, str]]:
        if len(payload) > MAX_PAYLOAD:
            return too_large()
        env = self.acquire()
        if env is None:
            body = {
                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                "Type": "User",
                "message": "Rate Exceeded.",
            }
            return 429, json.dumps(body).encode(), {"x-amzn-ErrorType": "TooManyRequestsException"}
        request_id = str(uuid.uuid4())
        try:
            result = env.invoke(request_id, payload, self.timeout_s, MAX_PAYLOAD)
        finally:
            self.release(env)
        return 200, result.payload, _result_headers(result, request_id)

    def stop(self) -> None:
        with self._lock:
            envs, self._all, self._idle = list(self._all), [], []
        for env in envs:
            env.stop()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"environments": len(self._all), "busy": self._busy, "limit": self.limit}


def too_large() -> tuple[int, bytes, dict[str, str]]:
    """Lambda's answer to an invocation payload over the limit."""
    message = f"Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"
    body = json.dumps({"Type": "User", "message": message}).encode()
    return 413, body, {"x-amzn-ErrorType": "RequestEntityTooLargeException"}


def _result_headers(result: Result, request_id: str) -> dict[str, str]:
    headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": result.version}
    if result.error_type:
        headers["X-Amz-Function-Error"] = "Unhandled"
    return headers


def invoke_answer(status: int, payload: bytes, headers: dict[str, str], close: bool = False) -> Response:
    return Response(status, payload, {"Content-Type": "application/json", **headers}, close)


def make_server(host: str, port: int, function: Function, limits: Limits | None = None) -> Server:
    limits = limits or Limits(max_connections=MAX_CONNECTIONS)
    not_found = json_response(404, {"message": "not found"}, close=True)

    async def handle(req: Request) -> Response:
        if req.method in {"GET", "HEAD"}:
            if req.path == READY_PATH:
                return json_response(200, {"ready": True, **function.counts()})
            return not_found
        if req.method != "POST" or req.path != INVOKE_PATH:
            return not_found
        try:
            length = req.content_length()
        except ValueError:
            return json_response(400, {"Type": "User", "message": "invalid Content-Length"}, close=True)
        try:
            if length is not None and length > MAX_PAYLOAD:  # refused; a body of API Gateway's size is drained
                await req.body(DRAIN_LIMIT, limits.body_timeout)
                return invoke_answer(*too_large(), close=True)
            payload = await req.body(MAX_PAYLOAD, limits.body_timeout)
        except BodyTooLargeError:
            return invoke_answer(*too_large(), close=True)
        except BodyTimeoutError as exc:
            return json_response(408, {"Type": "User", "message": str(exc)}, close=True)
        return invoke_answer(*await asyncio.to_thread(function.invoke, payload))

    return Server(handle, host, port, limits)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run one Lambda function version locally.")
    p.add_argument("--handler", default=os.environ.get("_HANDLER", "classify_api.handler.lambda_handler"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--function-name", default=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "catdog-api"))
    p.add_argument("--version", default=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"))
    p.add_argument("--timeout", type=float, default=terraform_default("lambda_timeout_seconds", 15))
    p.add_argument("--memory", type=int, default=int(terraform_default("lambda_memory_mb", 512)))
    p.add_argument(
        "--reserved-concurrency",
        type=int,
        default=int(
            os.environ.get("LAMBDA_RESERVED_CONCURRENCY") or terraform_default("lambda_reserved_concurrency", -1)
        ),
        help=f"at most this many environments; -1 (none reserved) means the account quota, {UNRESERVED_LIMIT}",
    )
    Limits.add_arguments(p, max_connections=MAX_CONNECTIONS)
    args = p.parse_args(argv)
    if "." not in args.handler:
        print(f"lambda runtime: handler {args.handler!r} is not of the form module.function", file=sys.stderr)
        return 2
    limit = args.reserved_concurrency if args.reserved_concurrency >= 0 else UNRESERVED_LIMIT
    function = Function(args.handler, args.function_name, args.version, args.timeout, args.memory, limit)
    try:
        server = make_server(args.host, args.port, function, Limits.from_args(args))
    except OSError as exc:
        print(f"lambda runtime: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(
        f"lambda runtime: {args.function_name}:{args.version} ({args.handler}) on {args.host}:{args.port}, "
        f"up to {limit} environments, timeout {args.timeout:g} s, {args.memory} MB",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()  # until SIGTERM: invocations in progress finish first
    finally:
        function.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
