"""One wall-clock deadline for an outbound fetch: name resolution, connect, TLS, headers and body.

Per-read socket timeouts let a server that sends one byte at a time hold a connection for
ever; here a watchdog timer shuts every socket of the fetch down when the deadline passes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from urllib3.connection import HTTPConnection

from classify_api.errors import ApiError

Resolver = Callable[[str, int], list[str]]


class Deadline:
    """One wall-clock limit for a fetch: at expiry every socket it watches is shut down."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down at expiry (a duplicate descriptor is kept, so TLS wrapping does not lose it)."""
        dup = sock.dup()
        with self._lock:
            self._socks.append(dup)
            expired = self.expired
        if expired:
            _shutdown(dup)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            socks = list(self._socks)
        for sock in socks:
            _shutdown(sock)

    def resolve(self, resolver: Resolver, host: str, port: int) -> list[str]:
        """Run the resolver in a side thread so a slow DNS answer cannot outlast the deadline."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["ok"] = resolver(host, port)
            except BaseException as exc:  # handed back to the caller's thread
                box["err"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(max(0.0, self.remaining()))
        if "err" in box:
            raise box["err"]
        if "ok" not in box:
            raise ApiError(422, f"image_url could not be fetched: resolving {host!r} timed out")
        addresses: list[str] = box["ok"]
        return addresses


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def watched(base: type[HTTPConnection], deadline: Deadline) -> type[HTTPConnection]:
    """`base` whose new sockets are handed to the deadline's watchdog."""

    class Watched(base):  # type: ignore[valid-type, misc]  # a base class given at run time
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            deadline.watch(sock)
            return sock

    return Watched
