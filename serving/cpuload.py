"""This process's CPUs: how many it may use, and whether one is free right now (the run queue in /proc/loadavg)."""

from __future__ import annotations

import os
from pathlib import Path

PROC_LOADAVG = Path("/proc/loadavg")


def cpu_count() -> int:
    """The CPUs this process may run on (the container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def runnable_tasks(path: Path = PROC_LOADAVG) -> int | None:
    """Tasks running or ready to run on any CPU at this instant (the caller included), or None if unknown.

    /proc/loadavg's fourth field is "runnable/total", e.g. "1.58 1.52 1.41 2/102 5152".
    """
    try:
        return int(path.read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


class RunQueue:
    """spare_cpu(): besides this process's own tasks, fewer runnable tasks than CPUs minus one.

    Read just before an inference, this says whether a second inference thread would run in
    parallel or only take a core from a process that needs it (on a small host, the API
    processes in front of the model server). An average (load, CPU busy over the last 100 ms)
    cannot tell "the processes in front of me are idle while I compute" from "they are busy".
    """

    def __init__(self, cpus: int, path: Path = PROC_LOADAVG) -> None:
        self.cpus = cpus
        self.path = path

    def spare_cpu(self, own: int = 1) -> bool:
        """own: this process's tasks that may be among the runnable (the caller, spinning pool threads)."""
        running = runnable_tasks(self.path)
        return running is None or running - own <= self.cpus - 2
