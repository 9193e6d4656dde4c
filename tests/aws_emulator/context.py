"""What the gap fillers share: the running emulator (URL, CA, work folder) and the current request."""

from __future__ import annotations

import os
import threading
from typing import Any

# Every emulated wait (endpoint bake, alarm periods) is the real one times this factor.
TIME_SCALE = float(os.environ.get("AWS_EMULATOR_TIME_SCALE", "0.02"))
request = threading.local()  # .secure: did the request arrive over TLS
_emulator: list[Any] = []


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
