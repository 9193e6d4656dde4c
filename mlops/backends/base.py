"""The seam between the orchestration and a platform: one interface, a local and an AWS implementation.

The promotion logic (mlops/release.py) only talks to these methods; everything that differs
between "this machine" and "AWS" lives behind them.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

from mlops.backends.local_registry import ModelVersion

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"


class BackendError(RuntimeError):
    """A platform call failed; the message is safe to show to a user."""


class LockBusyError(BackendError):
    """Another promotion or rollback holds the lock."""


@dataclass
class Release:
    """One promotion: what went live, where, by whom, and how its smoke tests went."""

    release_id: str
    model_version: str
    stage: str
    endpoint_config: str = ""
    lambda_version: str = ""
    deployment_id: str = ""
    who: str = ""
    started: str = ""
    finished: str = ""
    status: str = "in_progress"  # in_progress | live | superseded | rolled_back | failed
    reason: str = ""
    smoke: dict = field(default_factory=dict)
    previous_release_id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class ModelRegistry(Protocol):
    """Registered model versions and their approval status (MLflow locally, SageMaker on AWS)."""

    def list_versions(self) -> list[ModelVersion]: ...

    def get(self, version: str) -> ModelVersion: ...

    def set_status(self, version: str, status: str, who: str, reason: str) -> ModelVersion: ...


class Backend(ABC):
    """Model registry + model host (endpoint) + API front (Lambda alias and API Gateway stage) + records."""

    name: str
    stage: str
    registry: ModelRegistry

    # --- model registry -------------------------------------------------------------------------
    def list_versions(self) -> list[ModelVersion]:
        return self.registry.list_versions()

    def get_version(self, version: str) -> ModelVersion:
        return self.registry.get(version)

    def set_approval(self, version: str, status: str, who: str, reason: str) -> ModelVersion:
        return self.registry.set_status(version, status, who, reason)

    # --- model host (the SageMaker endpoint, or local model-server processes) --------------------
    @abstractmethod
    def deploy_endpoint(self, version: ModelVersion, release_id: str) -> str:
        """Create an endpoint config for `version`, switch the endpoint to it (blue/green), return its name.

        Returns only once the new config answers health checks; raises BackendError otherwise, with
        the endpoint still on its previous config."""

    @abstractmethod
    def restore_endpoint(self, endpoint_config: str) -> None:
        """Switch the endpoint back to a previous config."""

    @abstractmethod
    def current_endpoint_config(self) -> str: ...

    # --- API front (Lambda versions + alias `live`, API Gateway stage) ---------------------------
    @abstractmethod
    def publish_function(self, release: Release) -> str:
        """Point the function's configuration at the release, publish a version; return its number."""

    @abstractmethod
    def move_alias(self, function_version: str) -> None: ...

    @abstractmethod
    def current_function_version(self) -> str: ...

    @abstractmethod
    def deploy_stage(self, release: Release) -> str:
        """Create a stage deployment whose stage variables name the release; return its id."""

    @abstractmethod
    def restore_stage(self, deployment_id: str) -> None: ...

    @abstractmethod
    def current_deployment(self) -> str: ...

    @abstractmethod
    def api_url(self) -> str: ...

    # --- release records and the promotion lock --------------------------------------------------
    @abstractmethod
    def save_release(self, release: Release) -> None: ...

    @abstractmethod
    def list_releases(self) -> list[Release]: ...

    @abstractmethod
    def lock(self, owner: str) -> contextlib.AbstractContextManager[None]: ...

    # --- housekeeping ----------------------------------------------------------------------------
    def retire(self, release: Release) -> None:  # noqa: B027 - optional hook
        """Free what a release no longer needs (locally: its processes). Default: nothing."""

    def live_release(self) -> Release | None:
        live = [r for r in self.list_releases() if r.status == "live" and r.stage == self.stage]
        return live[-1] if live else None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        yield
