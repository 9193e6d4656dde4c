"""Post-deploy smoke tests through the public API: real photos, a bad request, a latency budget.

The photos are the candidate's own smoke set (training/smoke_set.py), unless a folder is given. A request
answered 429 or 503 (the API's throttle, the endpoint at its concurrency) is retried with backoff within a
bounded budget, and one still refused after it fails as "busy", not as a verdict on the release."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from mlops.backends.base import Backend, BackendError, ModelVersion
from training.smoke_set import SmokeSetError, read_smoke_set

LABELS = ("cat", "dog")
BUSY = (429, 503)  # the platform at capacity: say so, and retry, rather than judge the release


@dataclass
class SmokeConfig:
    photos_dir: Path | None = None  # a folder with cat/ and dog/ (e.g. DATA_DIR/test); None = the version's set
    photos_per_class: int = 5
    min_confidence: float = 0.6
    min_correct_fraction: float = 0.8
    latency_requests: int = 20
    p95_budget_ms: float = float(os.environ.get("SMOKE_P95_BUDGET_MS", "500"))
    timeout_s: float = 10.0
    busy_retries: int = 4  # per request; waits busy_backoff_s, then twice as long each time (3.75 s at most)
    busy_backoff_s: float = 0.25
    api_key: str = field(default_factory=lambda: os.environ.get("API_KEY", ""))


@dataclass
class SmokeResult:
    passed: bool
    failures: list[str]
    correct: int
    total: int
    p50_ms: float
    p95_ms: float
    checks: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SmokeSetupError(FileNotFoundError):
    """The smoke tests cannot run at all (no photos, or not the registered ones): nothing should be switched."""


def folder_photos(root: Path, per_class: int) -> list[tuple[Path, str]]:
    """Photos from a folder with cat/ and dog/ (SMOKE_PHOTOS_DIR or --photos), per_class of each."""
    if not all((root / label).is_dir() for label in LABELS):
        raise SmokeSetupError(f"no smoke-test photos: {root} needs {'/ and '.join(LABELS)}/ folders")
    photos: list[tuple[Path, str]] = []
    for label in LABELS:
        files = sorted(p for p in (root / label).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        photos.extend((p, label) for p in files[:per_class])
    if not photos:
        raise SmokeSetupError(f"no smoke-test photos under {root}/{{cat,dog}}")
    return photos


def smoke_photos(
    cfg: SmokeConfig, backend: Backend | None = None, version: ModelVersion | None = None
) -> list[tuple[Path, str]]:
    """The labelled photos the smoke tests send; SmokeSetupError (one line) when they cannot be had.

    cfg.photos_dir (SMOKE_PHOTOS_DIR, --photos) when set; otherwise the version's own smoke set, as
    the pipeline registered it beside the model, fetched through the backend and checked against the
    manifest's registered SHA-256. Nothing is downloaded from anywhere else."""
    if cfg.photos_dir is not None:
        return folder_photos(cfg.photos_dir, cfg.photos_per_class)
    if backend is None or version is None:
        raise SmokeSetupError("no smoke-test photos: name a model version, or pass --photos / SMOKE_PHOTOS_DIR")
    try:
        return read_smoke_set(backend.smoke_set(version), version.smoke_sha256, LABELS)
    except (BackendError, SmokeSetError) as exc:
        raise SmokeSetupError(f"the smoke set of model version {version.version} cannot be used: {exc}") from None


def live_photos(cfg: SmokeConfig, backend: Backend) -> list[tuple[Path, str]]:
    """The photos for smoke-testing what is live now: the override, else the live version's own set."""
    if cfg.photos_dir is not None:
        return smoke_photos(cfg)
    live = backend.live_release()
    if live is None:
        raise SmokeSetupError("no smoke-test photos: nothing is live; pass --photos / SMOKE_PHOTOS_DIR")
    try:
        version = backend.get_version(live.model_version)
    except BackendError as exc:
        raise SmokeSetupError(f"no smoke-test photos: {exc}") from None
    return smoke_photos(cfg, backend, version)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class ApiClient:
    """Requests to the stage's public API with the smoke key; a busy answer (429, 503) is retried with backoff."""

    def __init__(self, api_url: str, cfg: SmokeConfig) -> None:
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(total=cfg.timeout_s), retries=False)
        self.base, self.cfg = api_url.rstrip("/"), cfg
        # The key as of this run: `session()` exports API_KEY after the command built its SmokeConfig.
        api_key = cfg.api_key or os.environ.get("API_KEY", "")
        self.headers = {"x-api-key": api_key} if api_key else {}
        self.busy_retries = 0
        self.answered = 0  # requests answered by the stage (any status but a busy one)

    def call(
        self, method: str, path: str, body: bytes | None = None, ctype: str | None = None
    ) -> tuple[int | None, Any, float, str]:
        """(status, JSON body, milliseconds of the last attempt, error); busy answers are retried first."""
        h = dict(self.headers, **({"Content-Type": ctype} if ctype else {}))
        for attempt in range(self.cfg.busy_retries + 1):
            if attempt:
                self.busy_retries += 1
                time.sleep(self.cfg.busy_backoff_s * 2 ** (attempt - 1))
            start = time.perf_counter()
            try:
                resp = self.http.request(method, self.base + path, body=body, headers=h)
            except urllib3.exceptions.HTTPError as exc:
                return None, {}, (time.perf_counter() - start) * 1000, str(exc)
            ms = (time.perf_counter() - start) * 1000
            if resp.status not in BUSY:
                break
        try:
            data = json.loads(resp.data or b"{}")
        except ValueError:
            data = {}
        if resp.status in BUSY:
            return resp.status, data, ms, f"busy: HTTP {resp.status} after {self.cfg.busy_retries} retries"
        self.answered += 1
        return resp.status, data, ms, ""


def bake_probe(api_url: str, cfg: SmokeConfig, photos: list[tuple[Path, str]]) -> Callable[[], str]:
    """One synthetic request per call, the photos in turn, through the public API with the smoke key: what a
    bake sends when clients are quiet. Returns "" when it was answered 200, else why not."""
    client, turn = ApiClient(api_url, cfg), iter(range(1 << 62))

    def probe() -> str:
        path, _ = photos[next(turn) % len(photos)]
        status, data, _, err = client.call("POST", "/predict", path.read_bytes(), "image/jpeg")
        return "" if status == 200 else f"{path.name}: {err or f'HTTP {status}'} {data.get('error', '')}".strip()

    return probe


def run_smoke(api_url: str, cfg: SmokeConfig, photos: list[tuple[Path, str]] | None = None) -> SmokeResult:
    """Every check runs; the result lists each failure in one line."""
    client = ApiClient(api_url, cfg)
    call = client.call
    failures: list[str] = []
    checks: dict[str, Any] = {}

    status, _, _, err = call("GET", "/health")
    checks["health"] = status
    if status != 200:
        failures.append(f"GET /health answered {err or status}")

    correct, latencies, busy = 0, [], 0
    photos = photos or smoke_photos(cfg)
    for path, truth in photos:
        status, data, ms, err = call("POST", "/predict", path.read_bytes(), "image/jpeg")
        latencies.append(ms)
        busy += status in BUSY
        ok = status == 200 and data.get("label") == truth and float(data.get("confidence", 0)) >= cfg.min_confidence
        correct += ok
        if status != 200:
            failures.append(f"{path.name}: {err or f'HTTP {status}'} {data.get('error', '')}".strip())
    fraction = correct / len(photos)
    checks["photos"] = {"correct": correct, "total": len(photos)}
    if fraction < cfg.min_correct_fraction:
        failures.append(
            f"{correct}/{len(photos)} photos classified correctly with confidence ≥ {cfg.min_confidence}"
            + (f" ({busy} of them unanswered: the API was busy)" if busy else "")
        )

    status, data, _, err = call("POST", "/predict", b"this is not an image", "text/plain")
    checks["bad_request"] = status
    if status is None or status in BUSY or not 400 <= status < 500 or "error" not in data:
        failures.append(f"a bad request was answered {err or status}, expected a 4xx JSON error")

    i = 0
    while len(latencies) < cfg.latency_requests:
        path, _ = photos[i % len(photos)]
        status, _, ms, _ = call("POST", "/predict", path.read_bytes(), "image/jpeg")
        latencies.append(ms if status == 200 else cfg.timeout_s * 1000)
        i += 1
    p50, p95 = statistics.median(latencies), _percentile(latencies, 0.95)
    checks["latency_ms"] = {"p50": round(p50, 1), "p95": round(p95, 1), "budget_p95": cfg.p95_budget_ms}
    if p95 > cfg.p95_budget_ms:
        failures.append(f"p95 latency {p95:.0f} ms over the {cfg.p95_budget_ms:.0f} ms budget")
    checks["busy_retries"], checks["answered"] = client.busy_retries, client.answered
    return SmokeResult(not failures, failures, correct, len(photos), round(p50, 1), round(p95, 1), checks)
