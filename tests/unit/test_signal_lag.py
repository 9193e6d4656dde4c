"""A verdict waits for the signals' lag: the bake and each traffic step last until a breach since the switch
can show (AWS: CloudWatch's metric delay, then the watched alarms' evaluation periods, read from them)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from aws_support import Stack, aws_env, make_stack
from moto import mock_aws

from mlops.backends.base import Release
from mlops.release import traffic as release_traffic
from mlops.release.traffic import TrafficPlan
from mlops.release.watch import bake


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def fake_backend(bake_s: float, lag_s: float) -> SimpleNamespace:
    return SimpleNamespace(
        bake_seconds=lambda: bake_s,
        signal_lag_seconds=lambda: lag_s,
        watch=lambda r, s: [],
        requests_served=lambda r, s: 99,
    )


def test_the_bake_lasts_until_the_lag_has_passed_since_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLOPS_BAKE_SECONDS", "MLOPS_SIGNAL_LAG_SECONDS", "MLOPS_BAKE_POLL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    clock, said = Clock(), []
    release = Release("r1", "2", "staging")
    switched = clock() - 12  # the smoke tests took 12 s
    result = bake(fake_backend(5, 30), release, switched, said.append, clock.sleep, clock)
    assert clock() - switched == pytest.approx(30) and result["seconds"] == pytest.approx(18)
    assert result["lag_seconds"] == 30 and "up to 30 s after it, counted from the switch" in said[0]
    # A bake longer than the lag is kept as it is; MLOPS_SIGNAL_LAG_SECONDS overrides the backend's lag.
    assert bake(fake_backend(60, 30), release, clock(), said.append, clock.sleep, clock)["seconds"] == 60
    monkeypatch.setenv("MLOPS_SIGNAL_LAG_SECONDS", "0")
    assert bake(fake_backend(5, 30), release, clock(), said.append, clock.sleep, clock)["seconds"] == 5


def test_a_traffic_step_lasts_at_least_the_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_SIGNAL_LAG_SECONDS", raising=False)
    watched: list[float] = []
    monkeypatch.setattr(release_traffic, "watch_for", lambda seconds, read: (watched.append(seconds), (1, []))[1])
    backend = SimpleNamespace(
        signal_lag_seconds=lambda: 42.0, route=lambda *a, **k: None, save_release=lambda r: None,
        candidate_signals=lambda r, s: ([], {"candidate": 1, "primary": 9}), watch=lambda r, s: [],
    )  # fmt: skip
    plan = TrafficPlan(strategy="linear", linear_step_percent=50, step_seconds=5)
    release_traffic._steps(backend, Release("r1", "2", "production"), "3", "4", plan, lambda m: None)
    assert watched == [42.0]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    aws_env(monkeypatch)
    monkeypatch.delenv("MLOPS_SIGNAL_LAG_SECONDS")
    with mock_aws():
        yield make_stack(())


def test_on_aws_the_lag_is_the_metric_delay_and_the_longest_alarm_window(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, cw = stack.backend, stack.client("cloudwatch")
    assert backend.signal_lag_seconds() == 180 + 60  # CloudWatch's delay; make_stack's alarms: 1 period of 60 s
    latency = backend.cfg.alarm_names[-1]
    cw.put_metric_alarm(
        AlarmName=latency, MetricName="ModelLatency", Namespace="AWS/SageMaker", ExtendedStatistic="p90",
        Period=60, EvaluationPeriods=3, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    assert backend.signal_lag_seconds() == 180 + 3 * 60
    monkeypatch.setenv("METRIC_DELAY_SECONDS", "60")
    assert type(backend)(backend.stage, clients=backend.clients).signal_lag_seconds() == 60 + 3 * 60
