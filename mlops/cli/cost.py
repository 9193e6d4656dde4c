"""`mlops cost advise|table`: the cheapest serving mode for a volume and a latency budget, and its settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlops.cli.common import console, fail, print_json
from mlops.config import REPO_ROOT

if TYPE_CHECKING:
    from mlops.cost import Figures, Prices

cost_app = typer.Typer(
    help="Cost per inference of each serving mode (list prices, measured figures).", no_args_is_help=True
)

REFERENCE = Path(__file__).resolve().parents[1] / "cost" / "reference.json"
LATEST = REPO_ROOT / "build" / "bench-cost.json"
# us-east-1 by default: the only region whose prices the table holds in full (eu-west-1 lacks several).
RegionOpt = Annotated[
    str, typer.Option("--region", help="Region of the price table (us-east-1; eu-west-1 once its prices are in)")
]
FiguresOpt = Annotated[
    Path | None,
    typer.Option(help="Measured figures: default build/bench-cost.json (make bench), else the committed reference"),
]


def load_figures(path: Path | None) -> tuple[Figures, str]:
    """(Figures, where they come from) from a bench-cost JSON or the committed reference."""
    from mlops.cost import CostError
    from mlops.cost.report import figures_from

    path = path or (LATEST if LATEST.is_file() else REFERENCE)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        fail(f"cannot read the figures {path}: {exc.strerror or exc}")
    except ValueError:
        fail(f"{path} is not valid JSON")
    try:
        return figures_from(data.get("figures", {})), f"{path} ({data.get('when') or data.get('measured', '?')})"
    except CostError as exc:
        fail(f"{path}: {exc}")


def _prices(region: str) -> Prices:
    from mlops.cost import CostError, Prices

    try:
        return Prices.load(region)
    except CostError as exc:
        fail(str(exc))


@cost_app.command("advise")
def advise_cmd(
    requests_per_month: Annotated[int, typer.Option(help="Expected requests a month")],
    p95_budget_ms: Annotated[float, typer.Option(help="Latency budget: 95th percentile through the API, ms")],
    region: RegionOpt = "us-east-1",
    figures: FiguresOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the cheapest deployable serving mode that meets the budget, and the settings that select it."""
    from mlops.cost import CostError
    from mlops.cost.report import advise, usd

    measured, source = load_figures(figures)
    prices = _prices(region)
    try:
        advice = advise(measured, prices, requests_per_month, p95_budget_ms)
    except CostError as exc:
        fail(str(exc))
    plan, n = advice.plan, requests_per_month
    tf = {k: v for k, v in plan.settings.items() if k.islower()}
    env = {k: v for k, v in plan.settings.items() if k.isupper()}
    if as_json:
        print_json(
            {
                "mode": plan.name,
                "label": plan.label,
                "region": region,
                "requests_per_month": n,
                "monthly_usd": round(advice.monthly, 6),
                "per_1000_usd": round(advice.monthly / n * 1000, 6),
                "p95_ms": round(advice.p95_ms, 1),
                "terraform_variables": tf,
                "endpoint_settings": env,
                "figures": source,
                "prices_checked": prices.checked,
            }
        )
        return
    console.print(
        f"{plan.label}: {usd(advice.monthly)} a month, {usd(advice.monthly / n * 1000)} per 1,000 inferences, "
        f"p95 about {advice.p95_ms:.0f} ms at {n:,} requests a month in {region} (prices checked {prices.checked})",
        soft_wrap=True,
    )
    console.print("Terraform variables (infra/, terraform.tfvars or -var):")
    for k, v in tf.items():
        console.print(f"  {k} = {v}", soft_wrap=True)
    console.print(
        "Endpoint settings (environment or GitHub variables of the release job, docs/deploy-aws.md):", soft_wrap=True
    )
    for k, v in env.items():
        console.print(f"  {k}={v}", soft_wrap=True)
    over = [
        f"{label} ({usd(c)}, p95 {p:.0f} ms)"
        for label, c, p in advice.rejected
        if label != plan.label and c < advice.monthly * 0.99
    ]
    if over:
        console.print("Cheaper but over the latency budget: " + "; ".join(over), soft_wrap=True)
    ref_cost, ref_p95 = advice.reference
    console.print(
        f"Reference, not deployed by this stack: ONNX Runtime inside the function, {usd(ref_cost)} a month, "
        f"p95 about {ref_p95:.0f} ms",
        soft_wrap=True,
    )
    console.print(f"figures: {source}", style="dim", soft_wrap=True)


@cost_app.command("table")
def table_cmd(region: RegionOpt = "us-east-1", figures: FiguresOpt = None) -> None:
    """Print every mode's monthly cost (and per 1,000 inferences) at 10k, 100k, 1M and 10M requests a month."""
    from mlops.cost import CostError, plans
    from mlops.cost.report import render, table

    measured, source = load_figures(figures)
    prices = _prices(region)
    try:
        rows = table(plans(measured, prices))
    except CostError as exc:
        fail(str(exc))
    console.print(render(rows), soft_wrap=True, markup=False)
    console.print(f"{region}, prices checked {prices.checked}; figures: {source}", style="dim", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cost_app, name="cost")
