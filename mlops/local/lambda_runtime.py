"""A local Lambda execution environment: one published function version in its own process.

It imports the configured handler once (a cold start) and answers the Lambda Runtime Interface
Emulator's invoke path, POST /2015-03-31/functions/function/invocations, with the handler's
result. An unhandled exception is answered as Lambda does: an error payload and the header
X-Amz-Function-Error: Unhandled.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
READY_PATH = "/_runtime/ready"


class LambdaContext:
    """The attributes Lambda's context object offers that handlers and Powertools read."""

    def __init__(self, function_name: str, version: str, timeout_s: float) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = version
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}:{version}"
        self.memory_limit_in_mb = 512
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: str) -> Callable[[dict, Any], Any]:
    """'package.module.function' (Lambda's Handler setting) → the function."""
    module_name, _, func = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {spec!r} is not of the form module.function")
    return getattr(importlib.import_module(module_name), func)


def make_server(
    host: str, port: int, handler: Callable, function_name: str, version: str, timeout_s: float
) -> ThreadingHTTPServer:
    class Invoke(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = 1 << 16  # status line, headers and body leave in one write (flushed after each request)

        def log_message(self, *args: Any) -> None:  # one line per request is the handler's job
            return

        def _send(self, status: int, payload: bytes, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == READY_PATH:
                self._send(200, b'{"ready": true}')
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path != INVOKE_PATH:
                self._send(404, b'{"error": "not found"}')
                return
            try:
                event = json.loads(raw or b"{}")
                result = handler(event, LambdaContext(function_name, version, timeout_s))
                self._send(200, json.dumps(result).encode())
            except Exception as exc:
                payload = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exception(exc)[-3:],
                }
                print(json.dumps({"level": "ERROR", "unhandled": payload}), file=sys.stderr, flush=True)
                self._send(200, json.dumps(payload).encode(), {"X-Amz-Function-Error": "Unhandled"})

    server = ThreadingHTTPServer((host, port), Invoke)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run one Lambda function version locally.")
    p.add_argument("--handler", default=os.environ.get("_HANDLER", "classify_api.handler.lambda_handler"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--function-name", default=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "catdog-api"))
    p.add_argument("--version", default=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"))
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    try:
        handler = load_handler(args.handler)
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"lambda runtime: cannot load handler {args.handler}: {exc}", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, handler, args.function_name, args.version, args.timeout)
    print(
        f"lambda runtime: {args.function_name}:{args.version} ({args.handler}) on {args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
