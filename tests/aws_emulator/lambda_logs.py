"""Lambda's logs: what a function version writes reaches its CloudWatch log group.

On AWS, everything a function writes to stdout and stderr (the runtime's START/END/REPORT lines
included) goes to the log group `/aws/lambda/<function>`, one log stream per execution
environment, within seconds. moto 5.2.5 runs no function, so nothing is ever written there. Here,
after each invocation, the new lines of the version's process log are put into moto's log group
(created if the stack did not create it), so FilterLogEvents finds them as it would on AWS. The
Duration of each REPORT line is kept for the invocation's metrics (reported_duration), as Lambda's
Duration metric is the handler's time, a cold start's init not included. Every embedded-metric (EMF)
line becomes the metrics it names, as CloudWatch Logs extracts them (emf), published like Lambda's own.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from moto.logs.models import logs_backends

from aws_emulator import emf, metrics

_offsets: dict[str, int] = {}
_durations: dict[str, float] = {}  # request id → the Duration of its REPORT line, until asked for
_lock = threading.Lock()
REPORT = re.compile(r"^REPORT RequestId: (?P<id>\S+)\s+Duration: (?P<ms>[0-9.]+) ms")


def ship(fn: Any, log_path: Any, account: str, region: str) -> int:
    """Put the lines added to `log_path` since the last call into the function's log group; returns how many."""
    with _lock:
        try:
            with open(log_path, "rb") as f:
                f.seek(_offsets.get(str(log_path), 0))
                data = f.read()
        except OSError:
            return 0
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next call
        _offsets[str(log_path)] = _offsets.get(str(log_path), 0) + len(complete)
        lines = [line for line in complete.decode("utf-8", "replace").splitlines() if line.strip()]
        for found in filter(None, map(REPORT.match, lines)):
            _durations[found["id"]] = float(found["ms"])
        for namespace, name, dims, value in (p for line in lines for p in emf.points(line)):
            metrics.put(region, namespace, name, dims, value)
        if not lines:
            return 0
        backend = logs_backends[account][region]
        group = f"/aws/lambda/{fn.function_name}"
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{fn.version}]{abs(hash(str(log_path))) % 10**8:08d}"
        if group not in backend.groups:
            backend.create_log_group(group, {})
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        now = int(time.time() * 1000)
        backend.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])
        return len(lines)


def reported_duration(request_id: str) -> float | None:
    """The Duration (ms) the REPORT line of this invocation gave, once shipped; None when there was none."""
    with _lock:
        return _durations.pop(request_id, None) if request_id else None
