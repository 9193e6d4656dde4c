"""An alarm already firing when a release switched in is judged on the release's own datapoints.

Alarms are stage-wide: one in ALARM because of the previous release (an incident the new release may be
fixing) would roll the fix back. So an alarm in ALARM is a breach of the release unless the datapoints
before the switch breached it already and none since the switch is worse than the worst of them (read
with the alarm's own metric, statistic and period; periods that straddle the switch count for neither).
When the datapoints cannot tell (none before or since, metric math), ALARM stays a breach.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlops.backends.aws.config import AwsClients, aws_call

BEYOND: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def _datapoints(clients: AwsClients, alarm: dict[str, Any], since: float, now: float) -> list[tuple[float, float]]:
    period = int(alarm.get("Period") or 60)
    start = since - period * (int(alarm.get("EvaluationPeriods") or 1) + 2)
    metric: dict[str, Any] = {k: alarm[k] for k in ("Namespace", "MetricName") if k in alarm}
    metric["Dimensions"] = alarm.get("Dimensions", [])
    stat = alarm.get("ExtendedStatistic") or alarm.get("Statistic") or "Sum"
    query = {"Id": "m", "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}, "ReturnData": True}
    with aws_call(f"reading the datapoints of alarm {alarm.get('AlarmName')}"):
        found = clients.get("cloudwatch").get_metric_data(
            MetricDataQueries=[query],
            StartTime=datetime.fromtimestamp(start - start % period, UTC),
            EndTime=datetime.fromtimestamp(now + period, UTC),
        )
    out: list[tuple[float, float]] = []
    for result in found.get("MetricDataResults", []):
        out.extend((t.timestamp(), float(v)) for t, v in zip(result["Timestamps"], result["Values"], strict=False))
    return out


def worse_since_switch(clients: AwsClients, alarm: dict[str, Any], since: float, now: float) -> str:
    """ "" when the alarm (in ALARM) was breached before the switch and nothing since is worse; else why it counts."""
    beyond = BEYOND.get(alarm.get("ComparisonOperator", ""))
    if beyond is None or not alarm.get("MetricName"):
        return "its datapoints cannot be compared"
    threshold, period = float(alarm.get("Threshold", 0)), int(alarm.get("Period") or 60)
    points = _datapoints(clients, alarm, since, now)
    before = [v for t, v in points if t + period <= since and beyond(v, threshold)]
    after = [v for t, v in points if t >= since and beyond(v, threshold)]
    if not before:
        return "it was not firing before the switch" if after else "no datapoint tells when it fired"
    worst = before[0]
    for value in before:
        worst = value if beyond(value, worst) else worst
    worse = [v for v in after if beyond(v, worst)]
    if worse:
        return f"worse since the switch: {worse[0]:g}, the worst before it {worst:g}"
    return ""
