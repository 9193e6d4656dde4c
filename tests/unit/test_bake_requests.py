"""A bake judges requests, not silence: a quiet stage is baked on synthetic requests through the public API,
a synthetic request answered with an error is a breach, and a bake that saw too few requests fails
(the failure: with `treat_missing_data = notBreaching`, a stage with no traffic passed any bake)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from test_signal_lag import Clock

from mlops.backends.base import Release
from mlops.release.watch import bake


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_BAKE_SECONDS", "60")
    monkeypatch.setenv("MLOPS_BAKE_POLL_SECONDS", "10")  # 7 readings
    monkeypatch.setenv("MLOPS_SIGNAL_LAG_SECONDS", "0")
    monkeypatch.setenv("MLOPS_BAKE_MIN_REQUESTS", "30")


def stage(served: list[int]) -> SimpleNamespace:
    """A backend whose signals show `served[i]` requests at the i-th reading (the last value from then on)."""
    readings = iter(served)
    last = [0]

    def requests_served(release: Release, since: float) -> int:
        last[0] = next(readings, last[0])
        return last[0]

    return SimpleNamespace(bake_seconds=lambda: 60.0, signal_lag_seconds=lambda: 0.0, watch=lambda r, s: [],
                           requests_served=requests_served)  # fmt: skip


def run(backend: SimpleNamespace, probe=None, own: int = 0) -> tuple[dict, list[str]]:
    clock, said = Clock(), []
    release = Release("r1", "2", "staging")
    result = bake(backend, release, clock(), said.append, clock.sleep, clock, probe=probe, own=own)
    return result, said


def test_a_quiet_stage_is_baked_on_synthetic_requests() -> None:
    sent: list[int] = []
    result, said = run(stage([0]), probe=lambda: sent.append(1) or "")
    assert result["breaches"] == [] and result["requests"] == 30 and result["synthetic_requests"] == 30
    assert result["checks"] >= 6 and "it judged 30 requests (30 of them synthetic)" in said[-1]


def test_the_smoke_tests_requests_count_while_the_signals_lag() -> None:
    """On AWS the alias's Invocations show minutes late: the requests the release saw answered itself (the
    smoke tests', then the synthetic ones) count meanwhile, so only the difference is sent."""
    sent: list[int] = []
    result, _ = run(stage([0]), probe=lambda: sent.append(1) or "", own=22)
    assert len(sent) == 8 and result["requests"] == 30 and result["breaches"] == []


def test_clients_traffic_sends_no_synthetic_request() -> None:
    sent: list[int] = []
    result, _ = run(stage([45]), probe=lambda: sent.append(1) or "")
    assert sent == [] and result["breaches"] == [] and result["requests"] == 45


def test_a_synthetic_request_that_fails_is_a_breach() -> None:
    result, said = run(stage([0]), probe=lambda: "cat.1.jpg: HTTP 502 model error")
    assert result["breaches"] == ["synthetic request cat.1.jpg: HTTP 502 model error"]
    assert result["synthetic_requests"] == 1 and "bake breached" in said[-1]


def test_a_bake_that_saw_too_few_requests_fails() -> None:
    result, said = run(stage([3]))  # no probe: nothing can make up the difference
    assert result["breaches"] == ["too few requests to judge: 3 since the switch, at least 30 needed"]
    assert "bake breached" in said[-1]
