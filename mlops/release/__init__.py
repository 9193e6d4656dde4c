"""Promotion, rollback and repair, written once above the backend seam.

promote: lock → choose what to release (model version + function code) → refuse what is not
allowed → switch endpoint, function alias and API stage → smoke-test through the public API →
watch the release for its bake time → keep it, or restore all three to the previous release.
Every attempt is a release record; "already live" and "drift" are decided from what the
platform serves, never from the records alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.backends.base import (
    APPROVED,
    FAILED,
    IN_PROGRESS,
    LIVE,
    REFUSED,
    REJECTED,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    SUPERSEDED,
    Backend,
    BackendError,
    LockLostError,
    ModelVersion,
    Release,
)
from mlops.release import choice
from mlops.release.choice import PromotionRefused as PromotionRefused
from mlops.release.choice import pick_version, release_kind, require_qualified, require_registered_content
from mlops.release.qualify import check_target, qualify, requalify
from mlops.release.state import (
    REPAIR_HINT,
    Interrupted,
    RestoreFailed,
    apply_state,
    drift,
    interruptible,
    now_iso,
    restore,
    safe_served,
)
from mlops.release.traffic import ShadowRefused, TrafficPlan, progressive
from mlops.release.watch import bake
from mlops.smoke import SmokeConfig, SmokeResult, SmokeSetupError, bake_probe, run_smoke, smoke_photos


class PromotionFailed(RuntimeError):
    """The candidate was switched in, failed, and was rolled back; the message says why."""


class RollbackFailed(PromotionFailed):
    """The candidate failed and the stage could not be restored: `mlops repair` is needed."""


Log = Callable[[str], None]


def approve(backend: Backend, version: str, who: str, reason: str, reject: bool = False) -> ModelVersion:
    return backend.set_approval(version, REJECTED if reject else APPROVED, who, reason)


def _switch(backend: Backend, release: Release, mv: ModelVersion, previous: Release | None, log: Log) -> None:
    """The one switching sequence: endpoint (only when the model changes), function version, alias, stage."""
    if previous and previous.model_version == mv.version and previous.endpoint_config:
        release.endpoint_config = previous.endpoint_config
        log(f"model version {mv.version} unchanged: the endpoint stays on {release.endpoint_config}")
    else:
        log(f"deploying model version {mv.version} to the endpoint (blue/green)")
        release.endpoint_config = backend.deploy_endpoint(mv, release)
    release.lambda_version = backend.publish_function(release)
    log(f"moving alias live to function version {release.lambda_version}")
    backend.move_alias(release.lambda_version)
    release.deployment_id = backend.deploy_stage(release)


def _mark_abandoned(backend: Backend) -> list[Release]:
    """Releases left in_progress by a holder that is gone (killed, cancelled, its lock taken over) are failed."""
    abandoned = [r for r in backend.list_releases() if r.status == IN_PROGRESS and r.stage == backend.stage]
    for r in abandoned:
        r.status, r.reason, r.finished = FAILED, "its promotion stopped without finishing", now_iso()
        backend.save_release(r)
    return abandoned


def _settle(backend: Backend, live: Release | None, abandoned: list[Release], log: Log) -> None:
    """Before anything else: the stage back to what its records say is live, and what abandoned releases
    brought up (a candidate endpoint, function versions) gone."""
    moved = drift(backend, live)
    if moved:
        what = f"release {live.release_id} (version {live.model_version})" if live else "nothing (no release is live)"
        log(f"the stage drifted from its records ({moved}): restoring {what} first")
        restore(backend, live, log)
    _clear_abandoned(backend, abandoned, log)


def _clear_abandoned(backend: Backend, abandoned: list[Release], log: Log) -> None:
    """Once the stage serves its records again: what abandoned releases brought up goes (best effort)."""
    for r in abandoned:
        _drop_candidate(backend, r, log)
        try:
            backend.retire(r)
        except BackendError as exc:
            log(f"release {r.release_id}: its resources are left in place: {exc}")


def _undo(
    backend: Backend, previous: Release | None, release: Release, reason: str, log: Log, outcome: str = ROLLED_BACK
) -> None:
    """Restore the previous release (or nothing, after a first release); record how it ended (`outcome`).

    Also after a refused shadow test, whose candidate never took traffic: the stage is checked back
    to what it served, and the candidate's resources go."""
    log(f"rolling back: {reason}" if outcome == ROLLED_BACK else f"refused: {reason}")
    try:
        restore(backend, previous, log)
    except RestoreFailed as exc:
        release.status, release.finished = ROLLBACK_FAILED, now_iso()
        release.reason = f"{reason}; the restore failed: {exc}"
        release.observed = safe_served(backend)
        backend.save_release(release)
        raise RollbackFailed(
            f"release of version {release.model_version} failed ({reason}) and the rollback failed too ({exc}); "
            f"the stage serves {release.observed}: run `{REPAIR_HINT} --backend {backend.name} --stage {backend.stage}`"
        ) from None
    release.status, release.reason, release.finished = outcome, reason, now_iso()
    backend.save_release(release)
    _drop_candidate(backend, release, log)
    backend.retire(release)


def _drop_candidate(backend: Backend, release: Release, log: Log) -> None:
    """Remove the candidate's own model and function version once nothing routes to them (best effort)."""
    if not release.candidate:
        return
    try:
        backend.drop_candidate(release)
    except BackendError as exc:
        log(f"the candidate's resources are left in place: {exc}")


def _photos(smoke: SmokeConfig, backend: Backend, mv: ModelVersion) -> list[tuple[Path, str]]:
    """The version's smoke photos (its own registered set, checked), or PromotionRefused: nothing moves without."""
    try:
        return smoke_photos(smoke, backend, mv)
    except SmokeSetupError as exc:
        raise PromotionRefused(str(exc)) from exc


def promote(
    backend: Backend,
    version: str | None,
    who: str,
    smoke: SmokeConfig,
    log: Log = print,
    plan: TrafficPlan | None = None,
    qualify_for: str | None = None,
) -> Release | None:
    """Release a version (and the current function code); returns the live release, None when nothing was to do.

    The plan's strategy (all-at-once, canary, linear, shadow; default per stage) decides how the
    candidate reaches its traffic before the final switch. With `qualify_for` (the next stage), the
    release that passed, or the live one smoke-tested and baked again when it already serves what is
    asked, is recorded in that stage's records (mlops/release/qualify.py). Raises PromotionRefused
    (nothing moved; ShadowRefused after a failed shadow test), PromotionFailed (rolled back) or RollbackFailed."""
    plan = plan or TrafficPlan(p95_budget_ms=smoke.p95_budget_ms)
    strategy = plan.resolve(backend)
    check_target(backend, qualify_for)
    with backend.lock(f"promote by {who}"):
        previous = backend.live_release()
        _settle(backend, previous, _mark_abandoned(backend), log)  # what is served, before any early return
        code_id = backend.function_code_id()
        mv, note = pick_version(backend, version, previous, code_id)
        if mv is None:
            log(note)
            return None
        same = previous and previous.model_version == mv.version and previous.code_id in ("", code_id)
        live = previous if same else None  # already serves this version with this code
        if live and not qualify_for:
            log(f"version {mv.version} is already live (release {live.release_id}): nothing to do")
            return live
        choice.require_attested(backend, mv)  # the registered hashes are the pipeline's, or nothing else is trusted
        if live and qualify_for:  # smoke-tested and baked again as it serves, for the next stage
            photos, url = _photos(smoke, backend, mv), backend.api_url()
            check = lambda: run_smoke(url, smoke, photos)  # noqa: E731
            return requalify(backend, live, qualify_for, check, bake_probe(url, smoke, photos), log)
        require_qualified(backend, mv, code_id)
        photos = _photos(smoke, backend, mv)  # before anything moves: a candidate without its own, unaltered set
        require_registered_content(backend, mv)  # and one whose model is not, by content, the registered one
        if note:
            log(note)
        release = Release(
            release_id=time.strftime("r%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
            model_version=mv.version,
            stage=backend.stage,
            who=who,
            started=now_iso(),
            previous_release_id=previous.release_id if previous else "",
            code_id=code_id,
            model_sha256=mv.model_sha256,
            kind=release_kind(previous, mv, code_id) + (" (downgrade)" if note else ""),
            strategy=strategy,
        )
        backend.save_release(release)
        with interruptible() as checkpoint:
            try:
                progressive(backend, release, mv, previous, plan, log)
                checkpoint()
                _switch(backend, release, mv, previous, log)
                checkpoint()
                switched_at = time.time()
                log(f"stage deployment {release.deployment_id}; smoke-testing {backend.api_url()}")
                result: SmokeResult = run_smoke(backend.api_url(), smoke, photos)
                release.smoke = result.to_dict()
                checkpoint()
                if not result.passed:
                    raise PromotionFailed(f"smoke tests failed: {'; '.join(result.failures)}")
                probe, own = bake_probe(backend.api_url(), smoke, photos), int(result.checks.get("answered", 0))
                release.bake = bake(backend, release, switched_at, log, probe=probe, own=own)
                checkpoint()
                if release.bake["breaches"]:
                    raise PromotionFailed(f"breach during the bake: {'; '.join(release.bake['breaches'])}")
            except ShadowRefused as exc:  # the candidate never answered a client: the live release stays
                _undo(backend, previous, release, str(exc), log, outcome=REFUSED)
                raise
            except LockLostError as exc:
                if not exc.taken:  # renewals failing: restore while the lock is still ours
                    _undo(backend, previous, release, str(exc), log)
                    raise PromotionFailed(f"release of version {mv.version} rolled back: {exc}") from exc
                hint = f"{REPAIR_HINT} --backend {backend.name} --stage {backend.stage}"
                raise PromotionFailed(  # another holder has the stage now: it compares what is served with the records
                    f"release of version {mv.version} stopped, not undone: {exc}; `{hint}` restores what they name"
                ) from exc
            except (Exception, KeyboardInterrupt, SystemExit, Interrupted) as exc:  # the previous release comes back
                known = isinstance(exc, PromotionFailed | BackendError | Interrupted)
                reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
                _undo(backend, previous, release, reason, log)
                target = f"version {previous.model_version}" if previous else "nothing serving (first release)"
                raise PromotionFailed(f"release of version {mv.version} rolled back to {target}: {reason}") from exc
        release.status, release.finished = LIVE, now_iso()
        backend.save_release(release)
        if previous:
            previous.status = SUPERSEDED
            backend.save_release(previous)
        _drop_candidate(backend, release, log)
        if qualify_for:
            qualify(backend, release, qualify_for, log)
        return release


def rollback(backend: Backend, who: str, smoke: SmokeConfig | None = None, log: Log = print) -> Release:
    """Return to the release before the live one; when the stage drifted from its live release, restore that."""
    with backend.lock(f"rollback by {who}"):
        _mark_abandoned(backend)
        live = backend.live_release()
        if live is None:
            raise PromotionRefused("nothing is live: there is nothing to roll back")
        if drift(backend, live):
            log(f"the stage drifted from live release {live.release_id}: restoring it")
            _repair_to(backend, live, who, log)
            return live
        target = {r.release_id: r for r in backend.list_releases()}.get(live.previous_release_id)
        if target is None:
            raise PromotionRefused(f"release {live.release_id} has no previous release to return to")
        photos = _photos(smoke, backend, backend.get_version(target.model_version)) if smoke else None
        log(f"rolling back from version {live.model_version} to version {target.model_version}")
        with interruptible():
            try:
                restore(backend, target, log)
            except (RestoreFailed, Interrupted) as exc:
                live.observed = safe_served(backend)
                backend.save_release(live)
                raise RollbackFailed(
                    f"rollback to version {target.model_version} failed ({exc}); the stage serves {live.observed}: "
                    f"run `{REPAIR_HINT} --backend {backend.name} --stage {backend.stage}`"
                ) from None
        if smoke is not None:
            target.smoke = run_smoke(backend.api_url(), smoke, photos).to_dict()
        live.status, live.reason, live.finished = ROLLED_BACK, f"rolled back by {who}", now_iso()
        target.status = LIVE
        backend.save_release(live)
        backend.save_release(target)
        backend.retire(live)
        return target


def _repair_to(backend: Backend, target: Release | None, who: str, log: Log) -> Release | None:
    with interruptible():
        try:
            restore(backend, target, log)
        except (RestoreFailed, Interrupted) as exc:
            raise RollbackFailed(f"repair failed: {exc}; run `{REPAIR_HINT}` again when the platform settles") from None
    for r in backend.list_releases():
        if r.status == ROLLBACK_FAILED and r.stage == backend.stage:
            r.status, r.reason = ROLLED_BACK, f"{r.reason}; repaired by {who} at {now_iso()}"
            backend.save_release(r)
            backend.retire(r)
    return target


def repair(backend: Backend, who: str, log: Log = print) -> tuple[Release | None, dict[str, Any]]:
    """Bring the stage back to its last good release whenever what it serves differs; returns (target, drift)."""
    with backend.lock(f"repair by {who}"):
        abandoned = _mark_abandoned(backend)
        live = backend.live_release()
        found = drift(backend, live)
        pending = [r for r in backend.list_releases() if r.status == ROLLBACK_FAILED and r.stage == backend.stage]
        if not found and not pending:
            _clear_abandoned(backend, abandoned, log)
            log("the stage serves its live release: nothing to repair")
            return live, {}
        what = f"release {live.release_id} (version {live.model_version})" if live else "nothing (no release is live)"
        log(f"restoring the stage to {what}; drift: {found or 'none'}")
        target = _repair_to(backend, live, who, log)
        _clear_abandoned(backend, abandoned, log)  # what a killed or cancelled release brought up beside it
        return target, found


def bring_up_release(backend: Backend, live: Release) -> None:
    """Serve a recorded release again (the local stack after `mlops up`): the same steps as a restore."""
    apply_state(backend, live, force=True)


def status(backend: Backend) -> dict[str, Any]:
    """What is live and what the stage actually serves; any difference is listed under `drift`."""
    live = backend.live_release()
    served = backend.served()
    failed = [r.release_id for r in backend.list_releases() if r.status == ROLLBACK_FAILED and r.stage == backend.stage]
    return {
        "backend": backend.name,
        "stage": backend.stage,
        "api_url": backend.api_url(),
        "model_version": live.model_version if live else None,
        "release_id": live.release_id if live else None,
        "code_id": live.code_id if live else None,
        "endpoint_config": served["endpoint_config"] or None,
        "lambda_version": served["function_version"] or None,
        "stage_deployment": served["stage_deployment"] or None,
        "promoted_by": live.who if live else None,
        "promoted_at": live.finished if live else None,
        "drift": drift(backend, live, served),
        "needs_repair": failed,
    }
