"""Cost per inference of each serving mode, from measured figures and the dated price table (standard library only)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICE_TABLE = Path(__file__).with_name("prices.json")
VOLUMES = (10_000, 100_000, 1_000_000, 10_000_000)
HOURS_PER_MONTH = 730.0  # AWS's own monthly convention (8,760 h / 12)
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
LAMBDA_FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB; CPU share is proportional below
SERVERLESS_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
LAMBDA_SIZES_MB = (128, 256, 512, 1024, 1769)
GB = 1024**3


class CostError(ValueError):
    """Input the model cannot price (a bad figure, an unknown region, a price the table lacks)."""


@dataclass(frozen=True)
class Prices:
    """One region's prices from the table (USD); None where the table has no figure."""

    region: str
    checked: str
    lambda_request: float | None  # per request
    lambda_gb_second: dict[str, float | None]  # by architecture: x86, arm
    api_request: dict[str, float | None]  # by API type: rest, http
    data_per_gb: float | None  # SageMaker endpoint data, in and out each
    serverless_per_second: dict[int, float | None]  # by memory size (MB)
    instance_per_hour: dict[str, float | None]
    sustained_vcpus: dict[str, float]

    @classmethod
    def load(cls, region: str, table: dict[str, Any] | None = None) -> Prices:
        table = table if table is not None else json.loads(PRICE_TABLE.read_text())
        regions = table["regions"]
        if region not in regions:
            raise CostError(f"no prices for region {region!r}: the table has {', '.join(sorted(regions))}")
        r = regions[region]

        def per_unit(key: str, scale: float = 1.0) -> float | None:
            price = r[key]["price"]
            return None if price is None else price / scale

        return cls(
            region=region,
            checked=table["checked"],
            lambda_request=per_unit("lambda_request_per_million", 1e6),
            lambda_gb_second={"x86": per_unit("lambda_gb_second_x86"), "arm": per_unit("lambda_gb_second_arm")},
            api_request={
                "rest": per_unit("apigw_rest_per_million", 1e6),
                "http": per_unit("apigw_http_per_million", 1e6),
            },
            data_per_gb=per_unit("sagemaker_data_per_gb"),
            serverless_per_second={int(k): v for k, v in r["serverless_per_second"]["prices"].items()},
            instance_per_hour=dict(r["instance_per_hour"]["prices"]),
            sustained_vcpus={k: float(v["sustained_vcpus"]) for k, v in table["instances"].items()},
        )

    def missing(self, api: str = "rest", arch: str = "x86") -> list[str]:
        """The prices the serving modes need that the table lacks (null) for this region, by name."""
        named = {
            "Lambda request": self.lambda_request,
            f"Lambda GB-second ({arch})": self.lambda_gb_second.get(arch),
            f"API Gateway {api.upper()} request": self.api_request.get(api),
            "SageMaker endpoint data processing": self.data_per_gb,
        }
        out = [name for name, price in named.items() if price is None]
        if sizes := [str(mb) for mb, price in self.serverless_per_second.items() if price is None]:
            out.append(f"SageMaker Serverless Inference ({', '.join(sizes)} MB)")
        out += [f"{itype} hosting" for itype, price in self.instance_per_hour.items() if price is None]
        return out


@dataclass(frozen=True)
class Figures:
    """What one benchmark run measured (milliseconds, seconds, MB, KB), per request unless said otherwise."""

    api_p50_ms: float  # POST /predict through the API at concurrency 1
    api_p95_ms: float
    api_front_cpu_ms: float  # CPU of the API front per request (API Gateway's share locally)
    function_cpu_ms: float  # CPU of the function per request (handler, invoke_endpoint)
    server_cpu_ms: float  # CPU of the model server per request
    server_peak_mb: float  # resident memory of the model server
    server_cold_start_s: float  # model server start to first answer
    function_init_s: float  # the function's module import (its cold start's own work)
    function_peak_mb: float
    inline_p50_ms: float  # in-Lambda reference: decode + preprocess + ONNX Runtime on one thread
    inline_p95_ms: float
    inline_init_s: float  # import ONNX Runtime, NumPy, Pillow and load the model
    inline_peak_mb: float
    request_kb: float  # mean photo size sent
    response_kb: float  # mean answer size

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int | float) or math.isnan(value) or value < 0:
                raise CostError(f"measured figure {name}={value!r} is not a number >= 0")


@dataclass(frozen=True)
class Assumptions:
    """What the model assumes beyond the measurements; printed with every table."""

    api: str = "rest"  # the stack deploys a REST API
    arch: str = "x86"  # infra/lambda.tf: architectures = ["x86_64"]
    lambda_memory_mb: int = 512  # Terraform default of lambda_memory_mb
    inline_memory_mb: int = LAMBDA_FULL_VCPU_MB  # in-Lambda inference: one full vCPU (same GB-s, lowest latency)
    utilisation: float = 0.6  # busiest-hour CPU share an instance fleet is sized for
    peak_to_average: float = 2.0  # busiest-hour request rate over the month's average
    idle_keep_s: float = 600.0  # how long an idle environment is kept (not published by AWS): cold-start odds
    cold_share: float = 0.05  # above this share of cold requests, the p95 latency is a cold one


@dataclass(frozen=True)
class Plan:
    """A serving mode priced for one region: monthly cost = instances(n) x hourly x 730 + n x per_request."""

    name: str
    label: str
    per_request: float
    instance_type: str = ""
    instance_hourly: float = 0.0
    instance_count: int = 0  # 0: as many as the load needs
    capacity_rps: float = math.inf  # requests per second one instance takes at the stated utilisation
    peak_to_average: float = 1.0
    settings: dict[str, str | int] = field(default_factory=dict)
    latency: Callable[[int], float] = field(default=lambda n: 0.0, compare=False, repr=False)

    @property
    def max_volume(self) -> float:
        """Monthly requests a fixed fleet can take at the stated utilisation (infinite when it scales)."""
        if self.instance_type and self.instance_count:
            return self.instance_count * self.capacity_rps * SECONDS_PER_MONTH / self.peak_to_average
        return math.inf

    def instances(self, n: float) -> int:
        if not self.instance_type:
            return 0
        if self.instance_count:
            return self.instance_count
        return max(1, math.ceil(peak_rps(n, self.peak_to_average) / self.capacity_rps - 1e-12))

    def monthly(self, n: float) -> float:
        if n < 0:
            raise CostError(f"requests per month must be >= 0, not {n}")
        return self.instances(n) * self.instance_hourly * HOURS_PER_MONTH + n * self.per_request

    def per_thousand(self, n: float) -> float:
        if n <= 0:
            raise CostError("cost per 1,000 inferences needs a volume above 0")
        return self.monthly(n) / n * 1000


def peak_rps(requests_per_month: float, peak_to_average: float) -> float:
    return requests_per_month / SECONDS_PER_MONTH * peak_to_average


def cold_probability(requests_per_month: float, idle_keep_s: float) -> float:
    """Chance a request finds no warm environment: no other request in the keep window (Poisson arrivals)."""
    return math.exp(-requests_per_month / SECONDS_PER_MONTH * idle_keep_s)


def cpu_stretch(memory_mb: int) -> float:
    """How much longer CPU-bound work takes in a Lambda function of this size than on one full vCPU."""
    return max(1.0, LAMBDA_FULL_VCPU_MB / memory_mb)


def lambda_invocation(prices: Prices, a: Assumptions, duration_ms: float, memory_mb: int) -> float:
    """USD of one invocation: the request fee and the duration billed per millisecond, rounded up."""
    gbs = need(prices.lambda_gb_second[a.arch], f"Lambda GB-second ({a.arch})", prices)
    return need(prices.lambda_request, "Lambda request", prices) + memory_mb / 1024 * math.ceil(duration_ms) / 1e3 * gbs


def need(price: float | None, what: str, prices: Prices) -> float:
    if price is None:
        raise CostError(f"the price table has no {what} price for {prices.region} (checked {prices.checked})")
    return price


def smallest_fitting(sizes: tuple[int, ...], peak_mb: float, headroom: float = 1.25) -> int:
    for size in sizes:
        if size >= peak_mb * headroom:
            return size
    raise CostError(f"{peak_mb:.0f} MB measured does not fit the largest size, {sizes[-1]} MB")


def poisson_concurrency(rate_rps: float, service_s: float, tail: float = 1e-3) -> int:
    """Smallest concurrency c with P(more than c requests in flight) < tail, requests in flight ~ Poisson."""
    mean = rate_rps * service_s
    c, term, cdf = 0, math.exp(-mean), math.exp(-mean)
    while 1 - cdf >= tail and c < 200:
        c += 1
        term *= mean / c
        cdf += term
    return max(1, c)


def plans(f: Figures, prices: Prices, a: Assumptions | None = None, n_for_settings: float = 0) -> list[Plan]:
    """Every mode, priced for the region; raises CostError naming every price the table lacks there."""
    a = a or Assumptions()
    if gaps := prices.missing(a.api, a.arch):
        raise CostError(
            f"the price table has no price for {prices.region} of: {'; '.join(gaps)} (checked {prices.checked}). "
            "Modes are compared only where every one is priced: fill these in mlops/cost/prices.json from the sources "
            "it names"
        )
    api = need(prices.api_request[a.api], f"API Gateway {a.api.upper()} request", prices)
    stretch = cpu_stretch(a.lambda_memory_mb)
    # The function waits on the endpoint: what the API's latency leaves, at least the model server's own work.
    wait_ms = max(f.server_cpu_ms, f.api_p50_ms - f.api_front_cpu_ms - f.function_cpu_ms)
    fn_ms = wait_ms + f.function_cpu_ms * stretch
    fn_extra_ms = f.function_cpu_ms * (stretch - 1)
    function = api + lambda_invocation(prices, a, fn_ms, a.lambda_memory_mb)
    data = (f.request_kb + f.response_kb) * 1024 / GB * need(prices.data_per_gb, "endpoint data", prices)
    settings = {"lambda_memory_mb": a.lambda_memory_mb}

    def endpoint_p95(cold_s: float) -> Callable[[int], float]:
        def p95(n: int) -> float:
            cold = cold_probability(n, a.idle_keep_s) > a.cold_share
            return f.api_p95_ms + fn_extra_ms + (1e3 * (f.function_init_s + cold_s) if cold else 0.0)

        return p95

    out: list[Plan] = []
    sls_mb = smallest_fitting(SERVERLESS_SIZES_MB, f.server_peak_mb)
    sls_price = need(prices.serverless_per_second.get(sls_mb), f"Serverless Inference {sls_mb} MB", prices)
    # The limit costs nothing (billing is per use) and SageMaker throttles what exceeds it: sized so that more
    # requests held by the endpoint at once (each for the function's wait on it) has odds below 1 in a million.
    rate = peak_rps(n_for_settings, a.peak_to_average)
    concurrency = poisson_concurrency(rate, wait_ms / 1e3, tail=1e-6)
    out.append(
        Plan(
            "serverless",
            f"Lambda -> serverless endpoint ({sls_mb} MB)",
            function + sls_price * f.server_cpu_ms / 1e3 + data,
            settings={
                "ENDPOINT_MODE": "serverless",
                "ENDPOINT_MEMORY_MB": sls_mb,
                "ENDPOINT_MAX_CONCURRENCY": concurrency,
                **settings,
            },
            latency=endpoint_p95(f.server_cold_start_s),
        )
    )
    for itype, hourly in prices.instance_per_hour.items():
        hourly = need(hourly, f"{itype} hosting", prices)
        capacity = prices.sustained_vcpus[itype] * a.utilisation * 1e3 / max(f.server_cpu_ms, 1e-6)
        for count, suffix in ((1, "one instance"), (0, "as the load needs")):
            plan = Plan(
                f"instance-{itype}" + ("" if count else "-scaled"),
                f"Lambda -> {itype}, {suffix}",
                function + data,
                instance_type=itype,
                instance_hourly=hourly,
                instance_count=count,
                capacity_rps=capacity,
                peak_to_average=a.peak_to_average,
                latency=endpoint_p95(0.0),
            )
            plan.settings.update(
                ENDPOINT_MODE="instance",
                ENDPOINT_INSTANCE_TYPE=itype,
                ENDPOINT_INSTANCE_COUNT=plan.instances(n_for_settings),
                **settings,
            )
            out.append(plan)
    inline_stretch = cpu_stretch(a.inline_memory_mb)

    def inline_p95(n: int) -> float:
        cold = cold_probability(n, a.idle_keep_s) > a.cold_share
        own = (f.inline_p95_ms + f.function_cpu_ms) * inline_stretch
        return f.api_front_cpu_ms + own + (1e3 * f.inline_init_s if cold else 0.0)

    inline_ms = (f.inline_p50_ms + f.function_cpu_ms) * inline_stretch
    out.append(
        Plan(
            "in-lambda",
            f"ONNX Runtime inside Lambda ({a.inline_memory_mb} MB, reference)",
            api + lambda_invocation(prices, a, inline_ms, a.inline_memory_mb),
            latency=inline_p95,
        )
    )
    return out
