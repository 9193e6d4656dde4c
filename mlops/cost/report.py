"""Advice, break-even volumes and tables from the cost model: the cheapest mode within a latency budget."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from mlops.cost import (
    HOURS_PER_MONTH,
    LAMBDA_SIZES_MB,
    SECONDS_PER_MONTH,
    VOLUMES,
    Assumptions,
    CostError,
    Figures,
    Plan,
    Prices,
    cold_probability,
    plans,
)


@dataclass(frozen=True)
class Advice:
    plan: Plan
    monthly: float
    p95_ms: float
    rejected: list[tuple[str, float, float]]  # (label, monthly USD, p95 ms) of modes over the latency budget
    reference: tuple[float, float]  # (monthly USD, p95 ms) of inference inside Lambda


def advise(
    f: Figures, prices: Prices, requests_per_month: int, p95_budget_ms: float, a: Assumptions | None = None
) -> Advice:
    """The cheapest deployable mode (any function memory) whose modelled p95 meets the budget."""
    if requests_per_month <= 0:
        raise CostError(f"--requests-per-month must be above 0, not {requests_per_month}")
    if not p95_budget_ms > 0:
        raise CostError(f"--p95-budget-ms must be above 0, not {p95_budget_ms}")
    a = a or Assumptions()
    n = requests_per_month
    floor_mb = f.function_peak_mb * 1.25
    best: tuple[float, float, Plan] | None = None
    seen: dict[str, tuple[float, float]] = {}
    reference = (0.0, 0.0)
    fastest = math.inf
    for mb in (m for m in LAMBDA_SIZES_MB if m >= floor_mb):
        for plan in plans(f, prices, Assumptions(**{**vars(a), "lambda_memory_mb": mb}), n):
            if n > plan.max_volume:
                continue
            cost, p95 = plan.monthly(n), plan.latency(n)
            if plan.name == "in-lambda":
                reference = (cost, p95)
                continue
            fastest = min(fastest, p95)
            if p95 <= p95_budget_ms:
                if best is None or (cost, p95) < best[:2]:
                    best = (cost, p95, plan)
            elif plan.label not in seen or cost < seen[plan.label][0]:
                seen[plan.label] = (cost, p95)
    if best is None:
        cold = cold_probability(n, a.idle_keep_s) > a.cold_share
        why = f"; at this volume the p95 request starts a function: {f.function_init_s:.2f} s import" if cold else ""
        raise CostError(
            f"no mode meets a p95 of {p95_budget_ms:g} ms at {n:,} requests a month (fastest: {fastest:.0f} ms{why})"
        )
    rejected = sorted((label, c, p) for label, (c, p) in seen.items())
    return Advice(best[2], best[0], best[1], rejected, reference)


def usd(x: float) -> str:
    if x >= 100:
        return f"${x:,.0f}"
    if x >= 1:
        return f"${x:,.2f}"
    return f"${x:.4f}"


def table(all_plans: list[Plan], volumes: tuple[int, ...] = VOLUMES) -> list[list[str]]:
    """Rows: mode, then per volume 'monthly (per 1,000)', with the instance count where it scales."""
    rows = [["mode", *(f"{v:,}/month" for v in volumes)]]
    for p in all_plans:
        cells = []
        for v in volumes:
            count = f" x{p.instances(v)}" if p.instance_type and not p.instance_count else ""
            if v > p.max_volume:
                cells.append("over capacity")
                continue
            cells.append(f"{usd(p.monthly(v))} ({usd(p.per_thousand(v))}/1k){count}")
        rows.append([p.label, *cells])
    return rows


def render(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def figures_from(data: dict[str, Any]) -> Figures:
    """Figures from a JSON object (build/bench-cost.json's "figures", or the committed reference)."""
    names = Figures.__dataclass_fields__
    missing = [k for k in names if k not in data]
    if missing:
        raise CostError(f"measured figures lack {', '.join(missing)}")
    return Figures(**{k: data[k] for k in names})


def break_even(a: Plan, b: Plan, n_max: float = 1e10) -> list[float]:
    """Monthly volumes where the cheaper of the two plans changes, up to n_max and within both capacities.

    Each cost is linear between the volumes where a scaled fleet adds an instance: a crossing inside
    such a segment is solved exactly; one made by an added instance is the volume of that step.
    """
    n_max = min(n_max, a.max_volume, b.max_volume)
    points = {0.0, n_max}
    for p in (a, b):
        if p.instance_type and not p.instance_count and math.isfinite(p.capacity_rps):
            step = p.capacity_rps * SECONDS_PER_MONTH / p.peak_to_average  # volume served per added instance
            k = 1
            while k * step < n_max:
                points.add(k * step)
                k += 1

    def sign(x: float) -> int:
        return 0 if abs(x) < 1e-9 else (1 if x > 0 else -1)

    out: list[float] = []
    before = 0  # sign of a - b just before the current segment
    slope = a.per_request - b.per_request
    for lo, hi in itertools.pairwise(sorted(points)):
        probe = lo + (hi - lo) * 1e-9  # inside the segment, where the instance counts hold
        fixed = (a.instances(probe) * a.instance_hourly - b.instances(probe) * b.instance_hourly) * HOURS_PER_MONTH
        start = sign(fixed + slope * lo)
        if before and start and start != before:
            out.append(lo)  # an added instance made the other plan the cheaper
        if slope:
            n = -fixed / slope
            if lo < n <= hi:
                out.append(n)
        before = sign(fixed + slope * hi) or before
    return out
