"""The model server's limits against slow and piling-up clients, and its SageMaker contract under load."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from serving_bad_inputs import real_jpeg
from serving_fixtures import classify, request, server_log, shared_artifact, start_model_server, stop_model_server

UPLOAD_HEAD = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_artifact(tmp_path_factory)


def waits_then_served(addr: tuple[str, int], request: bytes, stalled: list[socket.socket]) -> None:
    """Over the connection cap a new connection waits to be accepted; once the stalled ones give up
    (closed here), it is served."""
    with socket.create_connection(addr, timeout=1.5) as probe:
        probe.sendall(request)
        with pytest.raises(TimeoutError):
            probe.recv(100)
        for sock in stalled:
            sock.close()
        stalled.clear()
        probe.settimeout(10)
        assert probe.recv(100).startswith(b"HTTP/1.1 200")


def address(url: str) -> tuple[str, int]:
    return urlsplit(url).hostname or "", urlsplit(url).port or 0


def worker_threads(pid: int) -> int:
    """Threads of the server's processes: the supervisor and its workers."""
    pids = [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    return sum(len(os.listdir(f"/proc/{p}/task")) for p in pids)


def drip(sock: socket.socket, data: bytes, every: float, give_up: float) -> float | None:
    """Send `data` a byte at a time; seconds until the server cut the connection, None if it never did."""
    started = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
        if time.monotonic() - started > give_up:
            return None
        time.sleep(every)
    return None


def test_headers_dripped_a_byte_at_a_time_are_cut_off(artifact: Path) -> None:
    proc, url = start_model_server(artifact, args=("--header-timeout", "1"))
    try:
        with socket.create_connection(address(url), timeout=10) as sock:
            cut = drip(sock, b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, every=0.25, give_up=8)
            assert cut is not None and cut < 4, "a client sending a header byte every 0.25 s kept its connection"
        assert request(url, "GET", "/ping")[0] == 200
    finally:
        stop_model_server(proc)


def test_a_body_dripped_a_byte_at_a_time_gets_408_at_the_deadline(artifact: Path) -> None:
    proc, url = start_model_server(artifact, args=("--body-timeout", "1.5"))
    try:
        with socket.create_connection(address(url), timeout=10) as sock:
            sock.sendall(UPLOAD_HEAD % 100)
            started = time.monotonic()
            cut = drip(sock, b"x" * 100, every=0.25, give_up=8)
            assert cut is not None and cut < 4, "a body sent a byte every 0.25 s was still being read"
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            assert resp.status == 408
            assert "not received within 1.5 s" in json.loads(resp.read())["error"]
            assert time.monotonic() - started >= 1.4
        classify(url, real_jpeg())
    finally:
        stop_model_server(proc)


def test_stalled_uploads_are_capped_and_take_no_thread_each(artifact: Path) -> None:
    proc, url = start_model_server(artifact, args=("--max-connections", "8", "--body-timeout", "20"))
    stalled: list[socket.socket] = []
    try:
        before = worker_threads(proc.pid)
        for _ in range(300):  # each promises 100 kB and sends 10 bytes
            sock = socket.create_connection(address(url), timeout=10)
            sock.sendall(UPLOAD_HEAD % 100_000 + b"0123456789")
            stalled.append(sock)
        time.sleep(1.0)
        assert worker_threads(proc.pid) <= before + 2, "stalled uploads made the server start threads"
        waits_then_served(address(url), b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", stalled)
    finally:
        for sock in stalled:
            sock.close()
        stop_model_server(proc)


def test_ping_answers_within_two_seconds_under_load(artifact: Path) -> None:
    proc, url = start_model_server(artifact)
    stop = threading.Event()
    slowest: list[float] = []

    def load() -> None:
        while not stop.is_set():
            classify(url, real_jpeg())

    workers = [threading.Thread(target=load) for _ in range(8)]
    try:
        for t in workers:
            t.start()
        for _ in range(20):
            started = time.monotonic()
            assert request(url, "GET", "/ping")[0] == 200
            slowest.append(time.monotonic() - started)
            time.sleep(0.05)
    finally:
        stop.set()
        for t in workers:
            t.join()
        stop_model_server(proc)
    assert max(slowest) < 2.0, slowest  # SageMaker's contract for /ping


def test_sigterm_lets_an_upload_in_progress_finish_then_exits_0(artifact: Path) -> None:
    proc, url = start_model_server(artifact)
    photo = real_jpeg()
    with socket.create_connection(address(url), timeout=15) as sock:
        sock.sendall(UPLOAD_HEAD % len(photo) + photo[:1000])
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(photo[1000:])
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        assert resp.status == 200
        assert json.loads(resp.read())["label"] in ("cat", "dog")
    assert proc.wait(15) == 0
    events = [json.loads(line).get("event") for line in server_log(proc).splitlines()]
    assert events[-1] == "stopped"
    with pytest.raises(OSError):  # no longer listening
        socket.create_connection(address(url), timeout=2).close()
    stop_model_server(proc)
