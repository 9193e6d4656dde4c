"""The bake: after its smoke tests a release stays under watch; a breach of its signals rolls it back.

The signals come from the backend (AWS: the release's CloudWatch alarms; locally: the same
signals computed from the local servers' logs). The bake time is per stage; MLOPS_BAKE_SECONDS
overrides it, MLOPS_BAKE_POLL_SECONDS sets how often the signals are read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from mlops.backends.base import Backend, BackendError, Release


def bake_seconds(backend: Backend) -> float:
    raw = os.environ.get("MLOPS_BAKE_SECONDS", "").strip()
    if not raw:
        return max(0.0, float(backend.bake_seconds()))
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise BackendError(f"MLOPS_BAKE_SECONDS={raw!r} is not a number") from None


def poll_seconds(seconds: float) -> float:
    return max(0.5, float(os.environ.get("MLOPS_BAKE_POLL_SECONDS") or min(30.0, max(1.0, seconds / 5))))


def watch_for(
    seconds: float,
    read: Callable[[], list[str]],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    enough: Callable[[], bool] = lambda: False,
) -> tuple[int, list[str]]:
    """Read signals every poll interval for `seconds` (at least once); stop at the first breach or when
    `enough()` says so. Returns (readings, breaches)."""
    poll = poll_seconds(seconds)
    deadline = clock() + seconds
    checks, breaches = 0, []
    while True:
        breaches = read()
        checks += 1
        if breaches or clock() >= deadline or enough():
            return checks, breaches
        sleep(min(poll, max(0.0, deadline - clock())))


def bake(
    backend: Backend,
    release: Release,
    since: float,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> dict:
    """Watch the release's signals for the bake time (at least one reading); stop at the first breach."""
    seconds = bake_seconds(backend)
    started = clock()
    if seconds:
        log(f"baking for {seconds:.0f} s: watching the release's signals every {poll_seconds(seconds):.0f} s")
    checks, breaches = watch_for(seconds, lambda: backend.watch(release, since), sleep, clock)
    if breaches:
        log(f"bake breached after {clock() - started:.0f} s: {'; '.join(breaches)}")
    elif seconds:
        log(f"bake passed: {checks} readings over {seconds:.0f} s, no breach")
    return {"seconds": seconds, "checks": checks, "breaches": breaches, "watched_from": since}
