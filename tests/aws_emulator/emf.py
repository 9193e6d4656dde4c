"""CloudWatch embedded metric format (EMF): the metrics CloudWatch Logs extracts from a log line.

On AWS, a line a function writes that is a JSON object with an `_aws.CloudWatchMetrics` directive
becomes, once it reaches the log group, one datapoint per metric named in a directive and per
dimension set of it (values from the object's members; a list is several datapoints). Lines that are
not EMF are only log lines. Used by lambda_logs for the emulator and by unit-test stand-ins of Lambda.
"""

from __future__ import annotations

import json
from typing import Any

Point = tuple[str, str, dict[str, str], float]  # namespace, metric, dimensions, value


def _values(raw: Any) -> list[float]:
    items = raw if isinstance(raw, list) else [raw]
    return [float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]


def points(line: str) -> list[Point]:
    """The datapoints CloudWatch Logs extracts from one log line ([] for a line that is not EMF)."""
    if not line.lstrip().startswith("{"):
        return []
    try:
        doc = json.loads(line)
    except ValueError:
        return []
    meta = doc.get("_aws") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return []
    found: list[Point] = []
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = str(directive.get("Namespace", ""))
        for dimension_set in directive.get("Dimensions") or [[]]:
            if any(str(d) not in doc for d in dimension_set):
                continue  # CloudWatch skips a dimension set whose values the record lacks
            dims = {str(d): str(doc[d]) for d in dimension_set}
            for metric in directive.get("Metrics") or []:
                name = str(metric.get("Name", ""))
                found += [(namespace, name, dims, v) for v in _values(doc.get(name))]
    return found
