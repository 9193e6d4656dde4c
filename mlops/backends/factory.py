"""Choose the backend: `--backend local|aws` or MLOPS_BACKEND (default local)."""

from __future__ import annotations

import os

from mlops.backends.base import Backend, BackendError

BACKENDS = ("local", "aws")


def get_backend(name: str | None = None, stage: str | None = None) -> Backend:
    name = (name or os.environ.get("MLOPS_BACKEND") or "local").lower()
    if name == "local":
        from mlops.backends.local import LocalBackend

        return LocalBackend(stage or "local")
    if name == "aws":
        from mlops.backends.aws import AwsBackend

        return AwsBackend(stage or os.environ.get("MLOPS_STAGE", "staging"))
    raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
