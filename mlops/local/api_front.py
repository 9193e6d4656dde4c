"""The local API Gateway: HTTP requests become REST API proxy events for the live function version.

Routing (which function version is behind alias `live`, and the stage's deployment and
variables) is read from routing.json, which the local backend rewrites atomically on every
switch; in-flight requests finish where they started. `/` serves the web page.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3

from mlops.local.lambda_runtime import INVOKE_PATH
from mlops.web_page import render as render_page

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's request payload limit
BINARY_TYPES = ("image/", "application/octet-stream", "application/x-image")
STAGE = "local"


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


def build_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, routing: dict, source_ip: str
) -> dict:
    """An API Gateway REST API (v1) Lambda proxy event, as the real service sends it."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    ctype = headers.get("content-type", "").lower()
    binary = ctype.startswith(BINARY_TYPES)
    if not binary:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            binary = True
    payload = base64.b64encode(body).decode() if binary else text
    stage_vars = routing.get("stage_variables") or None
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": stage_vars,
        "requestContext": {
            "resourcePath": parts.path,
            "httpMethod": method,
            "path": f"/{STAGE}{parts.path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "deploymentId": routing.get("deployment_id", ""),
            "apiId": "local",
            "accountId": "000000000000",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
            "protocol": "HTTP/1.1",
        },
        "body": payload if body else None,
        "isBase64Encoded": binary and bool(body),
    }


def make_server(host: str, port: int, routing_path: Path, api_url: str) -> ThreadingHTTPServer:
    routing = Routing(routing_path)
    pool = urllib3.PoolManager(maxsize=32, retries=False, timeout=urllib3.Timeout(connect=2.0, read=29.0))

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = 1 << 16  # status line, headers and body leave in one write (flushed after each request)

        def log_message(self, *args: Any) -> None:
            return

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in {"content-length", "connection", "transfer-encoding"}:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: dict) -> None:
            self._reply(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

        def _page(self) -> None:
            html = render_page(api_url)
            self._reply(200, html.encode(), {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})

        def _handle(self) -> None:
            method = self.command
            if method == "GET" and urlsplit(self.path).path in {"/", "/index.html"}:
                self._page()
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_PAYLOAD:
                self.close_connection = True
                self._json(413, {"message": "Request Entity Too Large"})
                return
            body = self.rfile.read(length) if length else b""
            route = routing.current()
            target = route.get("function_url")
            if not target:
                self._json(503, {"message": "no function version is live; run `mlops promote`"})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            event = build_event(method, self.path, headers, body, route, self.client_address[0])
            try:
                resp = pool.request(
                    "POST",
                    target + INVOKE_PATH,
                    body=json.dumps(event).encode(),
                    headers={"Content-Type": "application/json"},
                )
            except urllib3.exceptions.HTTPError:
                self._json(502, {"message": "Internal server error"})
                return
            if resp.status != 200 or resp.headers.get("X-Amz-Function-Error"):
                self._json(502, {"message": "Internal server error"})
                return
            try:
                result = json.loads(resp.data)
                status = int(result.get("statusCode", 200))
                out_headers = dict(result.get("headers") or {})
                for k, values in (result.get("multiValueHeaders") or {}).items():
                    out_headers[k] = ", ".join(values)
                raw = result.get("body") or ""
                data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
            except (ValueError, TypeError, AttributeError):
                self._json(502, {"message": "Internal server error"})
                return
            self._reply(status, data, out_headers)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    server = ThreadingHTTPServer((host, port), Front)
    server.daemon_threads = True
    server.request_queue_size = 128
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Local API Gateway front for the live function version.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    p.add_argument("--routing", type=Path, required=True)
    args = p.parse_args(argv)
    api_url = f"http://{args.host}:{args.port}"
    server = make_server(args.host, args.port, args.routing, api_url)
    print(f"api front on {api_url} (routing {args.routing})", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
