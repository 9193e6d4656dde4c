"""The local API Gateway: HTTP requests become REST API proxy events for the live function version.

Routing (which function version is behind alias `live`, the stage's deployment and variables,
and optionally its API key and throttle) is read from routing.json, which the local backend
rewrites atomically on every switch; in-flight requests finish where they started. The stage's
own answers (unknown route, API key, throttle, payload limit) come from mlops.standins.api_stage.
While a release shifts traffic, the alias's weight decides per request which function version
answers it (api_stage.Splitter); while a candidate is shadow-tested, each answered POST /predict is
also sent, after the client has its answer, to the candidate, and both answers are logged
(api_stage.Mirror). `/` serves the web page. The HTTP server is the stand-ins' own (http_server.py):
capped connections, header and body deadlines, graceful SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from mlops.standins import api_stage as gw
from mlops.standins.http_server import (
    BodyTimeoutError,
    BodyTooLargeError,
    Limits,
    Request,
    Response,
    Server,
)
from mlops.standins.lambda_runtime import INVOKE_PATH
from mlops.web_page import render as render_page

INTEGRATION_TIMEOUT = 29.0  # API Gateway's REST integration timeout
REQUEST_TIMEOUT = (408, {"message": "Request Timeout"}, "RequestTimeoutException")  # a body too slow to arrive
# The HTTP server hands header names over lower-cased, as API Gateway passes those of an HTTP/2 client;
# Host and X-Forwarded-For are named as API Gateway names the ones it sets.
GATEWAY_NAMES = {"host": "Host", "x-forwarded-for": "X-Forwarded-For"}
UNFORWARDED = {"content-length", "connection", "transfer-encoding", "x-amzn-requestid"}


class Routing:
    """routing.json, re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1.0
        self.data: dict[str, Any] = {}

    def current(self) -> dict[str, Any]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self.data, self._mtime = {}, -1.0
            return self.data
        if mtime != self._mtime:
            self.data = json.loads(self.path.read_text())
            self._mtime = mtime
        return self.data


def reply(status: int, body: bytes, headers: dict[str, str], request_id: str, close: bool = False) -> Response:
    """An answer carrying API Gateway's x-amzn-RequestId."""
    out = {k: v for k, v in headers.items() if k.lower() not in UNFORWARDED}
    return Response(status, body, {**out, "x-amzn-RequestId": request_id}, close)


def answer(given: gw.Answer, request_id: str, close: bool = False) -> Response:
    """One of the stage's own answers."""
    status, body, error_type = given
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
    return reply(status, json.dumps(body).encode(), headers, request_id, close)


def make_server(
    host: str,
    port: int,
    routing_path: Path,
    api_url: str,
    stage: gw.StageConfig | None = None,
    limits: Limits | None = None,
) -> Server:
    routing = Routing(routing_path)
    default_stage = stage or gw.StageConfig()
    limits = limits or Limits()
    gate = gw.Gate()
    pool = urllib3.PoolManager(
        maxsize=64, retries=False, timeout=urllib3.Timeout(connect=2.0, read=INTEGRATION_TIMEOUT)
    )
    splitter = gw.Splitter()
    mirror = gw.Mirror(lambda url, event: call_function(pool, url, event))

    async def handle(req: Request) -> Response:
        request_id = gw.new_request_id()
        route = routing.current()
        stage = gw.StageConfig.from_routing(route, default_stage)
        resource = urlsplit(req.path).path
        if req.method == "GET" and resource in {"/", "/index.html"}:
            html = render_page(api_url, stage.api_key).encode()
            page_headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
            return reply(200, html, page_headers, request_id)
        try:
            length = req.content_length()
        except ValueError:
            return reply(400, b'{"message": "Bad Request"}', {"Content-Type": "application/json"}, request_id, True)
        if length is not None and gw.MAX_BODY_BYTES < length <= gw.MAX_PAYLOAD:  # the web ACL, before the body
            return answer(gw.WEB_ACL_TOO_LARGE, request_id, close=True)
        try:
            body = await req.body(gw.MAX_PAYLOAD, limits.body_timeout)
        except BodyTooLargeError:  # answered before the body is read; the connection cannot be reused
            return answer(gw.TOO_LARGE, request_id, close=True)
        except BodyTimeoutError:
            return answer(REQUEST_TIMEOUT, request_id, close=True)
        refusal = gate.check(stage, resource, req.method, dict(req.headers))
        if refusal is not None:
            return answer(refusal, request_id)
        target, version = splitter.pick(route)
        if not target:
            return answer(gw.NO_FUNCTION, request_id)
        server_host, server_port = req.server
        passed = [(GATEWAY_NAMES.get(k, k), v) for k, v in req.headers]
        headers = gw.forwarded_headers(passed, f"{server_host}:{server_port}", server_port, req.client)
        multi: dict[str, list[str]] = {}
        for k, v in passed:
            multi.setdefault(k, []).append(v)
        event = gw.build_event(req.method, req.path, headers, multi, body, route, req.client, request_id)
        started = time.perf_counter()
        status, data, out_headers = await asyncio.to_thread(call_function, pool, target, event)
        response = reply(status, data, out_headers, request_id)
        if (req.method, resource) == ("POST", "/predict"):  # mirrored once the client has its answer

            def mirrored() -> None:
                live = {"version": version, "status": status, "body": data, "ms": (time.perf_counter() - started) * 1e3}
                mirror.send(route, event, live)

            response.after = mirrored
        return response

    return Server(handle, host, port, limits)


def call_function(pool: urllib3.PoolManager, target: str, event: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
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
    Limits.add_arguments(p)
    args = p.parse_args(argv)
    api_url = f"http://{args.host}:{args.port}"
    stage = gw.StageConfig(args.api_key, args.rate_limit, args.burst_limit)
    try:
        server = make_server(args.host, args.port, args.routing, api_url, stage, Limits.from_args(args))
    except OSError as exc:
        print(f"api front: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"api front on {api_url} (routing {args.routing})", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
