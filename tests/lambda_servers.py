"""Loopback HTTP servers for the Lambda tests: a SageMaker runtime impersonator and an image host."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lambda_support import MODEL_ANSWER

# --- a loopback SageMaker runtime -------------------------------------------------------------

_INVOKE_RE = re.compile(r"^/endpoints/([^/]+)/invocations$")


def _model_error(original_status: int, message: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    original = json.dumps({"error": message})
    body = {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if original_status < 500 else "SERVER_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
        "Message": f'Received client error ({original_status}) from primary with message "{original}".',
        "OriginalMessage": original,
        "OriginalStatusCode": original_status,
    }
    return (
        424,
        {"x-amzn-ErrorType": "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"},
        body,
    )


def _aws_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    return (
        status,
        {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"},
        {"message": message},
    )


# Endpoint name -> behaviour of the fake runtime.
BEHAVIOURS: dict[str, Callable[[], tuple[int, dict[str, str], Any]]] = {
    "model-400": lambda: _model_error(400, "not a decodable image: cannot identify image file"),
    "model-413": lambda: _model_error(413, "image too large: 9000x9000 pixels"),
    "model-500": lambda: _model_error(500, "inference session crashed"),
    "throttled": lambda: _aws_error(400, "ThrottlingException", "Rate exceeded"),
    "unavailable": lambda: _aws_error(503, "ServiceUnavailable", "Service unavailable"),
    "missing": lambda: _aws_error(400, "ValidationError", "Endpoint missing of account 123 not found."),
    "garbage": lambda: (200, {}, "this is not json"),
}


@dataclass
class RecordedCall:
    endpoint: str
    content_type: str
    accept: str
    body: bytes
    signed: bool


class _RuntimeHandler(BaseHTTPRequestHandler):
    server: FakeRuntime
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects from the real service
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        match = _INVOKE_RE.match(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if not match:
            self._send(404, {}, {"message": "no such route"})
            return
        name = match.group(1)
        self.server.calls.append(
            RecordedCall(
                endpoint=name,
                content_type=self.headers.get("Content-Type", ""),
                accept=self.headers.get("Accept", ""),
                body=body,
                signed=self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"),
            )
        )
        if name.startswith("slow"):
            time.sleep(self.server.slow_seconds)
        status, headers, payload = BEHAVIOURS.get(name, lambda: (200, {}, self.server.answer))()
        self._send(status, headers, payload)

    def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)


class FakeRuntime(ThreadingHTTPServer):
    """POST /endpoints/{name}/invocations like the SageMaker runtime; the name picks the behaviour."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeHandler)
        self.calls: list[RecordedCall] = []
        self.answer: dict[str, Any] = dict(MODEL_ANSWER)
        self.slow_seconds = 1.5

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serve(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- a loopback image host (for image_url) ----------------------------------------------------

Route = tuple[int, dict[str, str], bytes]


class _ImageHostHandler(BaseHTTPRequestHandler):
    server: ImageHost

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        status, headers, body = self.server.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"nope"))
        headers = {"Content-Length": str(len(body)), **headers}
        # Test knobs: X-Test-Sleep delays the answer; an empty Content-Length sends the body until close.
        time.sleep(float(headers.pop("X-Test-Sleep", 0)))
        self.send_response(status)
        for key, value in headers.items():
            if value != "":
                self.send_header(key, value)
        self.end_headers()
        with suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


class ImageHost(ThreadingHTTPServer):
    """Serves fixed answers per path; routes map path -> (status, headers, body)."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), _ImageHostHandler)
        self.routes = routes
        self.requests: list[tuple[str, str]] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


# --- a loopback server that drips its answer one byte at a time -------------------------------


class DripServer:
    """Answers every connection by sending `prefix`, then one byte of `drip` every `interval` seconds.

    It stops at the first failed write (the client hung up) or after `limit` seconds, so a test
    using it is bounded even when the client under test never gives up.
    """

    def __init__(self, prefix: bytes, drip: bytes, interval: float = 0.05, limit: float = 10.0) -> None:
        import socket

        self.prefix, self.drip, self.interval, self.limit = prefix, drip, interval, limit
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.hung_up_after: list[float] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DripServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self._thread.join(timeout=self.limit + 1)

    def _serve(self) -> None:
        with suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                conn.recv(65536)
                start = time.monotonic()
                try:
                    conn.sendall(self.prefix)
                    for byte in self.drip:
                        if time.monotonic() - start > self.limit:
                            return
                        time.sleep(self.interval)
                        conn.sendall(bytes([byte]))
                except OSError:
                    self.hung_up_after.append(time.monotonic() - start)
