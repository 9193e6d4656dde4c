"""What the gap fillers share: the running emulator (URL, CA, work folder), the current request, time settings."""

from __future__ import annotations

import os
import threading
from typing import Any

# Every emulated wait (endpoint bake, alarm periods, metric delay) is the real one times this factor.
TIME_SCALE = float(os.environ.get("AWS_EMULATOR_TIME_SCALE", "0.02"))
# How late a service's datapoint reaches CloudWatch (GetMetricData, GetMetricStatistics, alarms):
# AWS_EMULATOR_METRIC_DELAY_SECONDS real seconds (AWS: one to three minutes; never under 60 here),
# scaled like every wait. Never zero: nothing the services publish is seen at once.
METRIC_DELAY = max(0.05, max(60.0, float(os.environ.get("AWS_EMULATOR_METRIC_DELAY_SECONDS") or 120)) * TIME_SCALE)
request = threading.local()  # .secure: did the request arrive over TLS
_emulator: list[Any] = []


def scaled(seconds: float) -> float:
    """An AWS duration as the emulator lets it pass."""
    return max(0.0, seconds * TIME_SCALE)


def configure(emulator: Any) -> None:
    _emulator[:] = [emulator]


def emulator() -> Any:
    if not _emulator:
        raise RuntimeError("the AWS emulator is not running")
    return _emulator[0]


def is_secure() -> bool:
    return bool(getattr(request, "secure", False))


def in_emulator() -> bool:
    """True while the emulator's server handles a request (moto used in-process is left as it was)."""
    return bool(getattr(request, "active", False))
