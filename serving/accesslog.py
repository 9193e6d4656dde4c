"""One JSON line per event on stderr, written by a background thread off the request path."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from typing import IO, Any

_STOP = object()


class LineLog:
    """Request threads only enqueue a dict; a daemon thread serialises and writes the lines."""

    def __init__(self, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def event(self, **fields: Any) -> None:
        """Log an event (always written, even when request logging is off)."""
        fields["ts"] = time.time()
        self._queue.put(fields)

    def request(self, **fields: Any) -> None:
        """Log one served request, when request logging is on."""
        if self.enabled:
            self.event(**fields)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:  # drain what has piled up, write it in one go
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = [_format(item) for item in items if item is not _STOP]
            if lines:
                try:
                    self._stream.write("".join(lines))
                    self._stream.flush()
                except (OSError, ValueError):  # stderr closed: logging must never stop serving
                    pass
            if any(item is _STOP for item in items):
                return


def _format(fields: dict[str, Any]) -> str:
    ts = fields.pop("ts")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
    return json.dumps({"time": stamp, **fields}, separators=(",", ":"), default=str) + "\n"
