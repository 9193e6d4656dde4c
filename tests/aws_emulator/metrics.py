"""CloudWatch metrics the services publish, seen only as late as CloudWatch shows them, and alarm states
evaluated from them as CloudWatch evaluates them.

On AWS, API Gateway, Lambda and SageMaker endpoints publish metrics on every request; a datapoint
reaches CloudWatch one to three minutes later, stamped with the time of the request. CloudWatch
evaluates an alarm once per period, on complete periods: it reads the last EvaluationPeriods + 2
periods (the evaluation range); with at least EvaluationPeriods real datapoints there it judges the
most recent EvaluationPeriods of them, otherwise all of them plus as few missing ones as needed,
filled as TreatMissingData says (notBreaching: good; breaching: bad; ignore: the state stays unless
the real ones decide it; missing: INSUFFICIENT_DATA when there are none); ALARM when at least
DatapointsToAlarm breach. moto 5.2.5 publishes no service metrics and never evaluates an alarm.

Here the API front, function invocations and endpoint invocations publish the metrics (Lambda's
with FunctionName, Resource and, for an alias, ExecutedVersion: lambda_routing); a datapoint is
visible to GetMetricData and GetMetricStatistics (a moto metric provider) and to alarms alike only
context.METRIC_DELAY after it was published; a ticker evaluates each alarm at each boundary of its
period. Periods and the delay are scaled by AWS_EMULATOR_TIME_SCALE and aligned to the emulator's
clock. Not emulated: metric-math and composite alarms (never evaluated), percentiles through
GetMetricData, delay on PutMetricData's own datapoints (visible at once, and not read by alarms).
"""

from __future__ import annotations

import bisect
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.cloudwatch.models import MetricDatum, cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.common_models import CloudWatchMetricProvider
from moto.core.utils import utcnow

from aws_emulator import context

_lock = threading.Lock()
_series: dict[tuple, tuple[list[float], list[float]]] = {}  # (region, namespace, name, dims) → (times, values)
_published: dict[str, tuple[list[float], list[MetricDatum]]] = {}  # region → (times, datums), in time order
_evaluated: dict[tuple[str, str], tuple[int, float]] = {}  # (region, alarm) → (last period judged, its length)
_OPS = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def put(region: str, namespace: str, name: str, dims: dict[str, str], value: float) -> None:
    """Publish one datapoint now; it becomes visible context.METRIC_DELAY later."""
    datum = MetricDatum(namespace, name, float(value), [{"Name": k, "Value": v} for k, v in dims.items()], utcnow())
    with _lock:
        at = time.monotonic()  # taken under the lock: every list stays in time order
        times, values = _series.setdefault((region, namespace, name, frozenset(dims.items())), ([], []))
        times.append(at)
        values.append(float(value))
        published = _published.setdefault(region, ([], []))
        published[0].append(at)
        published[1].append(datum)


def api_request(region: str, api_name: str, stage: str, status: int, latency_ms: float) -> None:
    dims = {"ApiName": api_name, "Stage": stage}
    put(region, "AWS/ApiGateway", "Count", dims, 1)
    put(region, "AWS/ApiGateway", "4XXError", dims, 1 if 400 <= status < 500 else 0)
    put(region, "AWS/ApiGateway", "5XXError", dims, 1 if status >= 500 else 0)
    put(region, "AWS/ApiGateway", "Latency", dims, latency_ms)


def function_invocation(
    region: str, function: str, qualifier: str, error: bool, duration_ms: float, executed_version: str = ""
) -> None:
    """Lambda's metrics for one invocation: by function; by Resource (function:qualifier) when qualified;
    and, for an alias (`executed_version` given), also by Resource and the version that ran."""
    sets = [{"FunctionName": function}]
    if qualifier and qualifier != "$LATEST":
        sets.append({"FunctionName": function, "Resource": f"{function}:{qualifier}"})
        if executed_version:
            sets.append({**sets[-1], "ExecutedVersion": executed_version})
    for dims in sets:
        put(region, "AWS/Lambda", "Invocations", dims, 1)
        put(region, "AWS/Lambda", "Errors", dims, 1 if error else 0)
        put(region, "AWS/Lambda", "Duration", dims, duration_ms)


def endpoint_invocation(region: str, endpoint: str, variant: str, status: int, latency_us: float) -> None:
    dims = {"EndpointName": endpoint, "VariantName": variant}
    put(region, "AWS/SageMaker", "Invocations", dims, 1)
    put(region, "AWS/SageMaker", "Invocation4XXErrors", dims, 1 if 400 <= status < 500 else 0)
    put(region, "AWS/SageMaker", "Invocation5XXErrors", dims, 1 if status >= 500 else 0)
    put(region, "AWS/SageMaker", "ModelLatency", dims, latency_us)


class ServiceMetrics(CloudWatchMetricProvider):
    """What moto's GetMetricData and GetMetricStatistics read besides PutMetricData: the visible datapoints."""

    @staticmethod
    def get_cloudwatch_metrics(account_id: str, region: str) -> list[MetricDatum]:
        if not context.in_emulator():
            return []
        with _lock:
            times, datums = _published.get(region, ([], []))
            return datums[: bisect.bisect_right(times, time.monotonic() - context.METRIC_DELAY)]


def _statistic(values: list[float], statistic: str | None, extended: str | None) -> float:
    if extended and extended.startswith("p"):
        ordered = sorted(values)
        return ordered[max(0, math.ceil(float(extended[1:]) / 100 * len(ordered)) - 1)]
    return {
        "Sum": sum,
        "Maximum": max,
        "Minimum": min,
        "SampleCount": len,
        "Average": lambda v: sum(v) / len(v),
    }[statistic or "Average"](values)


def decide(
    datapoints: list[float | None], periods: int, to_alarm: int, breaches: Callable[[float], bool], treat: str
) -> tuple[str | None, str]:
    """The state CloudWatch gives an alarm from its evaluation range (most recent first, None = missing);
    None keeps the current state. Returns (state, reason)."""
    real = [v for v in datapoints if v is not None]
    if len(real) >= periods:
        bad = sum(breaches(v) for v in real[:periods])
        why = f"{bad} of the last {periods} datapoints breaching (minimum {to_alarm} for ALARM)"
        return ("ALARM" if bad >= to_alarm else "OK"), why
    bad, missing = sum(breaches(v) for v in real), periods - len(real)
    why = f"{bad} of {len(real)} datapoints breaching, {missing} missing treated as {treat}"
    if treat == "breaching":
        bad += missing
    elif treat == "ignore" and bad < to_alarm:
        return ("OK" if len(real) - bad > periods - to_alarm else None), why
    elif treat not in ("notBreaching", "ignore") and not real:
        return "INSUFFICIENT_DATA", f"no datapoint in the last {len(datapoints)} periods"
    return ("ALARM" if bad >= to_alarm else "OK"), why


def _judge(a: Any, region: str, period: float, last: int, now: float) -> None:
    periods = int(a.evaluation_periods or 1)
    key = (region, a.namespace, a.metric_name, frozenset((d.name, d.value) for d in a.dimensions))
    with _lock:
        times, values = _series.get(key, ([], []))
        visible = bisect.bisect_right(times, now - context.METRIC_DELAY)
        datapoints: list[float | None] = []
        for j in range(last, last - periods - 2, -1):
            lo = bisect.bisect_left(times, j * period, 0, visible)
            hi = bisect.bisect_left(times, (j + 1) * period, lo, visible)
            chunk = values[lo:hi]
            datapoints.append(_statistic(chunk, a.statistic, a.extended_statistic) if chunk else None)
    threshold = float(a.threshold)
    op = _OPS[a.comparison_operator]
    to_alarm = int(a.datapoints_to_alarm or periods)
    state, why = decide(datapoints, periods, to_alarm, lambda v: op(v, threshold), a.treat_missing_data or "missing")
    if state is not None and state != a.state_value:
        data = {"version": "1.0", "queryDate": utcnow().isoformat(), "evaluatedDatapoints": datapoints}
        a.update_state(f"Emulated evaluation: {why}", json.dumps(data), state)


def signal_lag(window_seconds: float) -> float:
    """How long after a request its breach can first show in an alarm whose EvaluationPeriods × Period is
    `window_seconds` (AWS seconds): the metric delay and that window, as the emulator lets them pass."""
    return context.METRIC_DELAY + context.scaled(window_seconds)


def alarm_windows(region: str, names: list[str] | None = None) -> dict[str, float]:
    """EvaluationPeriods × Period (AWS seconds) of the region's metric alarms (those named, or all)."""
    alarms = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region].alarms
    return {
        n: float(a.period or 60) * int(a.evaluation_periods or 1)
        for n, a in list(alarms.items())
        if a.metric_name and (names is None or n in names)
    }


def evaluate(region: str, now: float | None = None) -> float:
    """Judge every metric alarm of the region whose period ended since it was last judged; return the
    seconds until the next of their periods ends (inf without alarms)."""
    now = time.monotonic() if now is None else now
    upcoming = math.inf
    for alarm in list(cloudwatch_backends[DEFAULT_ACCOUNT_ID][region].alarms.values()):
        if not alarm.metric_name or alarm.comparison_operator not in _OPS:
            continue
        period = max(0.2, context.scaled(float(alarm.period or 60)))
        last = math.floor(now / period) - 1  # the last complete period
        upcoming = min(upcoming, (last + 2) * period - now)
        if _evaluated.get((region, alarm.name)) == (last, period):
            continue
        _evaluated[(region, alarm.name)] = (last, period)
        _judge(alarm, region, period, last, now)
    return upcoming


_stop = threading.Event()
# The ticker sleeps until the next alarm period ends, but at most this long, so that an alarm created in
# the meantime is judged from its first period on.
MAX_SLEEP = 0.5


def start_ticker(regions: list[str], interval: float = 0.05) -> None:
    """Judge the alarms of `regions` as each period ends (waking then, not polling: a woken thread costs
    every other thread of the emulator its share of the interpreter)."""
    _stop.clear()
    with _lock:
        _series.clear()
        _published.clear()
        _evaluated.clear()

    def tick() -> None:
        wait = interval
        while not _stop.wait(wait):
            upcoming = MAX_SLEEP
            for region in regions:
                try:
                    upcoming = min(upcoming, evaluate(region))
                except Exception:  # noqa: S112 - a reset backend mid-tick: next tick
                    continue
            wait = max(interval, upcoming + 0.005)  # just past the boundary, so that period has ended

    threading.Thread(target=tick, name="cloudwatch-alarms", daemon=True).start()


def stop_ticker() -> None:
    _stop.set()
