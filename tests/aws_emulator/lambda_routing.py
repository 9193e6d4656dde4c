"""Lambda's weighted aliases: which version runs each invocation, what Lambda reports of it, and a record.

An alias names a version (FunctionVersion) and may send a share of invocations to another one
(RoutingConfig.AdditionalVersionWeights = {version: weight}); Lambda draws the version for each
invocation on its own, with those probabilities, and reports the version that ran: the
X-Amz-Executed-Version header of Invoke, the ExecutedVersion dimension of the metrics beside
FunctionName and Resource (function:alias), and the `[version]` in the name of the log stream.
moto 5.2.5 resolves an alias to its FunctionVersion only. Here every invocation through the public
API (api_front) or Invoke (lambda_invoke) draws its version so, publishes Lambda's metrics with
those dimensions (metrics) and is recorded, so that tests and the rehearsal can count what each
version answered (`executions`, `shares`).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aws_emulator import metrics

_draw = random.Random()
_lock = threading.Lock()


@dataclass(frozen=True)
class Execution:
    at: float  # epoch seconds
    region: str
    function: str
    qualifier: str  # as invoked: an alias, a version or $LATEST
    version: str  # the version that ran
    weights: tuple[tuple[str, float], ...]  # the alias's additional version weights when it ran
    error: bool


_executions: list[Execution] = []


def split(name_or_arn: str, qualifier: str | None) -> tuple[str, str]:
    """(function name, qualifier) from a name, `name:qualifier` or an ARN, and the Qualifier parameter."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6], (parts[7] if len(parts) > 7 else "") or (qualifier or "")
    name, _, inline = name_or_arn.partition(":")
    return name, inline or (qualifier or "")


def choose(backend: Any, name: str, qualifier: str) -> tuple[Any, bool, dict[str, float]]:
    """The function version that runs this invocation, whether `qualifier` is an alias, and the alias's
    additional version weights ({} when it has none)."""
    fn = backend.get_function(name, qualifier or None)
    alias = backend._lambdas._get_function_aliases(fn.function_name).get(qualifier) if qualifier else None
    if alias is None:
        return fn, False, {}
    routing = alias.routing_config or {}
    weights = {str(v): float(w) for v, w in routing.get("AdditionalVersionWeights", {}).items()}
    draw, total = _draw.random(), 0.0
    for version, weight in sorted(weights.items()):
        total += weight
        if draw < total:
            return backend.get_function(fn.function_name, version), True, weights
    return fn, True, weights


def invoke(
    backend: Any, region: str, name_or_arn: str, qualifier: str | None, payload: bytes
) -> tuple[bytes, str, str]:
    """Run one invocation as Lambda routes it; returns (payload, function error or "", version that ran)."""
    from aws_emulator.lambda_invoke import run

    name, qualifier = split(name_or_arn, qualifier)
    fn, alias, weights = choose(backend, name, qualifier)
    version = str(fn.version)
    started = time.monotonic()
    out, error, reported = run(fn, payload)
    took = reported if reported is not None else (time.monotonic() - started) * 1000
    metrics.function_invocation(region, fn.function_name, qualifier, bool(error), took, version if alias else "")
    with _lock:
        _executions.append(
            Execution(time.time(), region, fn.function_name, qualifier or "$LATEST", version,
                      tuple(sorted(weights.items())), bool(error))
        )  # fmt: skip
    return out, error, version


def executions(function: str = "", since: float = 0.0, until: float | None = None) -> list[Execution]:
    """The invocations recorded (of `function`, or all) between `since` and `until` (epoch seconds)."""
    with _lock:
        return [
            e
            for e in _executions
            if (not function or e.function == function) and e.at >= since and (until is None or e.at <= until)
        ]


def shares(found: list[Execution]) -> list[tuple[dict[str, float], Counter]]:
    """The invocations made while an alias split traffic, grouped by its weights (in the order they were
    first seen): [(weights, {version: how many it answered})]."""
    groups: dict[tuple, Counter] = {}
    for e in found:
        if e.weights:
            groups.setdefault(e.weights, Counter())[e.version] += 1
    return [(dict(w), counts) for w, counts in groups.items()]
