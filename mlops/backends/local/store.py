"""Local control-plane state: the release records (sqlite) and the platform state (JSON, atomic)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from mlops.backends.base import LockBusyError, Release


class ReleaseStore:
    """One row per promotion attempt, the release record kept as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS releases (release_id TEXT PRIMARY KEY, started TEXT, record TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS qualifications (stage TEXT, release_id TEXT, record TEXT)")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    def save(self, release: Release) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO releases VALUES (?, ?, ?)",
                (release.release_id, release.started, json.dumps(release.to_dict())),
            )

    def all(self) -> list[Release]:
        with self._db() as db:
            rows = db.execute("SELECT record FROM releases ORDER BY started, rowid").fetchall()
        return [Release(**json.loads(r[0])) for r in rows]

    def qualify(self, stage: str, release: Release) -> None:
        """A release of the stage before `stage` passed: recorded apart from the releases, for `stage` to read."""
        with self._db() as db:
            db.execute(
                "INSERT INTO qualifications VALUES (?, ?, ?)",
                (stage, release.release_id, json.dumps(release.to_dict())),
            )

    def qualifications(self, stage: str) -> list[Release]:
        with self._db() as db:
            rows = db.execute("SELECT record FROM qualifications WHERE stage = ? ORDER BY rowid", (stage,)).fetchall()
        return [Release(**json.loads(r[0])) for r in rows]


class ControlState:
    """The local platform's state (endpoint configs, function versions, alias, stage) in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path) + ".lock")

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under a file lock; the file is replaced atomically."""
        with self._lock:
            data = self.read()
            yield data
            write_json(self.path, data)

    def read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {
                "endpoint_configs": {},
                "endpoint": {},
                "functions": {},
                "alias": {},
                "deployments": {},
                "stage": {},
                "front": {},
                "next_function_version": 1,
            }
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


@contextlib.contextmanager
def exclusive(path: Path, owner: str, wait_s: float = 0.0) -> Iterator[None]:
    """The promotion lock: a second promotion waits up to `wait_s` for the first, then fails."""
    lock = FileLock(str(path), timeout=wait_s)
    try:
        lock.acquire()
    except Timeout:
        holder = path.with_suffix(".owner")
        who = holder.read_text() if holder.is_file() else "another process"
        raise LockBusyError(
            f"another promotion is in progress ({who}); waited {wait_s:.0f} s, try again when it ends"
        ) from None
    try:
        path.with_suffix(".owner").write_text(owner)
        yield
    finally:
        path.with_suffix(".owner").unlink(missing_ok=True)
        lock.release()
