"""A job cancelled as GitHub cancels one: the running step's process gets SIGINT, SIGTERM 7.5 s later if it
still runs, and its whole process tree SIGKILL 2.5 s after that; then only the steps whose `if` holds when
cancelled (cancelled(), always()) run.

The rehearsal cancels at an event, a line the step prints (for example the promotion's "smoke-testing",
printed once the candidate serves), never after a guessed delay.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass

# actions/runner: the signal, then the grace periods before the next one and before the kill.
SIGINT_GRACE_SECONDS = 7.5
SIGTERM_GRACE_SECONDS = 2.5


@dataclass(frozen=True)
class Cancel:
    step: str  # the step (part of its name) during which the job is cancelled
    when: str  # the line of its output that starts the cancellation


def _signal_in_turn(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGINT, SIGINT_GRACE_SECONDS), (signal.SIGTERM, SIGTERM_GRACE_SECONDS)):
        if proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    os.killpg(proc.pid, signal.SIGKILL)  # the step runs in its own process group (start_new_session)


def start_cancelling(proc: subprocess.Popen) -> threading.Thread:
    """Signal the step's process as the runner does, beside the reading of its output."""
    thread = threading.Thread(target=_signal_in_turn, args=(proc,), daemon=True)
    thread.start()
    return thread
