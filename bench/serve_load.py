"""HTTP load for the serving benchmark: keep-alive clients, latency and throughput runs, cold start."""

from __future__ import annotations

import http.client
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

    def __init__(self, url: str, path: str) -> None:
        self.host, self.port, self.path = urlsplit(url).hostname, urlsplit(url).port or 80, path
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> int:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.connect()  # no Nagle: the body goes out right behind the headers
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.conn.request("POST", self.path, body, {"Content-Type": "image/jpeg"})
                resp = self.conn.getresponse()
                resp.read()
                if resp.will_close:
                    self.close()
                return resp.status
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def bench_http(
    url: str, path: str, photos: list[bytes], n1: int, seconds: float, concurrency: int, meter: CpuMeter | None = None
) -> dict:
    """(b) latency at concurrency 1, then throughput with `concurrency` keep-alive clients for `seconds`.

    With a meter, the throughput run also reports the CPU each metered process spent per request.
    """
    client = Client(url, path)
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
        c, i = Client(url, path), k
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
