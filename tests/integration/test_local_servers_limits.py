"""The local stand-ins' limits against slow and piling-up clients, and their graceful SIGTERM (loopback, bounded).

The API front, the Lambda invoke API and the SageMaker runtime stand-in share one HTTP server
(mlops/standins/http_server.py): each is checked in-process for the header deadline, the body deadline
and the connection cap; the front and the function are checked as processes for SIGTERM.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lambda_servers import serve
from test_lambda_local_stack import call, free_port
from test_serving_limits import drip, waits_then_served

from mlops.standins import api_gateway, lambda_runtime, sagemaker_runtime
from mlops.standins.http_server import Limits

REPO = Path(__file__).resolve().parents[2]
# What each stand-in is asked for: an upload path and a quick GET it answers 200.
UPLOADS = {
    "api_gateway": ("/predict", "/"),
    "lambda_runtime": (lambda_runtime.INVOKE_PATH, lambda_runtime.READY_PATH),
    "sagemaker_runtime": ("/endpoints/catdog/invocations", "/ping"),
}


@contextmanager
def standin(name: str, limits: Limits, tmp: Path) -> Iterator[tuple[str, int]]:
    """One stand-in served in this process; yields its address."""
    if name == "api_gateway":
        routing = tmp / "routing.json"
        routing.write_text("{}")
        server = api_gateway.make_server("127.0.0.1", 0, routing, "http://127.0.0.1", limits=limits)
    elif name == "lambda_runtime":
        fn = lambda_runtime.Function("lambda_probe_handler.handler", "probe", "1", 3.0, 128, 1)
        server = lambda_runtime.make_server("127.0.0.1", 0, fn, limits)
    else:
        server = sagemaker_runtime.Server(0, "http://127.0.0.1:9", limits)
    with serve(server):
        yield server.server_address[:2]


def upload_head(path: str, length: int) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    return head.encode()


def tasks() -> int:
    """Threads of this process, native ones included."""
    return len(os.listdir("/proc/self/task"))


@pytest.mark.parametrize("name", sorted(UPLOADS))
def test_headers_dripped_a_byte_at_a_time_are_cut_off(name: str, tmp_path: Path) -> None:
    _, ping = UPLOADS[name]
    with standin(name, Limits(header_timeout=1.0), tmp_path) as address:
        with socket.create_connection(address, timeout=10) as sock:
            cut = drip(sock, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, every=0.25, give_up=8)
            assert cut is not None and cut < 4, "a client sending a header byte every 0.25 s kept its connection"
        assert call(f"http://{address[0]}:{address[1]}", "GET", ping)[0] == 200


@pytest.mark.parametrize("name", sorted(UPLOADS))
def test_a_body_dripped_a_byte_at_a_time_gets_408_at_the_deadline(name: str, tmp_path: Path) -> None:
    path, ping = UPLOADS[name]
    with standin(name, Limits(body_timeout=1.5), tmp_path) as address:
        assert call(f"http://{address[0]}:{address[1]}", "GET", ping)[0] == 200  # the server's threads are up
        before = tasks()
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(upload_head(path, 100))
            started = time.monotonic()
            cut = drip(sock, b"x" * 100, every=0.25, give_up=8)
            assert cut is not None and cut < 4, "a body sent a byte every 0.25 s was still being read"
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            assert resp.status == 408 and json.loads(resp.read())
            assert time.monotonic() - started >= 1.4
        assert tasks() <= before + 1, "reading a dripped body took a thread"
        assert call(f"http://{address[0]}:{address[1]}", "GET", ping)[0] == 200


@pytest.mark.parametrize("name", sorted(UPLOADS))
def test_stalled_uploads_are_capped_and_take_no_thread_each(name: str, tmp_path: Path) -> None:
    path, ping = UPLOADS[name]
    stalled: list[socket.socket] = []
    with standin(name, Limits(max_connections=4, body_timeout=20), tmp_path) as address:
        assert call(f"http://{address[0]}:{address[1]}", "GET", ping)[0] == 200
        before = tasks()
        try:
            for _ in range(100):  # each promises 100 kB and sends 10 bytes
                sock = socket.create_connection(address, timeout=10)
                sock.sendall(upload_head(path, 100_000) + b"0123456789")
                stalled.append(sock)
            time.sleep(1.0)
            assert tasks() <= before + 2, "stalled uploads made the server start threads"
            waits_then_served(address, f"GET {ping} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), stalled)
        finally:
            for sock in stalled:
                sock.close()


@contextmanager
def started(module: str, args: list[str], ready: str, log: Path) -> Iterator[subprocess.Popen]:
    """`python -m module args`, once `ready` (a URL) answers 200; killed at the end if still running."""
    paths = [str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                url = ready.removeprefix("http://")
                if call("http://" + url.split("/", 1)[0], "GET", "/" + url.split("/", 1)[1])[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_sigterm_lets_an_answer_in_progress_go_out_then_the_front_and_the_function_exit_0(tmp_path: Path) -> None:
    fn_port, api_port = free_port(), free_port()
    fn_url, api = f"http://127.0.0.1:{fn_port}", f"http://127.0.0.1:{api_port}"
    routing = tmp_path / "routing.json"
    routing.write_text(json.dumps({"function_url": fn_url}))
    fn_args = ["--handler", "lambda_probe_handler.handler", "--port", str(fn_port), "--reserved-concurrency", "2"]
    api_args = ["--port", str(api_port), "--routing", str(routing)]
    fn_log, api_log = tmp_path / "function.log", tmp_path / "front.log"
    with (
        started("mlops.standins.lambda_runtime", fn_args, fn_url + lambda_runtime.READY_PATH, fn_log) as fn,
        started("mlops.standins.api_gateway", api_args, api + "/", api_log) as front,
    ):
        results: list[tuple] = []
        json_type = {"Content-Type": "application/json"}
        slow = threading.Thread(
            target=lambda: results.append(call(api, "POST", "/predict", b'{"sleep": 1.5}', json_type))
        )
        slow.start()
        time.sleep(0.7)  # the invocation is running in its environment
        front.send_signal(signal.SIGTERM)
        fn.send_signal(signal.SIGTERM)
        slow.join(15)
        assert results and results[0][0] == 200, (results, api_log.read_text(), fn_log.read_text())
        assert json.loads(results[0][2])["request_id"] == results[0][1]["x-amzn-RequestId"]
        assert front.wait(15) == 0 and fn.wait(15) == 0
        for port in (api_port, fn_port):  # no longer listening
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
    for text in (api_log.read_text(), fn_log.read_text()):
        assert "panicked" not in text and "Traceback" not in text, text
    assert "REPORT RequestId:" in fn_log.read_text()
