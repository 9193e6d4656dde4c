"""Smoke tests tell a busy platform from a broken release: 429 and 503 answers (the API's throttle, the
endpoint at its concurrency) are retried with backoff within a bounded budget; one still refused after it
fails as "busy", and a release that answers wrongly fails as itself. Against a real HTTP server on loopback
that answers as the public API does."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlops.smoke import SmokeConfig, run_smoke

FAST = {"busy_retries": 3, "busy_backoff_s": 0.01, "latency_requests": 8, "p95_budget_ms": 2000.0}


class Api:
    """/health, and /predict answering each photo's label: `busy` requests first get 429/503, in turn;
    `wrong` answers every photo with the other label (a broken release)."""

    def __init__(self, photos: list[tuple[Path, str]]) -> None:
        self.labels = {hashlib.sha256(p.read_bytes()).hexdigest(): label for p, label in photos}
        self.busy, self.wrong, self.answered = 0, False, {"busy": 0, "ok": 0}
        self.lock = threading.Lock()

    def answer(self, path: str, ctype: str, body: bytes) -> tuple[int, dict]:
        with self.lock:
            if self.busy:
                self.busy -= 1
                self.answered["busy"] += 1
                code = 429 if self.answered["busy"] % 2 else 503
                return code, {"message": "Too Many Requests" if code == 429 else "Service Unavailable"}
            self.answered["ok"] += 1
        if path == "/health":
            return 200, {"status": "ok"}
        if ctype != "image/jpeg":
            return 400, {"error": "not an image"}
        label = self.labels.get(hashlib.sha256(body).hexdigest(), "cat")
        if self.wrong:
            label = "dog" if label == "cat" else "cat"
        return 200, {"label": label, "confidence": 0.97}


@pytest.fixture
def api(data_dir: Path) -> Iterator[tuple[str, Api, list[tuple[Path, str]]]]:
    photos = [(p, label) for label in ("cat", "dog") for p in sorted((data_dir / "test" / label).iterdir())[:3]]
    state = Api(photos)

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code, data = state.answer(self.path, self.headers.get("Content-Type", ""), body)
            raw = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _reply

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state, photos
    finally:
        server.shutdown()
        server.server_close()


def test_a_busy_moment_is_retried_and_a_good_release_passes(api) -> None:
    url, state, photos = api
    state.busy = 3  # the first three answers: throttled, at capacity, throttled (the budget is 3 retries)
    result = run_smoke(url, SmokeConfig(**FAST), photos)
    assert result.passed, result.failures
    assert state.answered["busy"] == 3 and result.checks["busy_retries"] == 3
    assert result.correct == result.total == 6 and result.checks["bad_request"] == 400


def test_a_platform_busy_beyond_the_budget_fails_as_busy_within_it(api) -> None:
    url, state, photos = api
    state.busy = 10_000  # every request refused
    started = time.monotonic()
    result = run_smoke(url, SmokeConfig(**FAST), photos)
    took = time.monotonic() - started
    assert not result.passed
    assert result.failures[0] == "GET /health answered busy: HTTP 503 after 3 retries", result.failures
    assert all("busy: HTTP" in f for f in result.failures[1:7]), result.failures
    assert "0/6 photos classified correctly with confidence ≥ 0.6 (6 of them unanswered: the API was busy)" in (
        result.failures
    )
    assert "a bad request was answered busy: HTTP 503 after 3 retries, expected a 4xx JSON error" in result.failures
    # Bounded: every request tried 1 + 3 times, waiting 0.01 + 0.02 + 0.04 s between them.
    assert state.answered["busy"] == 4 * (1 + 6 + 1 + 8 - 6) and took < 30


def test_a_broken_release_fails_as_itself_not_as_busy(api) -> None:
    url, state, photos = api
    state.wrong = True
    result = run_smoke(url, SmokeConfig(**FAST), photos)
    assert not result.passed and result.checks["busy_retries"] == 0
    assert result.failures == ["0/6 photos classified correctly with confidence ≥ 0.6"], result.failures
