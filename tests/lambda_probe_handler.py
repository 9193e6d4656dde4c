"""A Lambda handler for the local-stack tests: it echoes what it was given and notices overlap.

`in_flight` counts the invocations running in this process at once; Lambda never runs two in
one execution environment, so every answer must report 1.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

_lock = threading.Lock()
_in_flight = 0


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _in_flight
    with _lock:
        _in_flight += 1
        seen = _in_flight
    try:
        body = json.loads(event.get("body") or "{}") if not event.get("isBase64Encoded") else {}
        time.sleep(float(body.get("sleep", 0.002)))
        if body.get("raise"):
            raise RuntimeError("asked to fail")
        answer = {
            "request_id": event["requestContext"]["requestId"],
            "headers": event.get("headers"),
            "pid": os.getpid(),
            "in_flight": seen,
            "body_length": len(event.get("body") or ""),
        }
        if body.get("big_answer"):
            answer["padding"] = "x" * int(body["big_answer"])
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(answer)}
    finally:
        with _lock:
            _in_flight -= 1
