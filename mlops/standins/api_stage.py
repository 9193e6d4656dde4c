"""What the local stage answers by itself, as API Gateway's REST API does before any function runs,
and which function version a request goes to (the alias's weighted routing, and shadow mirroring).

The routes and their API-key requirement mirror infra/apigw.tf; the answers (403 for a missing
key or an unknown route, 429 past the usage plan's rate and burst, 413 past the 10 MB payload
limit, 500/502/504 for a failed integration) carry API Gateway's bodies and headers.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from serving.image_contract import MAX_IMAGE_BYTES

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's request payload limit
MAX_BODY_BYTES = MAX_IMAGE_BYTES  # the web ACL's limit (infra/waf.tf max_body_bytes), the image contract's
BINARY_TYPES = ("image/", "application/octet-stream", "application/x-image", "multipart/form-data")
STAGE = "local"
# (resource, method) -> API key required; the same table as `local.methods` in infra/apigw.tf.
ROUTES: dict[tuple[str, str], bool] = {
    ("/predict", "POST"): True,
    ("/predict", "OPTIONS"): False,
    ("/health", "GET"): True,
}

# status, body, x-amzn-ErrorType of API Gateway's own answers (its default gateway responses)
FORBIDDEN = (403, {"message": "Forbidden"}, "ForbiddenException")
MISSING_TOKEN = (403, {"message": "Missing Authentication Token"}, "MissingAuthenticationTokenException")
THROTTLED = (429, {"message": "Too Many Requests"}, "TooManyRequestsException")
TOO_LARGE = (413, {"message": "Request Too Long"}, "RequestTooLargeException")
# The stage's web ACL (infra/waf.tf, rule body-too-large): a Content-Length over the largest image the
# function can take is answered 413 with this JSON before API Gateway or Lambda see the request.
WEB_ACL_TOO_LARGE = (
    413,
    {"error": f"request body too large: the limit is {MAX_IMAGE_BYTES} bytes (4.4 MiB)"},
    "WAFBlocked",
)
NO_FUNCTION = (503, {"message": "no function version is live; run `mlops promote`"}, "ServiceUnavailableException")
# A function that raised or answered something that is not a proxy result.
BAD_INTEGRATION = (502, {"message": "Internal server error"}, "InternalServerErrorException")
# Lambda refused the invocation (throttled, payload over 6 MB): API Gateway answers 500.
INVOKE_FAILED = (500, {"message": "Internal server error"}, "InternalServerErrorException")
TIMED_OUT = (504, {"message": "Endpoint request timed out"}, "IntegrationTimeoutException")

Answer = tuple[int, dict[str, Any], str]


class TokenBucket:
    """API Gateway's throttle: `rate` tokens a second into a bucket holding at most `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = float(rate), int(burst)
        self._tokens, self._at = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


@dataclass(frozen=True)
class StageConfig:
    """What the stage enforces: the usage plan's API key and throttle (None: not configured)."""

    api_key: str = ""
    rate_limit: float | None = None
    burst_limit: int | None = None

    @classmethod
    def from_routing(cls, routing: dict[str, Any], default: StageConfig) -> StageConfig:
        throttle = routing.get("throttle") or {}
        return cls(
            api_key=str(routing.get("api_key") or default.api_key),
            rate_limit=throttle.get("rate_limit", default.rate_limit),
            burst_limit=throttle.get("burst_limit", default.burst_limit),
        )


class Gate:
    """Route, key and throttle checks in API Gateway's order; the bucket is rebuilt when limits change."""

    def __init__(self) -> None:
        self._bucket: TokenBucket | None = None
        self._limits: tuple[float | None, int | None] = (None, None)
        self._lock = threading.Lock()

    def check(self, stage: StageConfig, resource: str, method: str, headers: dict[str, str]) -> Answer | None:
        needs_key = ROUTES.get((resource, method))
        if needs_key is None:
            return MISSING_TOKEN
        if needs_key and stage.api_key:
            sent = next((v for k, v in headers.items() if k.lower() == "x-api-key"), "")
            if sent != stage.api_key:
                return FORBIDDEN
        bucket = self._bucket_for(stage)
        if bucket is not None and not bucket.take():
            return THROTTLED
        return None

    def _bucket_for(self, stage: StageConfig) -> TokenBucket | None:
        limits = (stage.rate_limit, stage.burst_limit)
        with self._lock:
            if limits != self._limits:
                rate, burst = limits
                self._bucket = TokenBucket(rate, burst) if rate is not None and burst is not None else None
                self._limits = limits
            return self._bucket


class Splitter:
    """The alias's weighted routing, decided once per request: a running share sends every request to
    one version only, and over any run of n requests the candidate gets n × weight of them (± 1)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, float] | None = None
        self._share = 0.0

    def pick(self, routing: dict[str, Any]) -> tuple[str, str]:
        """(function URL, function version) for the next request."""
        primary = (routing.get("function_url") or "", str(routing.get("function_version") or ""))
        cand = routing.get("candidate") or {}
        weight = float(cand.get("weight") or 0.0)
        if not cand.get("function_url") or weight <= 0:
            return primary
        with self._lock:
            key = (cand.get("function_version"), weight)
            if key != self._key:
                self._key, self._share = key, 0.0
            self._share += weight
            if self._share < 1.0 - 1e-9:
                return primary
            self._share -= 1.0
        return cand["function_url"], str(cand.get("function_version") or "")


def _summary(status: int, body: bytes, ms: float) -> dict[str, Any]:
    label = None
    if status == 200:
        try:
            label = json.loads(body).get("label")
        except (ValueError, AttributeError):
            label = None
    return {"status": status, "label": label, "ms": round(ms, 1)}


class Mirror:
    """Shadow testing: a copy of an answered request goes to the candidate in the background; both
    answers are appended to the shadow log. The candidate's answer never reaches a client; when the
    candidate falls behind (more than `backlog` copies waiting), copies are dropped, never queued."""

    def __init__(
        self, invoke: Callable[[str, dict[str, Any]], tuple[int, bytes, dict[str, Any]]], backlog: int = 16
    ) -> None:
        self.invoke = invoke
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mirror")
        self._slots = threading.BoundedSemaphore(backlog)
        self._write = threading.Lock()

    def send(self, routing: dict[str, Any], event: dict[str, Any], live: dict[str, Any]) -> bool:
        target = routing.get("mirror") or {}
        if not target.get("function_url") or not routing.get("shadow_log"):
            return False
        if not self._slots.acquire(blocking=False):
            return False
        self._pool.submit(self._run, target, Path(routing["shadow_log"]), event, live)
        return True

    def _run(self, target: dict[str, Any], log: Path, event: dict[str, Any], live: dict[str, Any]) -> None:
        try:
            started = time.perf_counter()
            status, body, _ = self.invoke(target["function_url"], event)
            line = {
                "ts": time.time(),
                "request_id": event.get("requestContext", {}).get("requestId"),
                "live_version": live.get("version"),
                "candidate_version": str(target.get("function_version") or ""),
                "live": _summary(live["status"], live["body"], live["ms"]),
                "candidate": _summary(status, body, (time.perf_counter() - started) * 1000.0),
            }
            with self._write, log.open("a") as f:
                f.write(json.dumps(line) + "\n")
        finally:
            self._slots.release()


def new_request_id() -> str:
    return str(uuid.uuid4())


def forwarded_headers(headers: list[tuple[str, str]], host: str, port: int, source_ip: str) -> dict[str, str]:
    """The client's headers as API Gateway hands them on: names as sent, plus its own X-Forwarded-*."""
    out: dict[str, str] = {}
    for name, value in headers:
        out[name] = f"{out[name]},{value}" if name in out else value
    out.setdefault("Host", host)
    prior = out.get("X-Forwarded-For")
    out["X-Forwarded-For"] = f"{prior}, {source_ip}" if prior else source_ip
    out["X-Forwarded-Port"] = str(port)
    out["X-Forwarded-Proto"] = "http"
    out["X-Amzn-Trace-Id"] = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return out


def build_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    multi: dict[str, list[str]],
    body: bytes,
    routing: dict[str, Any],
    source_ip: str,
    request_id: str,
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event, as the real service sends it."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "").lower()
    binary = ctype.startswith(BINARY_TYPES)
    text = ""
    if not binary:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            binary = True
    payload = base64.b64encode(body).decode() if binary else text
    user_agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), "")
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": routing.get("stage_variables") or None,
        "requestContext": {
            "resourcePath": parts.path,
            "httpMethod": method,
            "path": f"/{STAGE}{parts.path}",
            "stage": STAGE,
            "requestId": request_id,
            "extendedRequestId": base64.urlsafe_b64encode(uuid.uuid4().bytes[:6]).decode(),
            "requestTimeEpoch": int(time.time() * 1000),
            "deploymentId": routing.get("deployment_id", ""),
            "apiId": "local",
            "accountId": "000000000000",
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "protocol": "HTTP/1.1",
        },
        "body": payload if body else None,
        "isBase64Encoded": binary and bool(body),
    }
