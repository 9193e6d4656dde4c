"""System-wide CPU busy fraction, sampled from /proc/stat by a background thread (Linux only)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")


def read_cpu_times(path: Path = PROC_STAT) -> tuple[int, int] | None:
    """(total, idle) jiffies of all CPUs since boot, or None where /proc/stat is not readable."""
    try:
        with path.open() as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    return sum(fields), fields[3] + fields[4]  # idle + iowait


class CpuMeter:
    """`busy` is the fraction of all CPUs in use over the last interval (None: unknown)."""

    def __init__(self, interval: float = 0.1, path: Path = PROC_STAT) -> None:
        self.busy: float | None = None
        self._interval = interval
        self._path = path
        self._last = read_cpu_times(path)
        if self._last is not None:
            threading.Thread(target=self._run, name="cpu-meter", daemon=True).start()

    def sample(self) -> None:
        now = read_cpu_times(self._path)
        if now is None or self._last is None:
            return
        total, idle = now[0] - self._last[0], now[1] - self._last[1]
        if total > 0:
            self.busy = min(1.0, max(0.0, 1.0 - idle / total))
        self._last = now

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            self.sample()
