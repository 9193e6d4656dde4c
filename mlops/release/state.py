"""What a stage really serves, compared with its records; restoring it, retried; releases that survive signals.

Used by promote, rollback and repair (mlops/release/__init__.py) only. Everything here reads the
platform through the backend seam, so the same code decides "drift", "already live" and "repaired" on
both backends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from mlops.backends.base import Backend, BackendError, Release

REPAIR_HINT = "mlops repair"


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived during a release (a cancelled job): the release is rolled back."""


class RestoreFailed(BackendError):
    """The stage could not be brought back to its target release after every retry."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def drift(backend: Backend, live: Release | None, served: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Where the stage serves something other than its live release records: {what: {recorded, served}}.

    With no live release, the stage should serve no release's endpoint config: one that a release of this
    stage created (its name ends with the release's id) is drift, e.g. a first release killed mid-switch."""
    served = backend.served() if served is None else served
    if live is None:
        config = served.get("endpoint_config", "")
        made = config and any(
            r.stage == backend.stage and r.release_id and config.endswith(r.release_id[-6:])
            for r in backend.list_releases()
        )
        return {"endpoint_config": {"recorded": "", "served": config}} if made else {}
    recorded = live.serves()
    return {k: {"recorded": v, "served": served.get(k, "")} for k, v in recorded.items() if v != served.get(k)}


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def apply_state(backend: Backend, target: Release | None, force: bool = False) -> None:
    """Make endpoint, alias and stage serve `target` (None: nothing released, take the endpoint down).

    Each step is skipped when the platform already serves what it should, so a retry resumes
    where the last attempt stopped; `force` runs every step (a local stack whose processes stopped)."""
    served = {} if force else backend.served()
    if target is None:
        if force or served["endpoint_config"]:
            backend.remove_endpoint()
        return
    if target.endpoint_config and served.get("endpoint_config") != target.endpoint_config:
        backend.restore_endpoint(target.endpoint_config)
    if target.lambda_version and served.get("function_version") != target.lambda_version:
        backend.move_alias(target.lambda_version)
    if target.deployment_id and served.get("stage_deployment") != target.deployment_id:
        backend.restore_stage(target.deployment_id)


def restore(
    backend: Backend,
    target: Release | None,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """apply_state with retries and exponential backoff; RestoreFailed when the stage still differs."""
    attempts = max(1, int(_env_float("MLOPS_RESTORE_ATTEMPTS", 4)))
    delay = _env_float("MLOPS_RESTORE_BACKOFF_SECONDS", 2.0)
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            apply_state(backend, target)
            if target is None:
                left = {"endpoint_config": {"served": e}} if (e := backend.current_endpoint_config()) else {}
            else:
                left = drift(backend, target)
            if not left:
                return
            last = "still serving " + ", ".join(f"{k} {v['served'] or 'nothing'}" for k, v in left.items())
        except BackendError as exc:
            last = str(exc)
        if attempt < attempts:
            log(f"restore attempt {attempt}/{attempts} failed ({last}); retrying in {delay:.0f} s")
            sleep(delay)
            delay *= 2
    raise RestoreFailed(last)


def safe_served(backend: Backend) -> dict[str, str]:
    """backend.served(), or what could not be read, for a record of a failed restore."""
    try:
        return backend.served()
    except BackendError as exc:
        return {"error": str(exc)}


@contextlib.contextmanager
def interruptible() -> Iterator[Callable[[], None]]:
    """Turn the first SIGTERM/SIGINT into Interrupted (so the release rolls back); ignore later ones.

    A cancelled GitHub job sends SIGINT, then SIGTERM: the rollback that the first one starts must
    not be cut short by the second. Outside the main thread (tests), signals are left alone.

    Yields `checkpoint`, which raises Interrupted once a signal came: Python runs the handler wherever the
    main thread is, and where that is a destructor (a dropped `subprocess.Popen`, a socket) the exception
    it raises is printed and lost. The release calls it between its steps, so a cancellation is never
    swallowed (seen under load: a release signalled mid-switch went on to the end)."""
    fired: list[int] = []

    def checkpoint() -> None:
        if fired:
            raise Interrupted(f"interrupted by {signal.Signals(fired[0]).name}")

    if threading.current_thread() is not threading.main_thread():
        yield checkpoint
        return

    def handler(signum: int, _frame: object) -> None:
        if fired:
            return
        fired.append(signum)
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield checkpoint
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
