"""Promotion and rollback, written once above the backend seam.

promote: lock → pick an Approved version → switch endpoint, function alias and API stage →
smoke-test through the public API → keep it, or restore all three to the previous release and
fail with the reason. Every attempt is recorded as a release.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from mlops.backends.base import APPROVED, Backend, BackendError, Release
from mlops.backends.local_registry import ModelVersion
from mlops.smoke import SmokeConfig, SmokeResult, SmokeSetupError, run_smoke, smoke_photos


class PromotionRefused(RuntimeError):
    """The request cannot be carried out (not approved, nothing to promote, ...)."""


class PromotionFailed(RuntimeError):
    """The candidate was switched in, failed, and was rolled back; the message says why."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def pick_version(backend: Backend, version: str | None) -> ModelVersion:
    """The requested version (which must be Approved), or the newest Approved version not live."""
    if version:
        mv = backend.get_version(version)
        if mv.status != APPROVED:
            raise PromotionRefused(
                f"model version {mv.version} is {mv.status}, not Approved: run `mlops approve {mv.version}` first"
            )
        return mv
    live = backend.live_release()
    approved = [v for v in backend.list_versions() if v.status == APPROVED]
    candidates = [v for v in approved if not live or v.version != live.model_version]
    if not candidates:
        if live and approved:
            raise PromotionRefused(f"nothing to promote: version {live.model_version} is live and newest approved")
        raise PromotionRefused("no Approved model version: approve one with `mlops approve VERSION`")
    return max(candidates, key=lambda v: int(v.version) if v.version.isdigit() else v.version)


def approve(backend: Backend, version: str, who: str, reason: str, reject: bool = False) -> ModelVersion:
    status = "Rejected" if reject else APPROVED
    return backend.set_approval(version, status, who, reason)


def _restore(backend: Backend, previous: Release | None, candidate: Release) -> None:
    """Put endpoint, alias and stage back as the previous release had them."""
    if previous is None:
        return
    if previous.endpoint_config:  # even when the deploy raised: the endpoint may still be moving to the candidate
        backend.restore_endpoint(previous.endpoint_config)
    if candidate.lambda_version and previous.lambda_version:
        backend.move_alias(previous.lambda_version)
    if candidate.deployment_id and previous.deployment_id:
        backend.restore_stage(previous.deployment_id)


def promote(
    backend: Backend, version: str | None, who: str, smoke: SmokeConfig, log: Callable[[str], None] = print
) -> Release:
    """Promote a version; returns the live release or raises PromotionRefused / PromotionFailed."""
    with backend.lock(f"promote by {who}"):
        mv = pick_version(backend, version)
        previous = backend.live_release()
        if previous and previous.model_version == mv.version:
            log(f"version {mv.version} is already live (release {previous.release_id}): nothing to do")
            return previous
        try:  # before anything moves: a promotion that cannot be smoke-tested must not start
            photos = smoke_photos(smoke)
        except SmokeSetupError as exc:
            raise PromotionRefused(str(exc)) from exc
        release = Release(
            release_id=time.strftime("r%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
            model_version=mv.version,
            stage=backend.stage,
            who=who,
            started=_now(),
            previous_release_id=previous.release_id if previous else "",
        )
        backend.save_release(release)
        try:
            log(f"deploying model version {mv.version} to the endpoint (blue/green)")
            release.endpoint_config = backend.deploy_endpoint(mv, release.release_id)
            release.lambda_version = backend.publish_function(release)
            log(f"moving alias live to function version {release.lambda_version}")
            backend.move_alias(release.lambda_version)
            release.deployment_id = backend.deploy_stage(release)
            log(f"stage deployment {release.deployment_id}; smoke-testing {backend.api_url()}")
            result: SmokeResult = run_smoke(backend.api_url(), smoke, photos)
            release.smoke = result.to_dict()
            if not result.passed:
                raise PromotionFailed(f"smoke tests failed: {'; '.join(result.failures)}")
        except (Exception, KeyboardInterrupt) as exc:  # whatever stopped it, the previous release comes back
            known = isinstance(exc, PromotionFailed | BackendError)
            reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
            log(f"rolling back: {reason}")
            _restore(backend, previous, release)
            release.status, release.reason, release.finished = "rolled_back", reason, _now()
            backend.save_release(release)
            backend.retire(release)
            target = f"version {previous.model_version}" if previous else "the previous state"
            raise PromotionFailed(f"release of version {mv.version} rolled back to {target}: {reason}") from exc
        release.status, release.finished = "live", _now()
        backend.save_release(release)
        if previous:
            previous.status = "superseded"
            backend.save_release(previous)
        return release


def rollback(
    backend: Backend, who: str, smoke: SmokeConfig | None = None, log: Callable[[str], None] = print
) -> Release:
    """Return to the release before the live one (endpoint config, alias and stage as recorded)."""
    with backend.lock(f"rollback by {who}"):
        live = backend.live_release()
        if live is None:
            raise PromotionRefused("nothing is live: there is nothing to roll back")
        by_id = {r.release_id: r for r in backend.list_releases()}
        target = by_id.get(live.previous_release_id)
        if target is None:
            raise PromotionRefused(f"release {live.release_id} has no previous release to return to")
        try:
            photos = smoke_photos(smoke) if smoke is not None else None
        except SmokeSetupError as exc:
            raise PromotionRefused(str(exc)) from exc
        log(f"rolling back from version {live.model_version} to version {target.model_version}")
        backend.restore_endpoint(target.endpoint_config)
        backend.move_alias(target.lambda_version)
        backend.restore_stage(target.deployment_id)
        if smoke is not None:
            result = run_smoke(backend.api_url(), smoke, photos)
            target.smoke = result.to_dict()
        live.status, live.reason, live.finished = "rolled_back", f"rolled back by {who}", _now()
        target.status = "live"
        backend.save_release(live)
        backend.save_release(target)
        backend.retire(live)
        return target


def status(backend: Backend) -> dict:
    """What is live: model version, endpoint config, function version, stage deployment, API URL."""
    live = backend.live_release()
    return {
        "backend": backend.name,
        "stage": backend.stage,
        "api_url": backend.api_url(),
        "model_version": live.model_version if live else None,
        "release_id": live.release_id if live else None,
        "endpoint_config": backend.current_endpoint_config() or None,
        "lambda_version": backend.current_function_version() or None,
        "stage_deployment": backend.current_deployment() or None,
        "promoted_by": live.who if live else None,
        "promoted_at": live.finished if live else None,
    }
