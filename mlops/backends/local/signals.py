"""A local release's health signals, read from its function version's log: what the alarms watch on AWS;
and the shadow log the local front writes while it mirrors requests to a candidate.

The handler writes one CloudWatch embedded-metric (EMF) line per invocation through Powertools, and
one more, with the version's dimensions (mlops/backends/function_metrics), for each 5xx answer; the
local runtime writes one JSON line per unhandled error. From those lines, since a moment: function
errors (unhandled, as Lambda's Errors metric), 5xx answers (the function's own count, which the AWS
canary reads too), and the p90 of PredictionLatency against the same budget as the `lambda-duration`
alarm.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.backends import function_metrics

# Records of the handler that are no request's own: the cold start's and the label count beside a prediction.
NOT_A_REQUEST = {"ColdStart", "Predictions"}


@dataclass
class Signals:
    invocations: int = 0
    server_errors: int = 0
    unhandled: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def p90_ms(self) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def _values(raw: object) -> list[float]:
    items = raw if isinstance(raw, list) else [raw]
    return [float(v) for v in items if isinstance(v, int | float)]


def read_signals(logs: list[Path], since: float) -> Signals:
    """Fold the EMF and unhandled-error lines written at or after `since` (epoch seconds)."""
    sig = Signals()
    for path in logs:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            if "unhandled" in doc:
                if float(doc.get("ts", 0)) >= since:
                    sig.unhandled += 1
                continue
            meta = doc.get("_aws")
            if not isinstance(meta, dict) or float(meta.get("Timestamp", 0)) / 1000.0 < since:
                continue
            directives = meta.get("CloudWatchMetrics", [])
            names = {m.get("Name") for d in directives for m in d.get("Metrics", [])}
            if any(d.get("Dimensions") == [list(function_metrics.VERSION_DIMENSIONS)] for d in directives):
                if function_metrics.SERVER_ERRORS in names:
                    sig.server_errors += int(sum(_values(doc.get(function_metrics.SERVER_ERRORS, 0))))
                continue
            if names - NOT_A_REQUEST:  # the request's own record: its latency or the error it was answered with
                sig.invocations += 1
            if "PredictionLatency" in names:
                sig.latencies_ms.extend(_values(doc.get("PredictionLatency")))
    return sig


def breaches(sig: Signals) -> list[str]:
    """The alarm thresholds applied to the local signals (MLOPS_BAKE_MAX_ERRORS, MLOPS_BAKE_P90_MS)."""
    max_errors = int(os.environ.get("MLOPS_BAKE_MAX_ERRORS") or 0)
    p90_budget = float(os.environ.get("MLOPS_BAKE_P90_MS") or 3000)
    found = []
    if sig.unhandled > max_errors:
        found.append(f"function errors: {sig.unhandled} unhandled of {sig.invocations + sig.unhandled} invocations")
    if sig.server_errors > max_errors:
        found.append(f"5xx answers: {sig.server_errors} of {sig.invocations} requests")
    if len(sig.latencies_ms) >= 5 and sig.p90_ms() > p90_budget:
        found.append(f"latency: p90 {sig.p90_ms():.0f} ms over the {p90_budget:.0f} ms budget")
    return found


def read_shadow_log(path: Path, since: float) -> list[dict[str, Any]]:
    """The local front's shadow log since `since`: one line per mirrored request with both answers."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    pairs = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and float(doc.get("ts", 0)) >= since and "live" in doc and "candidate" in doc:
            pairs.append(doc)
    return pairs
