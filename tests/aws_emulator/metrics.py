"""CloudWatch metrics the services publish, and alarm states evaluated from them.

On AWS, API Gateway, Lambda and SageMaker endpoints publish metrics on every request, and
CloudWatch evaluates each alarm once per period: the statistic of each of the last
EvaluationPeriods periods is compared with the threshold, and the alarm is ALARM when at least
DatapointsToAlarm of them breach; periods without data count as not breaching when
TreatMissingData is notBreaching (missing ones otherwise leave the state as it is). moto 5.2.5
publishes no service metrics and never evaluates an alarm. Here the emulator's API front, function
invocations and endpoint invocations publish the metrics the stack's alarms watch, and a ticker
evaluates the alarms. Periods are scaled by AWS_EMULATOR_TIME_SCALE, like every emulated wait.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID

from aws_emulator.context import TIME_SCALE


@dataclass(frozen=True)
class Point:
    region: str
    namespace: str
    name: str
    dims: frozenset
    value: float
    at: float


_points: list[Point] = []
_lock = threading.Lock()
_OPS = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def put(region: str, namespace: str, name: str, dims: dict[str, str], value: float) -> None:
    with _lock:
        _points.append(Point(region, namespace, name, frozenset(dims.items()), float(value), time.monotonic()))


def api_request(region: str, api_name: str, stage: str, status: int, latency_ms: float) -> None:
    dims = {"ApiName": api_name, "Stage": stage}
    put(region, "AWS/ApiGateway", "Count", dims, 1)
    put(region, "AWS/ApiGateway", "4XXError", dims, 1 if 400 <= status < 500 else 0)
    put(region, "AWS/ApiGateway", "5XXError", dims, 1 if status >= 500 else 0)
    put(region, "AWS/ApiGateway", "Latency", dims, latency_ms)


def function_invocation(region: str, function: str, qualifier: str, error: bool, duration_ms: float) -> None:
    for dims in ({"FunctionName": function}, {"FunctionName": function, "Resource": f"{function}:{qualifier}"}):
        put(region, "AWS/Lambda", "Invocations", dims, 1)
        put(region, "AWS/Lambda", "Errors", dims, 1 if error else 0)
        put(region, "AWS/Lambda", "Duration", dims, duration_ms)


def endpoint_invocation(region: str, endpoint: str, variant: str, status: int, latency_us: float) -> None:
    dims = {"EndpointName": endpoint, "VariantName": variant}
    put(region, "AWS/SageMaker", "Invocations", dims, 1)
    put(region, "AWS/SageMaker", "Invocation4XXErrors", dims, 1 if 400 <= status < 500 else 0)
    put(region, "AWS/SageMaker", "Invocation5XXErrors", dims, 1 if status >= 500 else 0)
    put(region, "AWS/SageMaker", "ModelLatency", dims, latency_us)


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


def evaluate(region: str, now: float | None = None) -> None:
    now = time.monotonic() if now is None else now
    backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
    with _lock:
        points = [p for p in _points if p.region == region]
    for alarm in list(backend.alarms.values()):
        if not alarm.metric_name or alarm.comparison_operator not in _OPS:
            continue
        wanted = frozenset((d.name, d.value) for d in alarm.dimensions)
        mine = [
            p for p in points if p.namespace == alarm.namespace and p.name == alarm.metric_name and p.dims == wanted
        ]
        period = max(0.2, float(alarm.period or 60) * TIME_SCALE)
        periods = int(alarm.evaluation_periods or 1)
        breaching, with_data = 0, 0
        for k in range(periods):
            values = [p.value for p in mine if now - (k + 1) * period <= p.at < now - k * period]
            if not values:
                continue
            with_data += 1
            breaching += _OPS[alarm.comparison_operator](
                _statistic(values, alarm.statistic, alarm.extended_statistic), float(alarm.threshold)
            )
        needed = int(alarm.datapoints_to_alarm or periods)
        if breaching >= needed:
            state = "ALARM"
        elif with_data or (alarm.treat_missing_data or "missing") == "notBreaching":
            state = "OK"
        else:
            continue
        if state != alarm.state_value:
            alarm.update_state(f"Emulated evaluation: {breaching} of {periods} periods breaching", "{}", state)


_stop = threading.Event()


def start_ticker(regions: list[str], interval: float = 0.5) -> None:
    _stop.clear()
    with _lock:
        _points.clear()

    def tick() -> None:
        while not _stop.wait(interval):
            for region in regions:
                try:
                    evaluate(region)
                except Exception:  # noqa: S112 - a reset backend mid-tick: next tick
                    continue

    threading.Thread(target=tick, name="cloudwatch-alarms", daemon=True).start()


def stop_ticker() -> None:
    _stop.set()
