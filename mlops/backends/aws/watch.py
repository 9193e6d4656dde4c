"""The bake's signals on AWS: the release's CloudWatch alarms (infra/alarms.tf), read by name.

Watched: the endpoint alarms (5xx, latency) and the release alarms (function errors, throttles and
duration, the API's 5xx). An alarm in state ALARM is a breach, unless it was firing before the release
switched in and nothing since is worse (mlops/backends/aws/alarm_baseline.py). An alarm that
does not exist is a breach too: a release that cannot be watched is not kept. An alarm turns to
ALARM only EvaluationPeriods × Period after the breaching requests reach CloudWatch: how long that
is, the longest of the watched alarms, is read from them (alarm_window_seconds).
"""

from __future__ import annotations

import time
from typing import Any

from mlops.backends.aws.alarm_baseline import worse_since_switch
from mlops.backends.aws.config import AwsClients, aws_call

PAGE = 100  # DescribeAlarms takes at most 100 names


def _describe(clients: AwsClients, names: list[str]) -> dict[str, dict[str, Any]]:
    cw: Any = clients.get("cloudwatch")
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(names), PAGE):
        with aws_call("reading the release's CloudWatch alarms"):
            for page in cw.get_paginator("describe_alarms").paginate(
                AlarmNames=names[i : i + PAGE], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            ):
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    found[alarm["AlarmName"]] = alarm
    return found


def alarm_breaches(clients: AwsClients, names: tuple[str, ...], since: float | None = None) -> list[str]:
    """One line per watched alarm that is in ALARM or missing; [] when all are OK or INSUFFICIENT_DATA.

    With `since` (the switch), an alarm in ALARM that its datapoints before the switch breached already,
    and none since worse, is the previous release's, not a breach (mlops/backends/aws/alarm_baseline.py)."""
    wanted = list(dict.fromkeys(names))
    found = _describe(clients, wanted)
    out = []
    for name in wanted:
        alarm = found.get(name)
        if alarm is None:
            out.append(f"alarm {name} does not exist: the release cannot be watched")
        elif alarm.get("StateValue") == "ALARM":
            line = f"alarm {name} is in ALARM: {alarm.get('StateReason', '')[:200]}".rstrip(": ")
            why = worse_since_switch(clients, alarm, since, time.time()) if since is not None else "no switch given"
            if why:
                out.append(line if since is None else f"{line} ({why})")
    return out


def alarm_window_seconds(clients: AwsClients, names: tuple[str, ...]) -> float:
    """The longest EvaluationPeriods × Period of the watched metric alarms (0 when there is none)."""
    found = _describe(clients, list(dict.fromkeys(names))).values()
    return max((float(a.get("Period") or 0) * int(a.get("EvaluationPeriods") or 1) for a in found), default=0.0)


def firing_alarms(clients: AwsClients, names: tuple[str, ...]) -> list[str]:
    """The watched alarms in state ALARM now."""
    found = _describe(clients, list(dict.fromkeys(names)))
    return [name for name, alarm in found.items() if alarm.get("StateValue") == "ALARM"]
