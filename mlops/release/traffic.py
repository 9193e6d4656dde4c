"""Progressive delivery before the final switch: canary and linear traffic shifting, and shadow testing.

Used by promote (mlops/release/__init__.py). The candidate (its own function version reaching only its
own model) is brought up beside the live release; the split is decided in one place, the function alias's
weighted routing (backend.route), so a request is served wholly by the live release or wholly
by the candidate. Each step is watched like the bake: the release's signals (backend.watch) and
the candidate's own error rate and latency (backend.candidate_signals), for the step time and at
least the signals' lag (watch.signal_lag), so that the step's own requests can show. Shadow mirrors live
requests to the candidate, never returns its answers, and gates the promotion on the comparison.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops.backends.base import Backend, BackendError, ModelVersion, Release
from mlops.release.choice import PromotionRefused
from mlops.release.watch import bake_seconds, signal_lag, watch_for

STRATEGIES = ("all-at-once", "canary", "linear", "shadow")
DEFAULT_STRATEGY = {"production": "canary"}  # staging and local: all-at-once

Log = Callable[[str], None]


class CandidateBreached(BackendError):
    """A signal breached while the candidate served a share of requests: the release is rolled back."""


class ShadowRefused(PromotionRefused):
    """The shadow comparison did not pass its gate: the candidate never served a client; nothing moved."""


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise BackendError(f"{name}={raw!r} is not a number") from None


@dataclass
class TrafficPlan:
    """How a release reaches its traffic; None fields take the stage's defaults (environment overrides)."""

    strategy: str | None = None
    canary_percent: float = 10.0
    linear_step_percent: float = 25.0
    step_seconds: float | None = None  # default MLOPS_STEP_SECONDS, else the stage's bake time
    shadow_min_requests: int = 50
    shadow_min_agreement: float = 0.97
    shadow_seconds: float | None = None  # longest wait for the mirrored requests (MLOPS_SHADOW_SECONDS)
    p95_budget_ms: float = 500.0

    def resolve(self, backend: Backend) -> str:
        stage = backend.stage
        chosen = self.strategy or os.environ.get("MLOPS_STRATEGY", "").strip() or DEFAULT_STRATEGY.get(stage)
        chosen = chosen or "all-at-once"
        if chosen not in STRATEGIES:
            raise PromotionRefused(f"unknown strategy {chosen!r}: choose one of {', '.join(STRATEGIES)}")
        if not 0 < self.canary_percent < 100 or not 0 < self.linear_step_percent < 100:
            raise PromotionRefused("--canary-percent and --linear-step-percent must be between 0 and 100")
        if not 0 <= self.shadow_min_agreement <= 1 or self.shadow_min_requests < 1:
            raise PromotionRefused("--shadow-min-agreement must be within 0..1 and --shadow-min-requests at least 1")
        self.strategy = chosen
        return chosen

    def percents(self) -> list[float]:
        if self.strategy == "canary":
            return [self.canary_percent]
        steps, p = [], self.linear_step_percent
        while p < 100:
            steps.append(round(p, 2))
            p += self.linear_step_percent
        return steps

    def seconds(self, backend: Backend) -> float:
        if self.step_seconds is not None:
            return max(0.0, self.step_seconds)
        return max(0.0, _env_number("MLOPS_STEP_SECONDS", bake_seconds(backend)))

    def shadow_window(self, backend: Backend) -> float:
        if self.shadow_seconds is not None:
            return max(0.0, self.shadow_seconds)
        return max(1.0, _env_number("MLOPS_SHADOW_SECONDS", 3 * max(self.seconds(backend), 10.0)))


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1)


def compare(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Agreement (identical labels where the live release answered), the live × candidate confusion,
    candidate errors (5xx, or no answer where the live release answered) and the p95 latency of each."""
    answered = [p for p in pairs if p["live"].get("status") == 200]
    same = sum(1 for p in answered if p["candidate"].get("label") == p["live"].get("label"))
    errors = sum(
        1
        for p in pairs
        if int(p["candidate"].get("status") or 0) >= 500 or (p in answered and p["candidate"].get("status") != 200)
    )
    confusion = Counter(f"{p['live'].get('label')}→{p['candidate'].get('label')}" for p in answered)
    return {
        "mirrored": len(pairs),
        "compared": len(answered),
        "agreement": round(same / len(answered), 4) if answered else 0.0,
        "candidate_errors": errors,
        "confusion": dict(sorted(confusion.items())),
        "live_p95_ms": p95([float(p["live"]["ms"]) for p in pairs if p["live"].get("ms") is not None]),
        "candidate_p95_ms": p95([float(p["candidate"]["ms"]) for p in pairs if p["candidate"].get("ms") is not None]),
    }


def shadow_verdict(result: dict[str, Any], plan: TrafficPlan) -> list[str]:
    """Why the comparison does not let the candidate through; [] when it does."""
    why = []
    if result["compared"] < plan.shadow_min_requests:
        why.append(f"only {result['compared']} mirrored requests compared (at least {plan.shadow_min_requests})")
    if result["candidate_errors"]:
        why.append(f"{result['candidate_errors']} candidate errors")
    if result["compared"] and result["agreement"] < plan.shadow_min_agreement:
        why.append(f"agreement {result['agreement']:.3f} below {plan.shadow_min_agreement:.3f}")
    if result["candidate_p95_ms"] > plan.p95_budget_ms:
        why.append(f"candidate p95 {result['candidate_p95_ms']:.0f} ms over the {plan.p95_budget_ms:.0f} ms budget")
    return why


def describe(result: dict[str, Any]) -> str:
    confusion = ", ".join(f"{k} {v}" for k, v in result["confusion"].items()) or "none"
    return (
        f"agreement {result['agreement']:.3f} over {result['compared']} mirrored requests; "
        f"candidate errors {result['candidate_errors']}; live×candidate labels: {confusion}; "
        f"p95 live {result['live_p95_ms']:.0f} ms, candidate {result['candidate_p95_ms']:.0f} ms"
    )


def _shadow(backend: Backend, release: Release, primary: str, candidate: str, plan: TrafficPlan, log: Log) -> None:
    window = plan.shadow_window(backend)
    log(
        f"shadow: the live release (function version {primary}) keeps answering; every request is mirrored to "
        f"the candidate, model version {release.model_version} (function version {candidate}) "
        f"(up to {window:.0f} s, until {plan.shadow_min_requests} requests are compared)"
    )
    backend.route(primary, mirror=candidate)
    since = time.time()
    seen: dict[str, Any] = {}

    def read() -> list[str]:
        seen["result"] = compare(backend.shadow_pairs(release, since))
        return [f"{seen['result']['candidate_errors']} candidate errors"] if seen["result"]["candidate_errors"] else []

    try:
        watch_for(window, read, enough=lambda: seen["result"]["compared"] >= plan.shadow_min_requests)
    finally:
        backend.route(primary)  # mirroring stops whatever the verdict
    result = compare(backend.shadow_pairs(release, since))
    why = shadow_verdict(result, plan)
    release.traffic = {"strategy": "shadow", "shadow": {**result, "passed": not why, "refusals": why}}
    backend.save_release(release)
    log(f"shadow comparison: {describe(result)}")
    if why:
        raise ShadowRefused(f"shadow test refused version {release.model_version}: {'; '.join(why)}")


def _steps(backend: Backend, release: Release, primary: str, candidate: str, plan: TrafficPlan, log: Log) -> None:
    seconds = max(plan.seconds(backend), signal_lag(backend))  # a step's requests must be able to show
    release.traffic = {"strategy": plan.strategy, "steps": []}
    for percent in plan.percents():
        backend.route(primary, candidate, percent / 100.0)
        since = time.time()
        log(f"{plan.strategy}: {percent:g} % of requests to function version {candidate}, watched for {seconds:.0f} s")

        def read(since: float = since) -> list[str]:
            found, _ = backend.candidate_signals(release, since)
            return list(dict.fromkeys(backend.watch(release, since) + found))

        checks, breaches = watch_for(seconds, read)
        _, served = backend.candidate_signals(release, since)
        total = sum(served.values())
        step = {"percent": percent, "seconds": seconds, "checks": checks, "breaches": breaches, "served": served}
        step["share"] = round(served.get("candidate", 0) / total, 4) if total else 0.0
        release.traffic["steps"].append(step)
        backend.save_release(release)
        log(f"  served: {served.get('candidate', 0)} of {total} requests by the candidate ({step['share']:.1%})")
        if breaches:
            backend.route(primary)  # weight back to 0 at once; the rollback restores the rest
            raise CandidateBreached(f"breach at {percent:g} % ({plan.strategy}): {'; '.join(breaches)}")
    log(f"{plan.strategy}: every step passed; all requests to function version {candidate}")
    backend.route(candidate)  # the old endpoint serves nobody while the final switch moves it


def progressive(
    backend: Backend, release: Release, mv: ModelVersion, previous: Release | None, plan: TrafficPlan, log: Log
) -> None:
    """Run the strategy's phase with the candidate beside the live release; the caller then switches.

    Raises CandidateBreached (roll back) or ShadowRefused (nothing served by the candidate)."""
    if plan.strategy == "all-at-once":
        return
    if previous is None or not previous.lambda_version:
        log(f"{plan.strategy}: nothing is live to share traffic with: the first release goes all at once")
        return
    same_model = previous.model_version == mv.version and bool(previous.endpoint_config)
    if plan.strategy == "shadow" and same_model and not backend.mirrors_code:
        raise ShadowRefused(
            f"shadow testing on the {backend.name} backend compares models, and model version {mv.version} is "
            "already live (a code-only release): use canary"
        )
    log(f"{plan.strategy}: bringing up candidate version {mv.version} beside version {previous.model_version}")
    candidate = backend.stage_candidate(mv, release, same_model)
    backend.save_release(release)
    if plan.strategy == "shadow":
        _shadow(backend, release, previous.lambda_version, candidate, plan, log)
        log(f"shadow passed: all requests to version {candidate}")
        backend.route(candidate)  # as after the last step: the old endpoint serves nobody while it moves
    else:
        _steps(backend, release, previous.lambda_version, candidate, plan, log)
