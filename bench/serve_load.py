"""HTTP load for the serving benchmark: keep-alive clients, latency and throughput runs, cold start."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from bench.cpu_meter import CpuMeter

REPO = Path(__file__).resolve().parents[1]


def pct(samples: list[float]) -> dict[str, float]:
    """Latency summary in milliseconds of samples in seconds."""
    a = np.asarray(samples or [0.0]) * 1e3
    return {
        "n": len(samples),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, url: str, path: str, headers: dict[str, str] | None = None) -> None:
        self.host, self.port, self.path = urlsplit(url).hostname, urlsplit(url).port or 80, path
        self.headers = {"Content-Type": "image/jpeg", **(headers or {})}
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> int:
        return self.exchange(body)[0]

    def exchange(self, body: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
        """(status, headers, body) of one POST."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.connect()  # no Nagle: the body goes out right behind the headers
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.conn.request("POST", self.path, body, self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, resp.headers, data
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def request_id_run(
    url: str, path: str, photos: list[bytes], n: int, concurrency: int, headers: dict[str, str] | None = None
) -> dict:
    """`n` requests over `concurrency` keep-alive clients through the API.

    Counts failures (no answer or not 200) and answers whose body `request_id` is not their own
    `x-amzn-RequestId` header (one request's answer carrying another's identity).
    """
    lock = threading.Lock()
    counts = {"ok": 0, "errors": 0, "mismatched": 0}
    statuses: dict[str, int] = {}
    next_index = iter(range(n))

    def worker() -> None:
        client = Client(url, path, headers)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            try:
                status, head, data = client.exchange(photos[i % len(photos)])
            except (OSError, http.client.HTTPException) as exc:
                status, head, data = 0, None, type(exc).__name__.encode()
            own = head.get("x-amzn-RequestId") if head is not None else None
            try:
                body_id = json.loads(data).get("request_id")
            except (ValueError, AttributeError):
                body_id = None
            with lock:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status != 200:
                    counts["errors"] += 1
                elif not own or body_id != own:
                    counts["mismatched"] += 1
                else:
                    counts["ok"] += 1
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "requests": n,
        "concurrency": concurrency,
        **counts,
        "statuses": statuses,
        "seconds": round(elapsed, 2),
        "rps": round(n / elapsed, 1),
    }


def bench_http(
    url: str,
    path: str,
    photos: list[bytes],
    n1: int,
    seconds: float,
    concurrency: int,
    meter: CpuMeter | None = None,
    headers: dict[str, str] | None = None,
) -> dict:
    """(b) latency at concurrency 1, then throughput with `concurrency` keep-alive clients for `seconds`.

    With a meter, the throughput run also reports the CPU each metered process spent per request.
    """
    client = Client(url, path, headers)
    for body in photos[:5]:
        client.post(body)
    lat, errors = [], 0
    for i in range(n1):
        t = time.perf_counter()
        try:
            ok = client.post(photos[i % len(photos)]) == 200
        except (OSError, http.client.HTTPException):
            ok = False
        lat.append(time.perf_counter() - t)
        errors += not ok
    client.close()
    c1 = {**pct(lat), "errors": errors}
    done: list[list[float]] = [[] for _ in range(concurrency)]
    failed = [0] * concurrency
    stop_at = time.perf_counter() + seconds

    def worker(k: int) -> None:
        c, i = Client(url, path, headers), k
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            try:
                ok = c.post(photos[i % len(photos)]) == 200
            except (OSError, http.client.HTTPException):
                ok = False
            (done[k].append(time.perf_counter() - t) if ok else None)
            failed[k] += not ok
            i += 1
        c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    meter = meter or CpuMeter()
    meter.start()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ok_lat = [x for d in done for x in d]
    cpu = meter.per_request(len(ok_lat) + sum(failed))
    c8 = {
        **pct(ok_lat or [0.0]),
        "errors": sum(failed),
        "seconds": round(elapsed, 2),
        "rps": round(len(ok_lat) / elapsed, 1),
        "concurrency": concurrency,
        "cpu": cpu,
    }
    return {"url": url + path, "c1": c1, "c8": c8}


def machine() -> dict:
    """The CPU the figures were measured on: model and the vector instruction sets it offers."""
    info: dict = {"cpus": os.cpu_count(), "cpu_model": "", "instruction_sets": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not info["cpu_model"]:
            info["cpu_model"] = value.strip()
        elif key.strip() == "flags" and not info["instruction_sets"]:
            wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
            flags = set(value.split())
            info["instruction_sets"] = [f for f in wanted if f in flags]
    return info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, env: dict | None = None) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "serving.server",
        "serve",
        "--model",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-request-log",
    ]
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(url: str, photo: bytes, timeout: float = 30.0, poll: float = 0.005) -> float:
    """Seconds until POST /invocations at url answers 200 (connection refused and 503 mean: not yet)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        client = Client(url, "/invocations")
        try:
            if client.post(photo) == 200:
                return time.perf_counter() - started
        except (OSError, http.client.HTTPException):
            pass
        finally:
            client.close()
        time.sleep(poll)
    raise RuntimeError(f"no answer from the model server at {url} within {timeout}s")


def cold_start(model: str, photo: bytes) -> float:
    """Seconds from spawning the server process to its first 200 answer to POST /invocations."""
    port = free_port()
    started = time.perf_counter()
    proc = start_server(model, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", photo)
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(10)
