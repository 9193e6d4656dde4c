"""The seam between the orchestration and a platform: one interface, a local and an AWS implementation.

The promotion logic (the mlops.release package) only talks to these methods; everything that differs
between "this machine" and "AWS" lives behind them.
"""

from __future__ import annotations

import contextlib
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Approval statuses of a model version, as SageMaker's ModelApprovalStatus names them.
PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"
STATUSES = (PENDING, APPROVED, REJECTED)

# Release statuses. A release is `live` until superseded or rolled back; `rollback_failed` means the
# restore did not complete and the stage may serve a mix: `mlops repair` brings it back.
# `refused`: a shadow test refused the candidate before any client was served by it.
IN_PROGRESS, LIVE, SUPERSEDED, ROLLED_BACK, ROLLBACK_FAILED, FAILED, REFUSED = (
    "in_progress",
    "live",
    "superseded",
    "rolled_back",
    "rollback_failed",
    "failed",
    "refused",
)


class BackendError(RuntimeError):
    """A platform call failed; the message is safe to show to a user."""


class StageNotDeployed(BackendError):
    """The stage's stack is not there (no release table): nothing was ever released in it."""


class RegistryError(BackendError):
    """A registry request that cannot be met (unknown version, bad status...)."""


class LockBusyError(BackendError):
    """Another promotion or rollback holds the lock."""


class LockLostError(BackendError):
    """The release lock stopped being this holder's: the release must stop at this step."""

    def __init__(self, message: str, taken: bool) -> None:
        super().__init__(message)
        self.taken = taken  # another holder has it: this one changes nothing more


@dataclass
class ModelVersion:
    """One registered model version, whichever registry holds it."""

    version: str
    status: str
    accuracy: float | None
    artifact_uri: str
    created: str
    run_id: str = ""
    git_sha: str = ""
    approved_by: str = ""
    reason: str = ""
    smoke_set: str = ""  # where its smoke set is (s3:// or file:// folder), as registered by the pipeline
    smoke_sha256: str = ""  # SHA-256 of that set's manifest.json, as registered
    data_manifest_sha256: str = ""  # SHA-256 of the data manifest its photos were checked against (mlops data upload)
    model_sha256: str = ""  # the artifact's content SHA-256 (serving.artifact), as registered
    attestation: str = ""  # the registration's signature over these hashes (training/attestation.py)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def number(self) -> int:
        return int(self.version) if str(self.version).isdigit() else -1


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
    status: str = IN_PROGRESS  # in_progress | live | superseded | rolled_back | rollback_failed | failed
    reason: str = ""
    smoke: dict[str, Any] = field(default_factory=dict)
    previous_release_id: str = ""
    code_id: str = ""  # identity of the function code (Lambda CodeSha256; locally a hash of lambda/)
    model_sha256: str = ""  # content of the released model as registered (serving.artifact's SHA-256)
    image: str = ""  # the serving image, pinned by digest where the platform has one
    kind: str = ""  # what changed against the previous release: model, code, model+code, first, repair
    bake: dict[str, Any] = field(default_factory=dict)  # the watch after the smoke tests: seconds, signals, breaches
    observed: dict[str, Any] = field(default_factory=dict)  # what the stage served when a restore failed
    strategy: str = ""  # all-at-once | canary | linear | shadow
    candidate: dict[str, Any] = field(default_factory=dict)  # the candidate beside the live release: version, model
    traffic: dict[str, Any] = field(default_factory=dict)  # progressive phase: steps, shares served, shadow comparison

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def serves(self) -> dict[str, str]:
        """What the stage serves while this release is live."""
        return {
            "endpoint_config": self.endpoint_config,
            "function_version": self.lambda_version,
            "stage_deployment": self.deployment_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Release:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def alias_text(alias: dict[str, Any]) -> str:
    """`3`, `3+4@10%` (weighted routing) or `3+shadow 4` (mirroring): what drift compares."""
    text = str(alias.get("live", "") or "")
    for version, weight in alias.get("weights", {}).items():
        text += f"+{version}@{weight * 100:g}%"
    if alias.get("mirror"):
        text += f"+shadow {alias['mirror']}"
    return text


class ModelRegistry(Protocol):
    """Registered model versions and their approval status (MLflow locally, SageMaker on AWS)."""

    @property
    def name(self) -> str:
        """What a registration signs as its registry (the model package group, the MLflow model's name)."""
        ...

    def attestation_key(self) -> bytes:
        """The public half of the key only the pipeline's registration signs with (DER SubjectPublicKeyInfo)."""
        ...

    def list_versions(self) -> list[ModelVersion]: ...

    def get(self, version: str) -> ModelVersion: ...

    def set_status(self, version: str, status: str, who: str, reason: str) -> ModelVersion: ...


class Backend(ABC):
    """Model registry + model host (endpoint) + API front (Lambda alias and API Gateway stage) + records."""

    name: str
    stage: str
    mirrors_code = True  # the copy runs the candidate's function too, so shadow can test a code-only release

    # --- model registry -------------------------------------------------------------------------
    @property
    @abstractmethod
    def registry(self) -> ModelRegistry: ...

    def list_versions(self) -> list[ModelVersion]:
        return self.registry.list_versions()

    def get_version(self, version: str) -> ModelVersion:
        return self.registry.get(version)

    def set_approval(self, version: str, status: str, who: str, reason: str) -> ModelVersion:
        return self.registry.set_status(version, status, who, reason)

    # --- model host (the SageMaker endpoint, or local model-server processes) --------------------
    @abstractmethod
    def deploy_endpoint(self, version: ModelVersion, release: Release) -> str:
        """Create an endpoint config for `version`, switch the endpoint to it (blue/green), return its name.

        Returns only once the new config answers health checks; raises BackendError otherwise, with
        the endpoint still on its previous config."""

    @abstractmethod
    def restore_endpoint(self, endpoint_config: str) -> None:
        """Switch the endpoint back to a previous config."""

    @abstractmethod
    def current_endpoint_config(self) -> str: ...

    @abstractmethod
    def remove_endpoint(self) -> None:
        """Take the endpoint down (a failed first release must leave nothing serving its model)."""

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
    def function_code_id(self) -> str:
        """The identity of the function code a new version would be published from (its SHA-256)."""

    @abstractmethod
    def api_url(self) -> str: ...

    @abstractmethod
    def keep_model(self, version: ModelVersion) -> str:
        """Copy the version's model.tar.gz from where the registry names it into the stage's own store, which
        neither the pipeline nor another stage's roles can write, and return where the copy is. The stage's
        endpoint serves that copy, so a file replaced in the registry later changes nothing it serves.
        BackendError when it cannot be copied."""

    @abstractmethod
    def fetch_model(self, version: ModelVersion, into: Path) -> Path:
        """The stage's own copy of the version's model.tar.gz (keep_model's) as it is now: the file itself
        when it is local, else a copy downloaded into `into`. BackendError when it cannot be read."""

    def model_content_sha256(self, version: ModelVersion) -> str:
        """The content SHA-256 of the stage's copy of the version's artifact (serving.artifact's, as registered)."""
        from serving.artifact import ArtifactError, artifact_sha256

        with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
            try:
                return artifact_sha256(self.fetch_model(version, Path(tmp)))
            except ArtifactError as exc:
                raise BackendError(str(exc)) from None

    @abstractmethod
    def smoke_set(self, version: ModelVersion) -> Path:
        """A local folder with the version's registered smoke set (manifest.json and photos), unverified.

        BackendError when the registry names none or it cannot be fetched; nothing is downloaded
        from anywhere but where the pipeline wrote it."""

    # --- release records and the promotion lock --------------------------------------------------
    @abstractmethod
    def save_release(self, release: Release) -> None: ...

    @abstractmethod
    def list_releases(self) -> list[Release]: ...

    def releases_of(self, stage: str) -> list[Release]:
        """Another stage's release records (read-only: production refuses what staging rolled back)."""
        return [r for r in self.list_releases() if r.stage == stage]

    @abstractmethod
    def record_qualification(self, target: str, release: Release) -> None:
        """Record in `target`'s own records, which only the roles that release `target` may write, that this
        stage's `release` passed its smoke tests and bake (its record as it is now)."""

    @abstractmethod
    def qualifications(self) -> list[Release]:
        """What the stage before recorded here with record_qualification: the only proof production accepts."""

    @abstractmethod
    def lock(self, owner: str) -> contextlib.AbstractContextManager[None]:
        """The stage's release lock: waits for a holder that is alive (up to a timeout), takes over a dead one's."""

    # --- the watch after the smoke tests -------------------------------------------------------
    @abstractmethod
    def bake_seconds(self) -> float:
        """How long a release stays under watch after its smoke tests (per stage)."""

    def bake_seconds_of(self, stage: str) -> float:
        """Another stage's bake time (production's qualification reads staging's)."""
        return self.bake_seconds()

    @abstractmethod
    def watch(self, release: Release, since: float) -> list[str]:
        """The release's health signals since `since` (epoch seconds): one line per breach, [] when healthy."""

    @abstractmethod
    def requests_served(self, release: Release, since: float) -> int:
        """Requests the stage's function answered since `since` (the release's, after its switch), as its
        signals count them and as late as they show them: how many requests a bake judged."""

    def signal_lag_seconds(self) -> float:
        """How long after a request its breach can first show in watch() and candidate_signals(); the bake
        and each traffic step last at least this long. Default: none (signals read as they happen)."""
        return 0.0

    # --- progressive delivery: a candidate beside the live release ------------------------------
    @abstractmethod
    def stage_candidate(self, version: ModelVersion, release: Release, same_model: bool) -> str:
        """Bring up the candidate beside the live release: its own model (unless `same_model`) and a
        function version that reaches only that model; record them in release.candidate; return the version."""

    @abstractmethod
    def route(self, primary: str, candidate: str = "", weight: float = 0.0, mirror: str = "") -> None:
        """The alias's routing: `primary` gets 1 - weight of requests, `candidate` gets `weight`; with
        `mirror`, every request answered by `primary` is also sent, asynchronously, to that version."""

    @abstractmethod
    def candidate_signals(self, release: Release, since: float) -> tuple[list[str], dict[str, int]]:
        """The candidate's own health since `since`: (breach lines, {"candidate": n, "primary": n} requests)."""

    @abstractmethod
    def shadow_pairs(self, release: Release, since: float) -> list[dict[str, Any]]:
        """Mirrored requests since `since`: {"live": {label, ms, status}, "candidate": {label, ms, status}}."""

    @abstractmethod
    def drop_candidate(self, release: Release) -> None:
        """Remove what stage_candidate brought up and the release no longer uses (never what serves)."""

    # --- housekeeping ----------------------------------------------------------------------------
    def retire(self, release: Release) -> None:  # noqa: B027 - optional hook
        """Free what a release no longer needs (locally: its processes). Default: nothing."""

    def live_release(self) -> Release | None:
        live = [r for r in self.list_releases() if r.status == LIVE and r.stage == self.stage]
        return live[-1] if live else None

    def served(self) -> dict[str, str]:
        """What the endpoint, the alias and the stage actually serve now (read, not remembered)."""
        return {
            "endpoint_config": self.current_endpoint_config(),
            "function_version": self.current_function_version(),
            "stage_deployment": self.current_deployment(),
        }

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        yield
