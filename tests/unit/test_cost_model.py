"""The cost model: a hand-computed case, monotonic costs, break-even where the curves cross, capacity, advice."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import pytest

from mlops.backends.aws.config import AwsConfig
from mlops.config import REPO_ROOT
from mlops.cost import (
    HOURS_PER_MONTH,
    PRICE_TABLE,
    Assumptions,
    CostError,
    Figures,
    Plan,
    Prices,
    cold_probability,
    plans,
    poisson_concurrency,
)
from mlops.cost.report import advise, break_even, table

FIG = Figures(
    api_p50_ms=20.0,
    api_p95_ms=30.0,
    api_front_cpu_ms=2.0,
    function_cpu_ms=3.0,
    server_cpu_ms=10.0,
    server_peak_mb=100.0,
    server_cold_start_s=0.5,
    function_init_s=0.4,
    function_peak_mb=60.0,
    inline_p50_ms=12.0,
    inline_p95_ms=15.0,
    inline_init_s=0.7,
    inline_peak_mb=180.0,
    request_kb=100.0,
    response_kb=1.0,
)
US = Prices.load("us-east-1")
FULL_VCPU = Assumptions(lambda_memory_mb=1769)


def by_name(all_plans: list[Plan]) -> dict[str, Plan]:
    return {p.name: p for p in all_plans}


def test_a_hand_computed_case() -> None:
    p = by_name(plans(FIG, US, FULL_VCPU))
    # The function waits 20 - 2 - 3 = 15 ms on the endpoint and works 3 ms at one full vCPU: 18 ms billed.
    function = 3.50 / 1e6 + 0.20 / 1e6 + 1769 / 1024 * 0.018 * 0.0000166667
    data = 101 * 1024 / 1024**3 * 0.016
    serverless = function + 0.0000200 * 0.010 + data  # 1024 MB (100 MB fits), 10 ms
    assert p["serverless"].per_request == pytest.approx(serverless, rel=1e-12)
    assert p["serverless"].monthly(1_000_000) == pytest.approx(1e6 * serverless, rel=1e-12)
    one = p["instance-ml.c5.large"]
    assert one.monthly(1_000_000) == pytest.approx(0.102 * 730 + 1e6 * (function + data), rel=1e-12)
    assert one.per_thousand(1_000_000) == pytest.approx((0.102 * 730 + 1e6 * (function + data)) / 1000, rel=1e-12)
    # In-Lambda: (12 + 3) ms at 1769 MB, no endpoint.
    inline = 3.50 / 1e6 + 0.20 / 1e6 + 1769 / 1024 * 0.015 * 0.0000166667
    assert p["in-lambda"].per_request == pytest.approx(inline, rel=1e-12)


def test_a_smaller_function_is_billed_for_its_stretched_cpu() -> None:
    at_512 = by_name(plans(FIG, US, Assumptions(lambda_memory_mb=512)))["serverless"]
    at_full = by_name(plans(FIG, US, FULL_VCPU))["serverless"]
    billed_ms = math.ceil(15 + 3 * 1769 / 512)  # 3 ms of CPU take 3.45x longer on 512 MB
    gbs = 0.0000166667
    assert at_512.per_request - at_full.per_request == pytest.approx(
        512 / 1024 * billed_ms / 1e3 * gbs - 1769 / 1024 * 0.018 * gbs, rel=1e-9
    )


@pytest.mark.parametrize("region", ["us-east-1"])
def test_monthly_cost_never_falls_as_volume_grows(region: str) -> None:
    volumes = [int(10 ** (k / 4)) for k in range(8, 41)]  # 100 .. 10 billion
    for plan in plans(FIG, Prices.load(region)):
        costs = [plan.monthly(v) for v in volumes if v <= plan.max_volume]
        assert all(b >= a for a, b in itertools.pairwise(costs)), plan.label
        assert costs[0] >= 0


def test_a_fixed_fleet_gets_cheaper_per_inference_and_a_pay_per_use_mode_does_not() -> None:
    p = by_name(plans(FIG, US))
    one = p["instance-ml.c6i.large"]
    per_k = [one.per_thousand(v) for v in (10_000, 100_000, 1_000_000, 10_000_000)]
    assert all(b < a for a, b in itertools.pairwise(per_k))
    assert per_k[0] == pytest.approx(0.102 * HOURS_PER_MONTH / 10, rel=0.01)  # idle cost dominates at 10k
    sls = p["serverless"]
    assert sls.per_thousand(10_000) == pytest.approx(sls.per_thousand(10_000_000))


def test_break_even_is_where_the_curves_cross() -> None:
    # A big slow model: 100 ms a request on a 4096 MB serverless endpoint costs more than an instance's share.
    slow = replace(FIG, server_cpu_ms=100.0, api_p50_ms=110.0, server_peak_mb=3000.0)
    p = by_name(plans(slow, US))
    sls, one = p["serverless"], p["instance-ml.c5.large"]
    (n,) = break_even(sls, one)
    assert sls.monthly(n) == pytest.approx(one.monthly(n), rel=1e-9)
    assert sls.monthly(n * 0.9) < one.monthly(n * 0.9)
    assert sls.monthly(n * 1.1) > one.monthly(n * 1.1)
    assert n == pytest.approx(0.102 * HOURS_PER_MONTH / (0.0000800 * 0.1), rel=1e-9)  # fixed / per-request gap
    assert n < one.max_volume


def test_break_even_made_by_an_added_instance() -> None:
    p = by_name(plans(FIG, US))
    t2, c5 = p["instance-ml.t2.medium-scaled"], p["instance-ml.c5.large-scaled"]
    crossings = break_even(t2, c5)
    assert crossings, "the burstable fleet must lose once it needs a second instance"
    n = crossings[0]
    assert t2.monthly(n * 0.999) < c5.monthly(n * 0.999)
    assert t2.monthly(n * 1.001) > c5.monthly(n * 1.001)
    assert t2.instances(n * 1.001) == t2.instances(n * 0.999) + 1


def test_no_break_even_for_parallel_or_never_crossing_curves() -> None:
    p = by_name(plans(FIG, US))
    assert break_even(p["instance-ml.c5.large"], p["instance-ml.c6i.large"]) == []  # the same price
    assert break_even(p["instance-ml.c5.large"], p["instance-ml.m5.large"]) == []  # always dearer by the same


def test_one_instance_is_not_priced_beyond_its_capacity() -> None:
    p = by_name(plans(FIG, US))
    one, scaled = p["instance-ml.t2.medium"], p["instance-ml.t2.medium-scaled"]
    # 0.4 sustained vCPU x 0.6 utilisation / 10 ms = 24 req/s at the busiest hour, twice the average.
    assert one.max_volume == pytest.approx(24 * HOURS_PER_MONTH * 3600 / 2)
    assert scaled.instances(one.max_volume * 1.01) == 2
    rows = table([one], (10_000, int(one.max_volume * 2)))
    assert rows[1][2] == "over capacity"
    # The lines would cross beyond what one instance can take: no break-even is reported there.
    unbounded = one.instance_hourly * HOURS_PER_MONTH / (p["serverless"].per_request - one.per_request)
    assert unbounded > one.max_volume
    assert break_even(one, p["serverless"], n_max=1e12) == []


def test_cold_starts_count_at_low_volume_only() -> None:
    assert cold_probability(10_000, 600) > 0.05
    assert cold_probability(1_000_000, 600) < 1e-6
    p = by_name(plans(FIG, US))
    cold_p95, warm_p95 = p["serverless"].latency(10_000), p["serverless"].latency(1_000_000)
    assert cold_p95 - warm_p95 == pytest.approx(1e3 * (FIG.function_init_s + FIG.server_cold_start_s))


def test_concurrency_grows_with_the_rate() -> None:
    values = [poisson_concurrency(rate, 0.05) for rate in (0.1, 1, 10, 100)]
    assert values == sorted(values) and values[0] >= 1 and values[-1] > values[0]


def test_advice_is_the_cheapest_mode_within_budget_and_its_settings_are_real() -> None:
    loose = advise(FIG, US, 1_000_000, 500)
    assert loose.plan.name == "serverless"
    # At 10k a month a serverless endpoint is cold more than 5 % of the time: a tight budget rules it out.
    tight = advise(replace(FIG, server_cold_start_s=5.0), US, 10_000, 1000)
    assert tight.plan.name.startswith("instance-")
    assert any(label.startswith("Lambda -> serverless") for label, _, _ in tight.rejected)
    for advice in (loose, tight):
        env = {k: str(v) for k, v in advice.plan.settings.items() if k.isupper()}
        cfg = AwsConfig.from_env("staging", env={**env, "MLOPS_INFRA_OUTPUTS_DIR": "/nonexistent"})
        assert cfg.endpoint_mode == env["ENDPOINT_MODE"]
        if cfg.endpoint_mode == "serverless":
            assert cfg.memory_mb == int(env["ENDPOINT_MEMORY_MB"])
        else:
            assert (cfg.instance_type, cfg.instance_count) == (env["ENDPOINT_INSTANCE_TYPE"], 1)
        tf = [k for k in advice.plan.settings if k.islower()]
        variables = (REPO_ROOT / "infra" / "variables.tf").read_text()
        assert tf and all(f'variable "{k}"' in variables for k in tf)


def test_advice_refuses_what_it_cannot_price_or_meet() -> None:
    with pytest.raises(CostError, match=r"no mode meets .* the p95 request starts a function"):
        advise(FIG, US, 10_000, 5)  # few requests: most find no warm function
    with pytest.raises(CostError, match=r"a p95 of 1 ms at 100,000,000 requests a month \(fastest: \d+ ms\)$"):
        advise(FIG, US, 100_000_000, 1)  # warm: no cold start to blame
    with pytest.raises(CostError, match="above 0"):
        advise(FIG, US, 0, 100)
    with pytest.raises(CostError, match="no price for eu-west-1 of: API Gateway REST request"):
        plans(FIG, Prices.load("eu-west-1"))
    with pytest.raises(CostError, match="no prices for region"):
        Prices.load("mars-1")
    with pytest.raises(CostError, match="not a number"):
        replace(FIG, server_cpu_ms=-1.0)


def test_every_price_is_dated_and_sourced() -> None:
    table_json = json.loads(PRICE_TABLE.read_text())
    for region, entries in table_json["regions"].items():
        for key, entry in entries.items():
            assert entry["source"].startswith("https://"), (region, key)
            assert entry["checked"] == table_json["checked"], (region, key)
            values = entry["prices"].values() if "prices" in entry else [entry["price"]]
            if any(v is None for v in values):
                assert "not found" in entry["note"], (region, key)


def test_a_region_missing_any_price_is_refused_naming_each_one() -> None:
    """One null price (here one instance type's) refuses the region: no table leaves a mode out unnoticed."""
    table_json = json.loads(PRICE_TABLE.read_text())
    us = table_json["regions"]["us-east-1"]
    us["instance_per_hour"]["prices"]["ml.m5.large"] = None
    us["serverless_per_second"]["prices"]["2048"] = None
    gappy = Prices.load("us-east-1", table_json)
    assert gappy.missing() == ["SageMaker Serverless Inference (2048 MB)", "ml.m5.large hosting"]
    with pytest.raises(CostError) as caught:
        plans(FIG, gappy)
    assert "SageMaker Serverless Inference (2048 MB); ml.m5.large hosting" in str(caught.value)
    assert US.missing() == []
    eu = Prices.load("eu-west-1").missing()
    assert "API Gateway REST request" in eu and "Lambda request" not in eu


def test_serverless_concurrency_limit_leaves_room_for_bursts() -> None:
    """The limit is free: sized for one-in-a-million odds of a throttled request at the busiest hour."""
    limits = {n: advise(FIG, US, n, 5_000).plan.settings["ENDPOINT_MAX_CONCURRENCY"] for n in (10**5, 10**7, 10**8)}
    assert limits[10**5] >= 1 and limits[10**5] < limits[10**7] < limits[10**8]
    held_s = (FIG.api_p50_ms - FIG.api_front_cpu_ms - FIG.function_cpu_ms) / 1e3  # the function's wait on it
    assert limits[10**8] == poisson_concurrency(10**8 / (HOURS_PER_MONTH * 3600) * 2, held_s, tail=1e-6)
