"""Every request the emulator answers, one JSON line each in <workdir>/requests.jsonl.

When a client reports an error the emulator never logged (a retried call answered 409, a reset connection),
this says what arrived, on which thread, which attempt the SDK counted it as (`amz-sdk-request`), what was
answered and how long it took.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

_lock = threading.Lock()


def _action(environ: dict[str, Any]) -> str:
    """The operation of a query-protocol call (IAM, STS, CloudWatch...) or of a JSON one (X-Amz-Target)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return str(target).rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if query:
        return query[0]
    body = environ.get("wsgi.input")
    if isinstance(body, io.BytesIO) and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form"):
        found = parse_qs(body.getvalue()[:4096].decode("utf-8", "replace")).get("Action")
        return found[0] if found else ""
    return ""


def logged(app: Callable, path: Path) -> Callable:
    """`app` (WSGI), each request appended to `path` once its answer has started."""

    def log_request(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started, status = time.time(), [""]

        def record_status(code: str, headers: list, exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        try:
            return app(environ, record_status)
        finally:
            line = {
                "t": round(started, 3),
                "seconds": round(time.time() - started, 3),
                "thread": threading.get_ident(),
                "method": environ.get("REQUEST_METHOD", ""),
                "host": environ.get("HTTP_HOST", ""),
                "path": environ.get("PATH_INFO", ""),
                "action": _action(environ),
                "attempt": environ.get("HTTP_AMZ_SDK_REQUEST", ""),
                "status": status[0],
            }
            with _lock, path.open("a") as out:
                out.write(json.dumps(line) + "\n")

    return log_request
