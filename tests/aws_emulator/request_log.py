"""Every request the emulator answers, one JSON line each in <workdir>/requests.jsonl; and a retried attempt
of a call it already answered gets that answer again.

When a client reports an error the emulator never logged (a retried call answered 409, a reset connection),
this says what arrived, on which thread, which attempt the SDK counted it as (`amz-sdk-request`), what was
answered and how long it took.

Twice under load (a bootstrap apply's CreateRole, a production apply's CreateStage) an SDK sent a call, the
emulator answered it (201 in 2 ms), and the SDK sent it again 70 ms later on another connection, as if the
answer never arrived: the second attempt then failed as a duplicate (EntityAlreadyExists, ConflictException)
and the apply with it. The lost answer is this loopback server's, not the service's, so an attempt after the
first of an invocation (`amz-sdk-invocation-id`) whose earlier attempt was answered with a success gets that
same answer again, marked `"replayed": true` in the log; nothing is run twice. A first attempt that finds a
duplicate still gets the service's error, as on AWS.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections import OrderedDict
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


ANSWERS_KEPT = 2000  # successful answers to changing calls, by invocation id, for a retried attempt


def logged(app: Callable, path: Path) -> Callable:
    """`app` (WSGI), each request appended to `path` once its answer has started."""
    answers: OrderedDict[str, tuple[str, list, bytes]] = OrderedDict()

    def log_request(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started, status, replayed = time.time(), [""], False
        invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID", "")
        attempt = re.search(r"\battempt=(\d+)", environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        retry = attempt is not None and int(attempt.group(1)) > 1
        changing = environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD")
        kept: list[Any] = []

        def record_status(code: str, headers: list, exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            kept[:] = [code, headers]
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        try:
            with _lock:
                earlier = answers.get(invocation) if invocation and retry else None
            if earlier is not None:
                replayed = True
                code, headers, body = earlier
                record_status(code, headers)
                return [body]
            result = app(environ, record_status)
            if invocation and changing and status[0].startswith("2"):
                try:
                    body = b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
                with _lock:
                    answers[invocation] = (kept[0], kept[1], body)
                    while len(answers) > ANSWERS_KEPT:
                        answers.popitem(last=False)
                return [body]
            return result
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
                **({"replayed": True} if replayed else {}),
            }
            with _lock, path.open("a") as out:
                out.write(json.dumps(line) + "\n")

    return log_request
