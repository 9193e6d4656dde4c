"""The HTTP server of the local stand-ins (API front, Lambda invoke API, SageMaker runtime): Granian, embedded.

Granian, the model server's HTTP server, runs in the stand-in's own process and asyncio loop. The
socket is bound at construction with a 1024-deep listen backlog; at most `max_connections`
connections are served at once (the rest wait in the backlog, an idle keep-alive one is closed after
the header timeout); a request whose headers do not arrive within the header timeout is cut off;
bodies are read on the loop within one total deadline (Request.body), so a client dripping bytes
holds no thread; blocking work goes to a thread pool as large as the connection cap
(`asyncio.to_thread`). SIGTERM stops accepting, lets answers in progress go out, then returns.
Header names reach the handlers lower-cased, as the HTTP server hands them over.
Stdlib and granian only: lambda_runtime.py imports it also when it runs as a plain script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

BACKLOG = 1024
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
GRACEFUL_SECONDS = 30  # SIGTERM: answers in progress get this long


@dataclass(frozen=True)
class Limits:
    """How much a server takes at once and how long it waits for a request."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        parser.add_argument("--max-connections", type=int, default=max_connections, help="served at once")
        parser.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT, help="seconds")
        parser.add_argument("--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT, help="seconds, whole body")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Limits:
        return cls(max(1, args.max_connections), max(0.001, args.header_timeout), max(0.001, args.body_timeout))


class BodyTooLargeError(Exception):
    """The body (declared or received) is over the limit; `received` bytes were read."""

    def __init__(self, received: int) -> None:
        super().__init__(f"body over the limit after {received:,} bytes")
        self.received = received


class BodyTimeoutError(Exception):
    """The whole body did not arrive within the deadline."""


class ClientGoneError(Exception):
    """The client left before its whole body arrived: nobody to answer."""


@dataclass
class Request:
    method: str
    path: str  # as in the request line: path and query string
    headers: list[tuple[str, str]]  # in order, names lower-case
    client: str
    server: tuple[str, int]
    receive: Callable[[], Awaitable[dict[str, Any]]] = field(repr=False)
    consumed: bool = False  # the whole body has been read

    def unread_body(self) -> bool:
        """A body was announced and not read: the connection cannot carry another request."""
        announced = self.header("content-length") not in {"", "0"} or bool(self.header("transfer-encoding"))
        return announced and not self.consumed

    def header(self, name: str, default: str = "") -> str:
        """The first value of a header (name in lower case)."""
        return next((v for k, v in self.headers if k == name), default)

    def content_length(self) -> int | None:
        """The declared body length, None when not declared; ValueError when it is not a number."""
        raw = self.header("content-length")
        if not raw:
            return None
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError(f"invalid Content-Length {raw[:50]!r}")
        return int(raw)

    async def body(self, limit: int, timeout: float) -> bytes:
        """The whole body, read within `timeout` seconds; over `limit` bytes raises before reading on."""
        declared = self.content_length()
        if declared is not None and declared > limit:
            raise BodyTooLargeError(0)
        chunks: list[bytes] = []
        received = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await self.receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGoneError(f"client left after {received:,} bytes")
                    chunk = message.get("body", b"")
                    received += len(chunk)
                    if received > limit:
                        raise BodyTooLargeError(received)
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        self.consumed = True
                        return b"".join(chunks)
        except TimeoutError:
            raise BodyTimeoutError(f"request body not received within {timeout:g} s ({received:,} bytes)") from None


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # the connection is closed after this answer (a body left unread)
    after: Callable[[], None] | None = None  # runs once the answer is handed to the server


Handler = Callable[[Request], Awaitable[Response]]


def json_response(status: int, doc: Any, headers: dict[str, str] | None = None, close: bool = False) -> Response:
    return Response(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **(headers or {})}, close)


def asgi_app(handler: Handler) -> Callable[..., Awaitable[None]]:
    """An ASGI application that answers every HTTP request with `handler`; a crash is a 500 JSON answer."""

    async def app(
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"].rpartition(".")[2]  # startup, then shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        query = scope.get("query_string") or b""
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        request = Request(
            method=scope["method"],
            path=path + ("?" + query.decode("latin-1") if query else ""),
            headers=[(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]],
            client=(scope.get("client") or ("", 0))[0],
            server=(str(scope["server"][0]), int(scope["server"][1])),
            receive=receive,
        )
        try:
            response = await handler(request)
        except ClientGoneError:
            return
        except Exception:
            print(traceback.format_exc(limit=8), file=sys.stderr, flush=True)
            response = json_response(500, {"message": "Internal server error"}, close=True)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        headers.append((b"content-length", str(len(response.body)).encode()))
        if response.close or request.unread_body():
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if request.method == "HEAD" else response.body})
        if response.after is not None:
            response.after()

    return app


class Server:
    """A bound server with socketserver's life-cycle calls: serve_forever(), shutdown(), server_close()."""

    def __init__(self, handler: Handler, host: str, port: int, limits: Limits | None = None) -> None:
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP1Settings
        from granian.net import SocketSpec  # type: ignore[attr-defined]  # re-exported by granian.net without `as`
        from granian.server.embed import Server as Embedded

        class Bound(Embedded):
            def _init_shared_socket(self) -> None:  # bound already, in __init__ below
                pass

        self.limits = limits or Limits()
        if port:  # Granian's socket shares a port (SO_REUSEPORT): a port in use must fail here, as bind() does
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
        self._granian = Bound(
            asgi_app(handler),
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            http=HTTPModes.http1,
            websockets=False,
            runtime_threads=1,
            backlog=BACKLOG,
            backpressure=self.limits.max_connections,
            http1_settings=HTTP1Settings(header_read_timeout=max(1, round(self.limits.header_timeout * 1000))),
            log_enabled=False,
        )
        self._granian.workers_kill_timeout = GRACEFUL_SECONDS
        holder = SocketSpec(host, port, BACKLOG).build()
        with socket.socket(fileno=os.dup(holder.get_fd())) as bound:
            bound.listen(BACKLOG)  # connections queue from now on, before serve_forever starts
            self.server_address: tuple[str, int] = bound.getsockname()[:2]
        self._granian._shd = holder  # type: ignore[assignment]  # granian types _shd by its initial None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._done = threading.Event()

    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Serve until shutdown() or, in the main thread, SIGTERM or SIGINT."""
        main = threading.current_thread() is threading.main_thread()
        before = _native_threads()
        loop = asyncio.new_event_loop()
        pool = ThreadPoolExecutor(max_workers=self.limits.max_connections, thread_name_prefix="blocking")
        loop.set_default_executor(pool)
        if main:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._granian.stop)
        self._loop = loop
        try:
            if not self._stop.is_set():
                loop.run_until_complete(self._granian.serve())
        except TimeoutError:  # answers still in progress after the grace period
            pass
        finally:
            self._loop = None
            pool.shutdown(wait=False, cancel_futures=True)
            loop.close()
            _wait_for_threads(before)  # the process may exit next, which the server's threads must not outlive
            self._done.set()

    def shutdown(self) -> None:
        """Stop serving (answers in progress go out first) and wait until serve_forever has returned."""
        self._stop.set()
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._granian.stop)
            self._done.wait(GRACEFUL_SECONDS + 5)

    def server_close(self) -> None:
        """Nothing left to release: the server closes its socket when it stops."""


def _native_threads() -> set[int]:
    """Threads of this process that Python did not start: the HTTP server's own, among others."""
    try:
        tids = {int(tid) for tid in os.listdir("/proc/self/task")}
    except OSError:
        return set()
    return tids - {t.native_id for t in threading.enumerate()}


def _wait_for_threads(before: set[int], limit: float = 1.0) -> None:
    """Wait (at most `limit` seconds) until no native thread started since `before` is left."""
    deadline = time.monotonic() + limit
    while _native_threads() - before and time.monotonic() < deadline:
        time.sleep(0.005)
