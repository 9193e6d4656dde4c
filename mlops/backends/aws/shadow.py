"""Shadow pairs on AWS: the records the live function writes to its CloudWatch log group while it mirrors.

lambda/classify_api/shadow.py logs one `shadow pair` line per mirrored POST /predict (Powertools
JSON, which Lambda passes through unchanged): the live and the candidate endpoint's answers. The
release reads them back with logs:FilterLogEvents on that one log group (infra/logs.tf names it
`/aws/lambda/<function>`), in the shape the local backend's shadow log has.
"""

from __future__ import annotations

import json
from typing import Any

from mlops.backends.aws.config import AwsClients, AwsConfig, aws_call

RECORD = "shadow pair"  # the handler's message (classify_api.shadow.RECORD; the package is not importable here)


def log_group(cfg: AwsConfig) -> str:
    return f"/aws/lambda/{cfg.function_name}"


def _answer(doc: Any) -> dict[str, Any]:
    doc = doc if isinstance(doc, dict) else {}
    out = {"status": doc.get("status"), "label": doc.get("label"), "ms": doc.get("ms")}
    for extra in ("model_version", "error"):
        if doc.get(extra) is not None:
            out[extra] = doc[extra]
    return out


def parse(event: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
    """One log event as a pair {ts, request_id, live_version, live, candidate}; None unless it is a
    record of a request mirrored to `endpoint`."""
    try:
        doc = json.loads(str(event.get("message", "")).strip())
    except ValueError:
        return None
    pair = doc.get("shadow") if isinstance(doc, dict) else None
    if not isinstance(pair, dict) or pair.get("candidate_endpoint") != endpoint:
        return None
    return {
        "ts": float(event.get("timestamp", 0)) / 1000.0,
        "request_id": pair.get("request_id"),
        "live_version": pair.get("live_version"),
        "candidate_endpoint": endpoint,
        "live": _answer(pair.get("live")),
        "candidate": _answer(pair.get("candidate")),
    }


def read_pairs(
    clients: AwsClients, cfg: AwsConfig, endpoint: str, candidate_version: str, since: float
) -> list[dict[str, Any]]:
    """The pairs mirrored to `endpoint` since `since` (epoch seconds), oldest first."""
    logs: Any = clients.get("logs")
    group = log_group(cfg)
    pairs = []
    with aws_call(f"reading the shadow records in log group {group}"):
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, startTime=int(since * 1000), filterPattern=f'"{RECORD}"'
        )
        for page in pages:
            for event in page.get("events", []):
                pair = parse(event, endpoint)
                if pair is not None:
                    pairs.append({**pair, "candidate_version": candidate_version})
    return sorted(pairs, key=lambda p: p["ts"])
