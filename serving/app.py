"""The model server's ASGI application: GET /ping and POST /invocations, every answer JSON.

It runs in the HTTP server's worker process (serving/server.py starts Granian). The model loads in
a background thread after the worker starts, so /ping answers 503 at once and 200 when it is ready.
Bodies are read with a total deadline; inference runs on a small thread pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from serving.accesslog import LineLog
from serving.payload import RequestError, check_accept, image_bytes
from serving.settings import Settings

if TYPE_CHECKING:
    from serving.engine import ModelEngine

ROUTES: dict[str, tuple[str, ...]] = {"/ping": ("GET", "HEAD"), "/invocations": ("POST",)}
MAX_HEADER_BYTES = 64 * 1024  # headers over this are refused (431); the HTTP server's own limit is 408 KiB
SETTINGS_ENV = "SERVING_SETTINGS"  # the main process hands its parsed settings to the worker in this variable
LOAD_FAILED_EXIT = 3

Scope = dict[str, Any]
Receive = Any
Send = Any


class ClientGoneError(Exception):
    """The client closed the connection before its whole body arrived: nobody to answer."""


class ModelServer:
    """The ASGI callable. State lives here: the engine (None until loaded), the pool, the log."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.engine: ModelEngine | None = None
        self.log: LineLog | None = None
        self.pool: ThreadPoolExecutor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.http(scope, receive, send)

    # --- worker life ---------------------------------------------------------------------------
    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await asyncio.get_running_loop().run_in_executor(None, self.pool.shutdown)
                if self.log is not None:
                    self.log.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        """Read the settings, start the log and load the model in the background."""
        self.settings = Settings.from_json(os.environ[SETTINGS_ENV])
        self.log = LineLog(enabled=self.settings.log_requests)
        self.pool = ThreadPoolExecutor(max_workers=self.settings.compute_threads(), thread_name_prefix="infer")
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        from serving.engine import EngineOptions, ModelEngine

        assert self.settings is not None and self.log is not None
        started = time.perf_counter()
        s = self.settings
        try:
            options = EngineOptions(threads=s.threads, max_concurrency=s.max_concurrency, spin_us=s.spin_us)
            self.engine = ModelEngine.load(s.model, options, s.model_version)
        except Exception as exc:  # the server cannot serve: say why and stop it (the main process exits 1)
            self.log.event(event="error", error=f"cannot load the model from {s.model}: {exc}")
            self.log.close()
            os._exit(LOAD_FAILED_EXIT)
        self.log.event(
            event="ready",
            model=s.model,
            version=self.engine.version,
            serving_model=self.engine.artifact.serving_model_path.name,
            seconds=round(time.perf_counter() - started, 3),
        )

    # --- requests ------------------------------------------------------------------------------
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.log is not None
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        headers = _headers(scope)
        extra: dict[str, str] = {}
        try:
            if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
                raise RequestError(431, f"request headers too long: at most {MAX_HEADER_BYTES:,} bytes")
            allowed = ROUTES.get(path)
            if allowed is None:
                raise RequestError(404, f"no such path {path[:200]!r}: use GET /ping or POST /invocations")
            if method not in allowed:
                extra["allow"] = ", ".join(allowed)
                raise RequestError(405, f"method {method} not allowed on {path}: use {extra['allow']}")
            status, doc = self.ping() if path == "/ping" else await self.invoke(headers, receive)
        except RequestError as exc:
            status, doc = exc.status, {"error": exc.message}
        except ClientGoneError as exc:
            self.log.request(event="disconnect", method=method, path=path, error=str(exc))
            return
        except Exception:
            self.log.event(event="error", path=path, error=traceback.format_exc(limit=8))
            status, doc = 500, {"error": "internal server error"}
        body = json.dumps(doc, separators=(",", ":")).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.encode(), v.encode()) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        self.log.request(
            method=method,
            path=path,
            status=status,
            ms=round((time.perf_counter() - started) * 1e3, 2),
            bytes_in=headers.get("content-length"),
            bytes_out=len(body),
            **({"label": doc["label"]} if status == 200 and "label" in doc else {}),
            **({"error": doc["error"]} if status >= 400 else {}),
        )

    def ping(self) -> tuple[int, dict[str, Any]]:
        if self.engine is None:
            raise RequestError(503, "model is loading")
        return 200, {"status": "ok", "model_version": self.engine.version}

    async def invoke(self, headers: dict[str, str], receive: Receive) -> tuple[int, dict[str, Any]]:
        engine = self.engine
        if engine is None:
            raise RequestError(503, "model is loading: retry when GET /ping answers 200")
        assert self.settings is not None
        body = await self.read_body(headers, receive, self.settings)
        check_accept(headers.get("accept"))
        data = image_bytes(headers.get("content-type"), body)
        loop = asyncio.get_running_loop()
        return 200, await loop.run_in_executor(self.pool, engine.predict, data)

    @staticmethod
    async def read_body(headers: dict[str, str], receive: Receive, settings: Settings) -> bytes:
        """The request body, refused by its declared length before a byte is read, read within the deadline."""
        if "transfer-encoding" in headers:
            raise RequestError(411, "chunked request bodies are not accepted: send a Content-Length header")
        raw = headers.get("content-length")
        if raw is None:
            raise RequestError(411, "Content-Length header required")
        if not (raw.isascii() and raw.isdigit()):
            raise RequestError(400, f"invalid Content-Length header {raw[:50]!r}")
        size, limit = int(raw), settings.max_request_bytes
        if size > limit:
            raise RequestError(413, f"request body of {size:,} bytes is over the {limit:,}-byte limit")
        chunks: list[bytes] = []
        received = 0
        try:
            async with asyncio.timeout(settings.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGoneError(f"client left after {received:,} of {size:,} bytes")
                    chunk = message.get("body", b"")
                    chunks.append(chunk)
                    received += len(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            raise RequestError(
                408, f"request body not received within {settings.body_timeout:g} s ({received:,} of {size:,} bytes)"
            ) from None
        if received != size:
            raise ClientGoneError(f"body of {received:,} bytes, {size:,} declared")
        return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, names lower-cased; a repeated header keeps its first value."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


app = ModelServer()
