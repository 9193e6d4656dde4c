"""The runtime interface client one local execution environment runs (stdlib only, run as a script).

Like Lambda's Python runtime client (awslambdaric), it imports the handler once (the init
phase), then loops over the Runtime API at $AWS_LAMBDA_RUNTIME_API: take the next invocation,
call the handler with a context built from the invocation's headers, post the result or the
error. One invocation at a time, in this process, for the process's whole life.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

API = "/2018-06-01/runtime"


class LambdaContext:
    """The attributes Lambda's context object offers that handlers and Powertools read."""

    def __init__(self, headers: http.client.HTTPMessage) -> None:
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0"))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def load_handler(spec: str) -> Callable[[dict[str, Any], Any], Any]:
    """'package.module.function' (Lambda's Handler setting) → the function."""
    module_name, _, func = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {spec!r} is not of the form module.function")
    handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module_name), func)
    return handler


def error_payload(exc: BaseException, error_type: str | None = None) -> bytes:
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": error_type or type(exc).__name__,
            "stackTrace": traceback.format_exception(exc)[-3:],
        }
    ).encode()


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, error_type: str | None = None) -> None:
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["Lambda-Runtime-Function-Error-Type"] = error_type
    conn.request("POST", API + path, body, headers)
    conn.getresponse().read()


def main(argv: list[str]) -> int:
    # The task root (the working directory) replaces this script's folder on the import path, as
    # in Lambda, where the function's code is at LAMBDA_TASK_ROOT.
    sys.path[0] = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
    conn = http.client.HTTPConnection(host, int(port))
    spec = argv[0] if argv else os.environ.get("_HANDLER", "")
    try:
        handler = load_handler(spec)
    except Exception as exc:  # the init phase failed: Lambda reports it and discards the environment
        error_type = "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.HandlerNotFound"
        print(f"[ERROR] {error_type}: {exc}", file=sys.stderr, flush=True)
        _post(conn, "/init/error", error_payload(exc, error_type), error_type)
        return 1
    while True:
        try:
            conn.request("GET", API + "/invocation/next")
            resp = conn.getresponse()
            event_raw = resp.read()
        except (OSError, http.client.HTTPException):
            return 0  # the environment is gone
        if resp.status != 200:
            return 0
        request_id = resp.headers.get("Lambda-Runtime-Aws-Request-Id", "")
        context = LambdaContext(resp.headers)
        try:
            result = handler(json.loads(event_raw or b"{}"), context)
            body = json.dumps(result).encode()
        except Exception as exc:
            line = {"level": "ERROR", "ts": time.time(), "requestId": request_id, "unhandled": str(exc)}
            print(json.dumps(line), file=sys.stderr, flush=True)  # the local bake counts these (function errors)
            _post(conn, f"/invocation/{request_id}/error", error_payload(exc), "Unhandled")
            continue
        _post(conn, f"/invocation/{request_id}/response", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
