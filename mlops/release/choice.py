"""What a promotion releases: the version choice, the content's kind, and the stage-to-stage gate.

Used by promote (mlops/release/__init__.py). A release is a model version plus the function code (its SHA-256).
"""

from __future__ import annotations

from mlops.backends.base import (
    APPROVED,
    FAILED,
    LIVE,
    REFUSED,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    SUPERSEDED,
    Backend,
    BackendError,
    ModelVersion,
    Release,
)
from mlops.release.watch import stage_bake_seconds
from training import attestation

# A stage releases only what passed its smoke tests in the stage before it.
QUALIFYING_STAGE = {"production": "staging"}


class PromotionRefused(RuntimeError):
    """The request cannot be carried out (not approved, not qualified, ...); nothing moved."""


def pick_version(
    backend: Backend, version: str | None, live: Release | None, code_id: str
) -> tuple[ModelVersion | None, str]:
    """The version to release and a note; (None, why) when there is nothing to do.

    Named: it must be Approved (older than the live one is a downgrade, said so). Not named: the
    newest Approved version, never one older than what is live, nor one this stage already rolled
    back with the same function code (deploy-on-merge would retry it on every push)."""
    live_version = live.model_version if live else ""
    live_no = int(live_version) if str(live_version).isdigit() else -1
    if version:
        mv = backend.get_version(version)
        if mv.status != APPROVED:
            raise PromotionRefused(
                f"model version {mv.version} is {mv.status}, not Approved: run `mlops approve {mv.version}` first"
            )
        note = f"downgrade from version {live_version} to version {mv.version}" if mv.number < live_no else ""
        return mv, note
    approved = [v for v in backend.list_versions() if v.status == APPROVED]
    if not approved:
        return None, "no Approved model version: nothing to promote (approve one with `mlops approve VERSION`)"
    newest = max(approved, key=lambda v: v.number)
    if newest.number < live_no:
        return None, (
            f"version {live_version} is live and newer than the newest Approved version {newest.version}: "
            f"nothing to do (name a version to downgrade)"
        )
    failed = _failed_here(backend, newest.version, code_id)
    if failed:
        return None, (
            f"version {newest.version} was rolled back in {backend.stage} with this function code "
            f"(release {failed.release_id}: {failed.reason[:120]}): not retried on its own; name it to try again"
        )
    return newest, ""


def _failed_here(backend: Backend, version: str, code_id: str) -> Release | None:
    """The newest release of this stage with this model version and this function code, when it ended badly.

    Both must match: a rolled-back code change beside the same live model is not retried either, and a
    pair that was released since (by name) is no longer held against itself."""
    same = [
        r
        for r in backend.list_releases()
        if r.stage == backend.stage and r.model_version == version and r.code_id in ("", code_id)
    ]
    return same[-1] if same and same[-1].status in (ROLLED_BACK, ROLLBACK_FAILED, FAILED, REFUSED) else None


def require_qualified(backend: Backend, mv: ModelVersion, code_id: str) -> None:
    """This model version with this function code passed its smoke tests in the stage before, then a bake
    of at least that stage's configured length with no breach, and was not rolled back there since.

    The proof is a qualification in this stage's own records (record_qualification, written by a release of
    the stage before run with `--qualify-for`, which only this stage's release roles may write): the stage
    before's own records can make a version fail this check (rolled back there), never pass it. Compared by
    content: the model SHA-256 and function CodeSha256 qualified are the ones about to be released."""
    before = QUALIFYING_STAGE.get(backend.stage)
    if not before:
        return
    need = stage_bake_seconds(backend, before)
    undone = {r.release_id for r in backend.releases_of(before) if r.status not in (LIVE, SUPERSEDED)}

    def baked(r: Release) -> bool:
        return bool(r.bake) and not r.bake.get("breaches") and float(r.bake.get("seconds", -1)) >= need

    passed = [
        r
        for r in backend.qualifications()
        if r.stage == before
        and r.release_id not in undone
        and r.model_version == mv.version
        and mv.model_sha256
        and r.model_sha256 == mv.model_sha256
        and r.code_id == code_id
        and r.status in (LIVE, SUPERSEDED)
        and r.smoke.get("passed")
        and baked(r)
    ]
    if not passed:
        raise PromotionRefused(
            f"version {mv.version} (model {mv.model_sha256[:12] or '?'}) with function code {code_id[:12] or '?'} "
            f"has not passed its smoke tests in {before} and a bake of at least {need:g} s there: "
            f"promote it to {before} with --qualify-for {backend.stage} first"
        )


def require_registered_content(backend: Backend, mv: ModelVersion) -> None:
    """The version's artifact is copied into the stage's own store, and the copy, which the stage's endpoint
    will serve, is the one registered: its content SHA-256 (serving.artifact) equals the one recorded at
    registration. The model server checks the same at load, so a file swapped after this check is refused there."""
    if not mv.model_sha256:
        raise PromotionRefused(
            f"version {mv.version} was registered without its model's content SHA-256: run the pipeline to register "
            "the model again"
        )
    try:
        backend.keep_model(mv)
    except BackendError as exc:
        raise PromotionRefused(
            f"version {mv.version}: its model artifact cannot be copied for {backend.stage}: {exc}"
        ) from None
    try:
        found = backend.model_content_sha256(mv)
    except BackendError as exc:
        raise PromotionRefused(f"version {mv.version}: its model artifact cannot be checked: {exc}") from None
    if found != mv.model_sha256:
        raise PromotionRefused(
            f"version {mv.version}: its model artifact changed after registration (content sha256 {found[:12]}, "
            f"registered {mv.model_sha256[:12]})"
        )


def release_kind(previous: Release | None, mv: ModelVersion, code_id: str) -> str:
    if previous is None:
        return "first"
    model = previous.model_version != mv.version
    code = bool(previous.code_id) and previous.code_id != code_id
    return "model+code" if model and code else "model" if model else "code" if code else "repair"


def require_attested(backend: Backend, mv: ModelVersion) -> None:
    """The version's registered hashes carry the pipeline's signature (training/attestation.py): verified
    with the public half of the key the backend is configured with (on AWS the KMS key only the pipeline
    role may sign with), never with a key the version names. Checked before any other registered value is
    trusted, so a version written into the registry by anyone else is refused before anything moves."""
    try:
        key = backend.registry.attestation_key()
    except BackendError as exc:
        raise PromotionRefused(f"version {mv.version}: its registration cannot be verified: {exc}") from None
    signed = attestation.message(
        backend.registry.name, mv.model_sha256, mv.smoke_sha256, mv.data_manifest_sha256, mv.git_sha
    )
    try:
        attestation.verify(key, signed, mv.attestation)
    except (attestation.AttestationError, ValueError) as exc:
        raise PromotionRefused(
            f"version {mv.version} is not attested by the pipeline's registration: {exc}; register it with the pipeline"
        ) from None
