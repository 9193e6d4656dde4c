"""The candidate's own signals on AWS, read from CloudWatch while it serves a share of requests.

Lambda publishes per-version metrics for an alias with weighted routing (dimensions FunctionName,
Resource = function:alias, ExecutedVersion), but its Errors counts only a handler that raised or timed
out; the function counts its own 5xx answers and failed model calls per version (EMF, VERSION_METRICS),
which is how a candidate answering 502 shows even when it shares the live endpoint (a code-only
release); the candidate's own endpoint publishes its own SageMaker metrics. Breaches use the thresholds
of the local watch: MLOPS_BAKE_MAX_ERRORS (0) and MLOPS_BAKE_P90_MS (3000 ms) on the candidate's
function duration.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from mlops.backends import function_metrics
from mlops.backends.aws.config import AwsClients, AwsConfig, aws_call

PERIOD = 60
VERSION_METRICS = {"c5xx": function_metrics.SERVER_ERRORS, "cmodel": function_metrics.MODEL_ERRORS}


def _query(qid: str, namespace: str, metric: str, dims: dict[str, str], stat: str) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            },
            "Period": PERIOD,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def candidate_metrics(
    clients: AwsClients, cfg: AwsConfig, candidate: str, primary: str, endpoint: str, since: float
) -> tuple[list[str], dict[str, int]]:
    """(breach lines, {"candidate": invocations, "primary": invocations}) since `since`."""
    fn = {"FunctionName": cfg.function_name, "Resource": f"{cfg.function_name}:{cfg.function_alias}"}
    queries = [
        _query("cinv", "AWS/Lambda", "Invocations", {**fn, "ExecutedVersion": candidate}, "Sum"),
        _query("cerr", "AWS/Lambda", "Errors", {**fn, "ExecutedVersion": candidate}, "Sum"),
        _query("pinv", "AWS/Lambda", "Invocations", {**fn, "ExecutedVersion": primary}, "Sum"),
        _query("cdur", "AWS/Lambda", "Duration", {**fn, "ExecutedVersion": candidate}, "Maximum"),
    ]
    named = (function_metrics.SERVICE, cfg.function_name, candidate)
    own = dict(zip(function_metrics.VERSION_DIMENSIONS, named, strict=True))
    queries += [_query(q, function_metrics.NAMESPACE, name, own, "Sum") for q, name in VERSION_METRICS.items()]
    if endpoint and endpoint != cfg.endpoint_name:
        dims = {"EndpointName": endpoint, "VariantName": cfg.variant_name}
        queries.append(_query("e5xx", "AWS/SageMaker", "Invocation5XXErrors", dims, "Sum"))
    values = _values(clients, queries, since, "reading the candidate's metrics")
    total = {k: sum(v) for k, v in values.items()}
    max_errors = int(os.environ.get("MLOPS_BAKE_MAX_ERRORS") or 0)
    budget = float(os.environ.get("MLOPS_BAKE_P90_MS") or 3000)
    served = {"candidate": int(total.get("cinv", 0)), "primary": int(total.get("pinv", 0))}
    found = []
    if total.get("cerr", 0) > max_errors:
        found.append(f"candidate function errors: {total['cerr']:.0f} of {served['candidate']} invocations")
    if total.get("c5xx", 0) > max_errors:
        model = f" ({total.get('cmodel', 0):.0f} failed model calls)" if total.get("cmodel") else ""
        found.append(f"candidate 5xx answers: {total['c5xx']:.0f} of {served['candidate']} invocations{model}")
    if total.get("e5xx", 0) > max_errors:
        found.append(f"candidate endpoint 5xx: {total['e5xx']:.0f}")
    slowest = max(values.get("cdur") or [0.0])
    if slowest > budget:
        found.append(f"candidate latency: a minute's longest duration {slowest:.0f} ms over the {budget:.0f} ms budget")
    return found, served


def _values(clients: AwsClients, queries: list[dict[str, Any]], since: float, what: str) -> dict[str, list[float]]:
    """Each query's datapoints from the period holding `since` to now, as far as CloudWatch shows them yet."""
    start = datetime.fromtimestamp(since - since % PERIOD, UTC)
    end = datetime.fromtimestamp(time.time() + PERIOD, UTC)
    values: dict[str, list[float]] = {}
    with aws_call(what):
        pages = clients.get("cloudwatch").get_paginator("get_metric_data")
        for page in pages.paginate(MetricDataQueries=queries, StartTime=start, EndTime=end):
            for r in page.get("MetricDataResults", []):
                values.setdefault(r["Id"], []).extend(float(v) for v in r.get("Values", []))
    return values


def alias_invocations(clients: AwsClients, cfg: AwsConfig, since: float) -> int:
    """Invocations of the function through its alias since `since` (AWS/Lambda, Resource = function:alias)."""
    fn = {"FunctionName": cfg.function_name, "Resource": f"{cfg.function_name}:{cfg.function_alias}"}
    query = _query("inv", "AWS/Lambda", "Invocations", fn, "Sum")
    return int(sum(_values(clients, [query], since, "reading the function's invocations").get("inv", [])))
