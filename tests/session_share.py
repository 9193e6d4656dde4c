"""What a test session builds once and every pytest-xdist worker reads: a folder and a lock per output.

`make test` runs the suite on several workers (processes). A session fixture runs once per worker, so a
trained model or a built artifact would be made once per worker; here the first worker to ask builds it
under the session's shared temporary folder while the others wait on its lock, then all read the same files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def worker() -> str:
    """This process's xdist worker id ("gw0", "gw1", ...), or "" when the suite runs in one process."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def shared_root(factory: pytest.TempPathFactory) -> Path:
    """The session's temporary folder that every worker sees (each worker's own is a subfolder of it)."""
    base = factory.getbasetemp()
    return base.parent if worker() else base


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """`build(folder)` run once per session for `name`, whichever worker asks first; its result for all.

    `build` returns the path of what it made inside `folder`; a build that raised leaves no marker, so the
    next worker to ask tries again (and fails the same way, in its own test)."""
    root = shared_root(factory)
    folder = root / name
    done = root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock"), timeout=1800):
        if not done.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            result = build(folder)
            done.write_text(str(result.relative_to(folder)))
    return folder / done.read_text()
