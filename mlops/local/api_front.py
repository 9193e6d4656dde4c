"""The local API Gateway: HTTP requests become REST API proxy events for the live function version.

Routing (which function version is behind alias `live`, the stage's deployment and variables,
and optionally its API key and throttle) is read from routing.json, which the local backend
rewrites atomically on every switch; in-flight requests finish where they started. The stage's
own answers (unknown route, API key, throttle, payload limit) come from mlops.local.gateway.
While a release shifts traffic, the alias's weight decides per request which function version
answers it (gateway.Splitter); while a candidate is shadow-tested, each answered POST /predict is
also sent, after the client has its answer, to the candidate, and both answers are logged
(gateway.Mirror). `/` serves the web page.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from mlops.local import gateway as gw
from mlops.local.lambda_runtime import INVOKE_PATH
from mlops.web_page import render as render_page

INTEGRATION_TIMEOUT = 29.0  # API Gateway's REST integration timeout
LISTEN_BACKLOG = 1024


class Server(ThreadingHTTPServer):
    """Threaded HTTP server whose listen backlog is set before listen() is called."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG


class Routing:
    """routing.json, re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1.0
        self.data: dict = {}

    def current(self) -> dict:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self.data, self._mtime = {}, -1.0
            return self.data
        if mtime != self._mtime:
            self.data = json.loads(self.path.read_text())
            self._mtime = mtime
        return self.data


def make_server(
    host: str, port: int, routing_path: Path, api_url: str, stage: gw.StageConfig | None = None
) -> ThreadingHTTPServer:
    routing = Routing(routing_path)
    default_stage = stage or gw.StageConfig()
    gate = gw.Gate()
    pool = urllib3.PoolManager(
        maxsize=64, retries=False, timeout=urllib3.Timeout(connect=2.0, read=INTEGRATION_TIMEOUT)
    )
    splitter = gw.Splitter()
    mirror = gw.Mirror(lambda url, event: call_function(pool, url, event))

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = 1 << 16  # status line, headers and body leave in one write (flushed after each request)

        def log_message(self, *args: Any) -> None:
            return

        def _reply(self, status: int, body: bytes, headers: dict[str, str], request_id: str) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in {"content-length", "connection", "transfer-encoding", "x-amzn-requestid"}:
                    self.send_header(k, v)
            self.send_header("x-amzn-RequestId", request_id)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _answer(self, answer: gw.Answer, request_id: str) -> None:
            status, body, error_type = answer
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
            self._reply(status, json.dumps(body).encode(), headers, request_id)

        def _page(self, api_key: str, request_id: str) -> None:
            html = render_page(api_url, api_key)
            headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
            self._reply(200, html.encode(), headers, request_id)

        def _read_body(self) -> bytes | None:
            """The request body, or None (connection to be closed) when it is over the payload limit."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks, total = [], 0
                while True:
                    size = int(self.rfile.readline(64).split(b";", 1)[0].strip() or b"0", 16)
                    total += size
                    if total > gw.MAX_PAYLOAD:
                        return None
                    if size == 0:
                        while self.rfile.readline(1024).strip():
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(8)
            length = int(self.headers.get("Content-Length") or 0)
            if length > gw.MAX_PAYLOAD:
                return None
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            request_id = gw.new_request_id()
            route = routing.current()
            stage = gw.StageConfig.from_routing(route, default_stage)
            resource = urlsplit(self.path).path
            if self.command == "GET" and resource in {"/", "/index.html"}:
                self._page(stage.api_key, request_id)
                return
            length = int(self.headers.get("Content-Length") or 0)
            if gw.MAX_BODY_BYTES < length <= gw.MAX_PAYLOAD:  # the web ACL, before the body is read
                self.close_connection = True
                self._answer(gw.WEB_ACL_TOO_LARGE, request_id)
                return
            try:
                body = self._read_body()
            except ValueError:
                self.close_connection = True
                self._reply(400, b'{"message": "Bad Request"}', {"Content-Type": "application/json"}, request_id)
                return
            if body is None:  # answered before the body is read; the connection cannot be reused
                self.close_connection = True
                self._answer(gw.TOO_LARGE, request_id)
                return
            refusal = gate.check(stage, resource, self.command, dict(self.headers.items()))
            if refusal is not None:
                self._answer(refusal, request_id)
                return
            target, version = splitter.pick(route)
            if not target:
                self._answer(gw.NO_FUNCTION, request_id)
                return
            host, port = self.server.server_address[:2]
            headers = gw.forwarded_headers(
                list(self.headers.items()), f"{host}:{port}", int(port), self.client_address[0]
            )
            multi: dict[str, list[str]] = {}
            for k, v in self.headers.items():
                multi.setdefault(k, []).append(v)
            event = gw.build_event(
                self.command, self.path, headers, multi, body, route, self.client_address[0], request_id
            )
            started = time.perf_counter()
            status, data, out_headers = call_function(pool, target, event)
            self._reply(status, data, out_headers, request_id)
            if (self.command, resource) == ("POST", "/predict"):
                self.wfile.flush()  # the client has its answer before anything is mirrored
                live = {"version": version, "status": status, "body": data, "ms": (time.perf_counter() - started) * 1e3}
                mirror.send(route, event, live)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    return Server((host, port), Front)


def call_function(pool: urllib3.PoolManager, target: str, event: dict) -> tuple[int, bytes, dict[str, str]]:
    """Invoke a function version with a proxy event: its answer, or API Gateway's when the integration fails."""

    def gateway(answer: gw.Answer) -> tuple[int, bytes, dict[str, str]]:
        status, body, error_type = answer
        return status, json.dumps(body).encode(), {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}

    try:
        resp = pool.request(
            "POST", target + INVOKE_PATH, body=json.dumps(event).encode(), headers={"Content-Type": "application/json"}
        )
    except urllib3.exceptions.ReadTimeoutError:
        return gateway(gw.TIMED_OUT)
    except urllib3.exceptions.HTTPError:
        return gateway(gw.INVOKE_FAILED)
    if resp.status != 200:  # Lambda refused the invocation (throttled, payload too large)
        return gateway(gw.INVOKE_FAILED)
    if resp.headers.get("X-Amz-Function-Error"):
        return gateway(gw.BAD_INTEGRATION)
    try:
        result = json.loads(resp.data)
        status = int(result.get("statusCode", 200))
        out_headers = dict(result.get("headers") or {})
        for k, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[k] = ", ".join(values)
        raw = result.get("body") or ""
        data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    except (ValueError, TypeError, AttributeError):
        return gateway(gw.BAD_INTEGRATION)
    return status, data, out_headers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Local API Gateway front for the live function version.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    p.add_argument("--routing", type=Path, required=True)
    p.add_argument("--api-key", default=os.environ.get("LOCAL_API_KEY", ""), help="key the stage requires")
    p.add_argument("--rate-limit", type=float, default=None, help="usage plan's requests per second")
    p.add_argument("--burst-limit", type=int, default=None, help="usage plan's burst")
    args = p.parse_args(argv)
    api_url = f"http://{args.host}:{args.port}"
    stage = gw.StageConfig(args.api_key, args.rate_limit, args.burst_limit)
    server = make_server(args.host, args.port, args.routing, api_url, stage)
    print(f"api front on {api_url} (routing {args.routing})", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
