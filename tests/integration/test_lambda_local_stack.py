"""The local API front and Lambda runtime answer as API Gateway and Lambda do (loopback, bounded)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from lambda_servers import serve

from mlops.standins.api_gateway import make_server
from mlops.standins.lambda_runtime import INVOKE_PATH, MAX_PAYLOAD, READY_PATH

REPO = Path(__file__).resolve().parents[2]
KEY = "local-test-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def function(tmp: Path, reserved: int, timeout: float = 5.0, handler: str = "lambda_probe_handler.handler"):
    """`python -m mlops.standins.lambda_runtime` for the probe handler; yields (url, log path)."""
    port, log = free_port(), tmp / f"function-{reserved}-{time.monotonic_ns()}.log"
    paths = [str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    args = [
        "--handler",
        handler,
        "--port",
        str(port),
        "--reserved-concurrency",
        str(reserved),
        "--timeout",
        str(timeout),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops.standins.lambda_runtime", *args], cwd=REPO, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                status, _, _ = call(url, "GET", READY_PATH)
                if status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(15)


@contextmanager
def front(tmp: Path, routing: dict) -> Iterator[str]:
    path = tmp / f"routing-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(routing))
    server = make_server("127.0.0.1", 0, path, "http://127.0.0.1")
    with serve(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def call(url: str, method: str, path: str, body: bytes = b"", headers: dict | None = None, conn=None):
    """(status, headers, body bytes) of one request."""
    own = conn is None
    if own:
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        if own:
            conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[str, str, Path]]:
    tmp = tmp_path_factory.mktemp("local-stack")
    with function(tmp, reserved=16) as (fn_url, log), front(tmp, {"function_url": fn_url, "api_key": KEY}) as api:
        yield api, fn_url, log


def keyed(extra: dict | None = None) -> dict:
    return {"x-api-key": KEY, "Content-Type": "application/json", **(extra or {})}


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("DELETE", "/predict"), ("POST", "/health")])
def test_unknown_route_or_method_is_missing_authentication_token(stack, method: str, path: str) -> None:
    api, _, _ = stack
    status, headers, body = call(api, method, path, b"{}", keyed())
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})
    assert headers["x-amzn-RequestId"] and headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_a_missing_or_wrong_api_key_is_forbidden(stack, key: str | None) -> None:
    api, _, _ = stack
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
    status, out, body = call(api, "POST", "/predict", b"{}", headers)
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert out["x-amzn-RequestId"]


def test_the_cors_preflight_needs_no_key_and_keyed_calls_reach_the_function(stack) -> None:
    api, _, _ = stack
    assert call(api, "OPTIONS", "/predict", headers={"Origin": "http://x"})[0] == 200
    status, headers, body = call(api, "POST", "/predict", b"{}", keyed())
    assert status == 200 and json.loads(body)["request_id"] == headers["x-amzn-RequestId"]


def test_headers_reach_the_function_as_api_gateway_passes_them(stack) -> None:
    # The HTTP server hands names over lower-cased: as API Gateway passes an HTTP/2 client's headers,
    # beside the Host and X-Forwarded-* it names itself.
    api, _, _ = stack
    status, _, body = call(api, "POST", "/predict", b"{}", keyed({"X-Mixed-Case": "v1"}))
    seen = json.loads(body)["headers"]
    assert status == 200 and seen["x-mixed-case"] == "v1" and "X-Mixed-Case" not in seen
    assert seen["Host"] == api.removeprefix("http://") and "host" not in seen
    assert seen["X-Forwarded-For"] == "127.0.0.1" and seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Amzn-Trace-Id"].startswith("Root=1-")


def test_a_body_over_10_mb_is_refused_with_413_before_it_is_read(stack) -> None:
    api, _, _ = stack
    host, port = api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        # Only the headers are sent: the answer must come without waiting for the 11 MB body.
        sock.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\nContent-Length: 11534336\r\n\r\n".encode()
        )
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert '{"message": "Request Too Long"}' in reply and "x-amzn-requestid:" in reply.lower()


def test_the_usage_plan_throttle_answers_429(stack, tmp_path) -> None:
    _, fn_url, _ = stack
    routing = {"function_url": fn_url, "api_key": KEY, "throttle": {"rate_limit": 1, "burst_limit": 2}}
    with front(tmp_path, routing) as api:
        statuses = [call(api, "POST", "/predict", b"{}", keyed()) for _ in range(4)]
    assert [s for s, _, _ in statuses] == [200, 200, 429, 429]
    assert json.loads(statuses[2][2]) == {"message": "Too Many Requests"}


def test_concurrent_requests_each_get_their_own_environment_and_request_id(stack) -> None:
    api, _, log = stack
    local = threading.local()

    def one(_: int) -> tuple[int, str, dict]:
        if not hasattr(local, "conn"):
            host, port = api.removeprefix("http://").split(":")
            local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        status, headers, body = call(api, "POST", "/predict", b'{"sleep": 0.01}', keyed(), conn=local.conn)
        return status, headers["x-amzn-RequestId"], json.loads(body)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(300)))
    assert [r for r in results if r[0] != 200] == []
    assert all(body["request_id"] == rid for _, rid, body in results)
    assert len({rid for _, rid, _ in results}) == 300
    assert max(body["in_flight"] for _, _, body in results) == 1  # never two invocations in one environment
    environments = {body["pid"] for _, _, body in results}
    assert 2 <= len(environments) <= 16
    text = log.read_text()
    assert text.count("Init Duration:") == len(environments)  # one cold start per environment
    assert text.count("REPORT RequestId:") >= 300 and "Max Memory Used:" in text


def test_past_the_reserved_concurrency_lambda_throttles_and_the_api_answers_500(tmp_path) -> None:
    with function(tmp_path, reserved=1) as (fn_url, _), front(tmp_path, {"function_url": fn_url}) as api:
        slow = threading.Thread(target=call, args=(fn_url, "POST", INVOKE_PATH, b'{"body": "{\\"sleep\\": 1.5}"}'))
        slow.start()
        time.sleep(0.5)
        status, headers, body = call(fn_url, "POST", INVOKE_PATH, b"{}")
        assert status == 429 and headers["x-amzn-ErrorType"] == "TooManyRequestsException"
        status, headers, body = call(api, "POST", "/predict", b"{}", {"Content-Type": "application/json"})
        assert (status, json.loads(body)) == (500, {"message": "Internal server error"})
        slow.join()


def test_lambda_refuses_payloads_over_6_mb(stack) -> None:
    api, fn_url, _ = stack
    status, headers, _ = call(fn_url, "POST", INVOKE_PATH, b"{" + b" " * MAX_PAYLOAD + b"}")
    assert status == 413 and headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    # A 4.5 MiB photo would be a ~6.3 MB base64 event, over Lambda's limit: the stage's web ACL answers
    # 413 JSON from the headers alone, never a 5xx.
    host, port = api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {9 * 512 * 1024}\r\n\r\n".encode()
        )
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert '"error": "request body too large: the limit is 4613734 bytes (4.4 MiB)"' in reply


def test_a_handler_error_or_timeout_is_a_502_and_a_timed_out_environment_is_replaced(tmp_path) -> None:
    with function(tmp_path, reserved=2, timeout=1.0) as (fn_url, log), front(tmp_path, {"function_url": fn_url}) as api:
        json_type = {"Content-Type": "application/json"}
        status, _, body = call(api, "POST", "/predict", b'{"raise": true}', json_type)
        assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
        first = json.loads(call(api, "POST", "/predict", b"{}", json_type)[2])["pid"]
        status, _, _ = call(api, "POST", "/predict", b'{"sleep": 3}', json_type)
        assert status == 502 and "Task timed out after 1.00 seconds" in log.read_text()
        after = json.loads(call(api, "POST", "/predict", b"{}", json_type)[2])["pid"]
        assert after != first  # the environment that timed out was discarded; a new one started cold
