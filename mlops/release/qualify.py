"""Qualification for the next stage: a release that passed its smoke tests and bake here is recorded in the
next stage's own records (`mlops promote --qualify-for production`), which only that stage's release roles
may write, and which production's gate reads (mlops/release/choice.py `require_qualified`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from mlops.backends.base import Backend, Release
from mlops.release.choice import QUALIFYING_STAGE, PromotionRefused
from mlops.release.watch import bake
from mlops.smoke import SmokeResult

Log = Callable[[str], None]


def check_target(backend: Backend, target: str | None) -> None:
    """`target` is the stage this one qualifies releases for (before anything moves)."""
    if target and QUALIFYING_STAGE.get(target) != backend.stage:
        ahead = [stage for stage, before in QUALIFYING_STAGE.items() if before == backend.stage]
        where = f"only {', '.join(ahead)}" if ahead else "no stage"
        raise PromotionRefused(f"--qualify-for {target}: {backend.stage} releases qualify {where}")


def qualify(backend: Backend, release: Release, target: str, log: Log) -> None:
    backend.record_qualification(target, release)
    log(
        f"qualified for {target}: version {release.model_version} (model {release.model_sha256[:12] or '?'}) with "
        f"function code {release.code_id[:12] or '?'} passed its smoke tests and a "
        f"{float(release.bake.get('seconds', 0)):.0f} s bake in {backend.stage} "
        f"({release.bake.get('requests', '?')} requests judged)"
    )


def requalify(
    backend: Backend,
    live: Release,
    target: str,
    smoke: Callable[[], SmokeResult],
    probe: Callable[[], str],
    log: Log,
) -> Release:
    """The live release already serves what is asked: smoke-test and bake it again as it serves now (nothing
    moves), then qualify it. PromotionRefused when it fails either: nothing is recorded."""
    log(
        f"release {live.release_id} serves version {live.model_version} already: "
        f"smoke-testing and baking it for {target}"
    )
    started = time.time()
    result = smoke()
    if not result.passed:
        raise PromotionRefused(
            f"live release {live.release_id} failed its smoke tests now ({'; '.join(result.failures)}): "
            f"nothing recorded for {target}"
        )
    watched = bake(backend, live, started, log, probe=probe, own=int(result.checks.get("answered", 0)))
    if watched["breaches"]:
        raise PromotionRefused(
            f"live release {live.release_id} breached its bake ({'; '.join(watched['breaches'])}): "
            f"nothing recorded for {target}"
        )
    proof = dataclasses.replace(live, smoke=result.to_dict(), bake=watched)
    qualify(backend, proof, target, log)
    return proof
