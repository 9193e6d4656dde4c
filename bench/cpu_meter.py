"""CPU time spent per request by each process of the serving path, read from /proc (Linux)."""

from __future__ import annotations

import os
import time

from serving.cpuload import cpu_count

CLIENT = "load_client"


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` and its child processes so far, or None if unreadable.

    Children count whether alive (the local Lambda's execution environments) or reaped.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    except (OSError, IndexError, ValueError):
        return None
    children: list[str] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += f.read().split()
    except OSError:
        pass
    return ticks / os.sysconf("SC_CLK_TCK") + sum(process_cpu_seconds(int(c)) or 0.0 for c in children)


class CpuMeter:
    """CPU seconds of named processes (and of this load client) between start() and per_request()."""

    def __init__(self, pids: dict[str, int] | None = None) -> None:
        self.pids = {name: pid for name, pid in (pids or {}).items() if process_cpu_seconds(pid) is not None}
        self._start: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        out = {CLIENT: time.process_time()}
        for name, pid in self.pids.items():
            seconds = process_cpu_seconds(pid)
            if seconds is not None:
                out[name] = seconds
        return out

    def start(self) -> None:
        self._start = self._sample()

    def per_request(self, requests: int, cpus: int | None = None) -> dict:
        """Milliseconds of CPU per request by process, their total, and the request rate it allows.

        ceiling_rps is what the measured CPUs could serve if the processes kept every CPU busy
        with nothing else running: cpus / total CPU seconds per request.
        """
        end = self._sample()
        n = max(requests, 1)
        per = {name: round((end[name] - self._start[name]) / n * 1e3, 2) for name in end if name in self._start}
        total = round(sum(per.values()), 2)
        cpus = cpus or cpu_count()
        return {
            "ms_per_request": per,
            "total_ms": total,
            "cpus": cpus,
            "ceiling_rps": round(cpus * 1e3 / total, 1) if total > 0 else None,
        }
