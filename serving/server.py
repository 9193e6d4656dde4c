"""Model server for SageMaker hosting: GET /ping and POST /invocations on port 8080 (threaded stdlib HTTP)."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from serving.accesslog import LineLog
from serving.payload import RequestError, check_accept, image_bytes
from serving.runtime_api import RUNTIME_PATH, runtime_answer
from serving.settings import Settings, parse_settings

if TYPE_CHECKING:
    from serving.engine import ModelEngine

ROUTES: dict[str, tuple[str, ...]] = {"/ping": ("GET", "HEAD"), "/invocations": ("POST",)}
IDLE_TIMEOUT_SECONDS = 60.0


class ClientGoneError(Exception):
    """The client closed the connection or stalled before its request body arrived."""


class App:
    """What the request handlers share: the engine (None until loaded), limits and the log."""

    def __init__(self, settings: Settings, log: LineLog) -> None:
        self.settings = settings
        self.log = log
        self.engine: ModelEngine | None = None
        self.inflight = 0
        self._lock = threading.Lock()

    def track(self, delta: int) -> None:
        with self._lock:
            self.inflight += delta


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class Handler(BaseHTTPRequestHandler):
    """One keep-alive connection: every method goes through dispatch(), every answer is JSON."""

    protocol_version = "HTTP/1.1"
    server_version = "catdog-serving"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_SECONDS
    server: Server

    def dispatch(self) -> None:
        app = self.server.app
        started = time.perf_counter()
        app.track(1)
        self._body_read = False
        path = self.path.split("?", 1)[0]
        allowed = ROUTES.get(path)
        endpoint = None
        if allowed is None and (match := RUNTIME_PATH.fullmatch(path)):
            allowed, endpoint = ("POST",), unquote(match.group(1))
        headers: dict[str, str] = {}
        try:
            if allowed is None:
                raise RequestError(404, f"no such path {path[:200]!r}: use GET /ping or POST /invocations")
            if self.command not in allowed:
                headers["Allow"] = ", ".join(allowed)
                raise RequestError(405, f"method {self.command} not allowed on {path}: use {headers['Allow']}")
            status, doc = self.ping(app) if path == "/ping" else self.invoke(app)
        except RequestError as exc:
            status, doc = exc.status, {"error": exc.message}
        except ClientGoneError:
            self.close_connection = True
            app.track(-1)
            return
        except Exception:
            app.log.event(event="error", path=path, error=traceback.format_exc(limit=8))
            status, doc = 500, {"error": "internal server error"}
        if endpoint is not None and self.command == "POST":  # reached the model: answer as the runtime API
            status, doc, headers = runtime_answer(status, doc)
        out = self.respond(status, doc, headers)
        app.track(-1)
        app.log.request(
            method=self.command,
            path=path,
            status=status,
            ms=round((time.perf_counter() - started) * 1e3, 2),
            bytes_in=self.headers.get("Content-Length"),
            bytes_out=out,
            **({"label": doc["label"]} if status == 200 and "label" in doc else {}),
            **({"error": doc.get("error") or doc.get("message")} if status >= 400 else {}),
        )

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = dispatch

    def ping(self, app: App) -> tuple[int, dict[str, Any]]:
        if app.engine is None:
            raise RequestError(503, "model is loading")
        return 200, {"status": "ok", "model_version": app.engine.version}

    def invoke(self, app: App) -> tuple[int, dict[str, Any]]:
        engine = app.engine
        if engine is None:
            raise RequestError(503, "model is loading: retry when GET /ping answers 200")
        body = self.read_body(app.settings.max_request_bytes)
        check_accept(self.headers.get("Accept"))
        return 200, engine.predict(image_bytes(self.headers.get("Content-Type"), body))

    def read_body(self, limit: int) -> bytes:
        """The request body, refused by its declared length before a byte of it is read."""
        if self.headers.get("Transfer-Encoding"):
            raise RequestError(411, "chunked request bodies are not accepted: send a Content-Length header")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            raise RequestError(411, "Content-Length header required")
        raw = lengths[0].strip()
        if len(set(lengths)) > 1 or not (raw.isascii() and raw.isdigit()):
            raise RequestError(400, f"invalid Content-Length header {', '.join(lengths)[:50]!r}")
        size = int(raw)
        if size > limit:
            raise RequestError(413, f"request body of {size:,} bytes is over the {limit:,}-byte limit")
        try:
            body = self.rfile.read(size)
        except (TimeoutError, ConnectionError) as exc:
            raise ClientGoneError from exc
        if len(body) != size:
            raise ClientGoneError
        self._body_read = True
        return body

    def respond(self, status: int, doc: dict[str, Any] | None, headers: dict[str, str] | None = None) -> int:
        """Send status, headers and JSON body in a single write; return the body size."""
        body = json.dumps(doc, separators=(",", ":")).encode() if doc is not None else b""
        sent = getattr(self, "headers", None) or {}
        has_body = self.command == "POST" or "Content-Length" in sent or "Transfer-Encoding" in sent
        if status >= 400 and has_body and not getattr(self, "_body_read", False):
            self.close_connection = True  # the unread body would be taken for the next request
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        lines = [
            f"HTTP/1.1 {status} {phrase}",
            f"Date: {http_date()}",
            f"Server: {self.server_version}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head if self.command == "HEAD" else head + body)
        except OSError:
            self.close_connection = True
        return len(body)

    def handle_expect_100(self) -> bool:
        """Refuse an over-limit body before the client sends it (curl waits for 100 Continue)."""
        length = (self.headers.get("Content-Length") or "").strip()
        if length.isascii() and length.isdigit() and int(length) > self.server.app.settings.max_request_bytes:
            self.command = self.command or "POST"
            self.send_error(
                413,
                f"request body of {int(length):,} bytes is over the "
                f"{self.server.app.settings.max_request_bytes:,}-byte limit",
            )
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, header limits, unknown method) as JSON too."""
        if code == 501:
            code, message = 405, f"method {self.command!r} not allowed"
        elif code == 505:  # a bad request all the same: answer 4xx like every other
            code, message = 400, f"unsupported HTTP version: {message}"
        self.close_connection = True
        error = message or HTTPStatus(code).phrase
        self.respond(code, {"error": error})
        self.server.app.log.request(
            method=getattr(self, "command", None), path=getattr(self, "path", None), status=code, error=error
        )

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the base class's access log; dispatch() writes a JSON line instead."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):  # the client went away: nothing to fix here
            self.app.log.request(event="disconnect", error=f"{type(exc).__name__}: {exc}")
        else:
            self.app.log.event(event="error", error=traceback.format_exc(limit=8))


def load_engine(settings: Settings) -> ModelEngine:
    """Open the artifact (extracting a model.tar.gz to a temporary folder) and build the engine."""
    from serving.artifact import open_artifact
    from serving.engine import EngineOptions, ModelEngine

    workdir = None
    if os.path.isfile(settings.model):
        workdir = tempfile.mkdtemp(prefix="model-")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    artifact = open_artifact(settings.model, workdir)
    options = EngineOptions(
        threads=settings.threads, max_concurrency=settings.max_concurrency, spin_us=settings.spin_us
    )
    return ModelEngine(artifact, options, settings.model_version)


def main(argv: list[str] | None = None) -> int:
    """Entry point (`serve`, or `python -m serving.server`): listen, load the model, serve until SIGTERM."""
    started = time.perf_counter()
    settings = parse_settings(argv)
    log = LineLog(enabled=settings.log_requests)
    app = App(settings, log)
    try:
        server = Server((settings.host, settings.port), app)
    except OSError as exc:
        log.event(event="error", error=f"cannot listen on {settings.host}:{settings.port}: {exc}")
        log.close()
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    log.event(event="listening", host=settings.host, port=server.server_address[1], pid=os.getpid())
    code = 0
    try:
        app.engine = load_engine(settings)
        log.event(
            event="ready",
            model=settings.model,
            version=app.engine.version,
            serving_model=app.engine.artifact.serving_model_path.name,
            seconds=round(time.perf_counter() - started, 3),
        )
        stop.wait()
    except Exception as exc:
        log.event(event="error", error=f"cannot load the model from {settings.model}: {exc}")
        code = 1
    server.shutdown()
    deadline = time.monotonic() + 10
    while app.inflight and time.monotonic() < deadline:  # let answers in progress go out
        time.sleep(0.01)
    server.server_close()
    log.event(event="stopped", code=code)
    log.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
