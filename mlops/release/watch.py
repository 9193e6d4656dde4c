"""The bake: after its smoke tests a release stays under watch; a breach of its signals rolls it back.

The signals come from the backend (AWS: the release's CloudWatch alarms; locally: the same
signals computed from the local servers' logs). The bake time is per stage; MLOPS_BAKE_SECONDS
overrides it, MLOPS_BAKE_POLL_SECONDS sets how often the signals are read. Signals lag behind the
requests (AWS: CloudWatch's metric delay, then the alarms' evaluation periods); a verdict is given
only once that lag has passed since the switch (MLOPS_SIGNAL_LAG_SECONDS overrides the backend's).
A quiet stage is baked on synthetic requests, and a bake that saw too few requests fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from mlops.backends.base import Backend, BackendError, Release

MIN_REQUESTS = 30  # a bake judges at least this many requests since the switch (MLOPS_BAKE_MIN_REQUESTS)


def _seconds(name: str, default: Callable[[], float]) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return max(0.0, float(default()))
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise BackendError(f"{name}={raw!r} is not a number") from None


def bake_seconds(backend: Backend) -> float:
    return _seconds("MLOPS_BAKE_SECONDS", backend.bake_seconds)


def stage_bake_seconds(backend: Backend, stage: str) -> float:
    """Another stage's bake time, as its own promotions apply it (production checks staging's)."""
    return _seconds("MLOPS_BAKE_SECONDS", lambda: backend.bake_seconds_of(stage))


def signal_lag(backend: Backend) -> float:
    """How long after a request its breach can first show in the backend's signals."""
    return _seconds("MLOPS_SIGNAL_LAG_SECONDS", backend.signal_lag_seconds)


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


def min_requests() -> int:
    """The requests a bake must judge, at least (MLOPS_BAKE_MIN_REQUESTS); the smoke tests send about 22."""
    raw = os.environ.get("MLOPS_BAKE_MIN_REQUESTS") or str(MIN_REQUESTS)
    try:
        return max(0, int(raw))
    except ValueError:
        raise BackendError(f"MLOPS_BAKE_MIN_REQUESTS={raw!r} is not a whole number") from None


def bake(
    backend: Backend,
    release: Release,
    since: float,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    probe: Callable[[], str] | None = None,
    own: int = 0,
) -> dict[str, Any]:
    """Watch the release's signals for the bake time, and at least until the signals' lag has passed since
    the switch (`since`), so that what the switched release did can show; stop at the first breach.

    A bake judges requests, not silence: it needs min_requests() answered since the switch, as the signals
    show them or, while they lag, as the release saw them answered itself (`own`: the smoke tests', then
    its synthetic ones). While fewer show, `probe` sends synthetic requests (the smoke photos through the
    public API), each of which must be answered 200; a bake that still saw too few is a breach."""
    started, lag = clock(), signal_lag(backend)
    seconds = max(bake_seconds(backend), lag - (started - since))
    if seconds > bake_seconds(backend):
        why = f"the signals show a request up to {lag:.0f} s after it, counted from the switch"
        log(f"baking for {seconds:.0f} s ({why}): watching the release's signals every {poll_seconds(seconds):.0f} s")
    elif seconds:
        log(f"baking for {seconds:.0f} s: watching the release's signals every {poll_seconds(seconds):.0f} s")
    need = min_requests()
    seen = {"served": 0, "synthetic": 0, "answered": own}
    failed: list[str] = []

    def read() -> list[str]:
        seen["served"] = backend.requests_served(release, since) if need else 0
        while probe and max(seen["served"], seen["answered"]) < need and not failed:
            seen["synthetic"] += 1
            outcome = probe()
            seen["answered"] += not outcome
            failed.extend([f"synthetic request {outcome}"] if outcome else [])
        return failed + backend.watch(release, since)

    checks, breaches = watch_for(seconds, read, sleep, clock)
    judged = max(seen["served"], seen["answered"])
    if judged < need and not breaches:
        breaches = [f"too few requests to judge: {judged} since the switch, at least {need} needed"]
    if breaches:
        log(f"bake breached after {clock() - started:.0f} s: {'; '.join(breaches)}")
    elif seconds or need:
        log(
            f"bake passed: {checks} readings over {seconds:.0f} s, no breach; it judged {judged} requests "
            f"({seen['synthetic']} of them synthetic)"
        )
    return {"seconds": seconds, "lag_seconds": lag, "checks": checks, "breaches": breaches, "watched_from": since,
            "requests": judged, "synthetic_requests": seen["synthetic"], "min_requests": need}  # fmt: skip
