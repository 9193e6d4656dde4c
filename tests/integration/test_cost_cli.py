"""`mlops cost advise|table`: answers for a few volumes, one-line errors, and no heavy import (control plane)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops.cli import app
from mlops.config import REPO_ROOT

REFERENCE = REPO_ROOT / "mlops" / "cost" / "reference.json"
runner = CliRunner()


def cost(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["cost", *args, "--figures", str(REFERENCE)])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("volume", [10_000, 100_000, 1_000_000, 10_000_000])
def test_advice_for_a_few_volumes(volume: int) -> None:
    code, out, _ = cost(
        "advise", "--requests-per-month", str(volume), "--p95-budget-ms", "2000", "--region", "us-east-1", "--json"
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["requests_per_month"] == volume
    assert doc["p95_ms"] <= 2000
    assert doc["monthly_usd"] == pytest.approx(doc["per_1000_usd"] * volume / 1000, rel=1e-3)
    assert doc["endpoint_settings"]["ENDPOINT_MODE"] in ("serverless", "instance")
    assert "lambda_memory_mb" in doc["terraform_variables"]


def test_advice_in_text_names_the_settings() -> None:
    code, out, _ = cost("advise", "--requests-per-month", "1000000", "--p95-budget-ms", "500", "--region", "us-east-1")
    assert code == 0, out
    assert "lambda_memory_mb = " in out and "ENDPOINT_MODE=" in out and "per 1,000 inferences" in out


def test_a_budget_below_a_cold_start_moves_low_volumes_off_serverless() -> None:
    f = json.loads(REFERENCE.read_text())["figures"]
    # Between a cold function (every mode at 10k a month) and a cold function plus a cold serverless endpoint.
    budget = f["api_p95_ms"] + 1e3 * f["function_init_s"] + 500 * f["server_cold_start_s"]
    modes = {}
    for volume in (10_000, 1_000_000):
        code, out, _ = cost(
            "advise",
            "--requests-per-month",
            str(volume),
            "--p95-budget-ms",
            f"{budget}",
            "--region",
            "us-east-1",
            "--json",
        )
        assert code == 0, out
        modes[volume] = json.loads(out)["endpoint_settings"]["ENDPOINT_MODE"]
    assert modes == {10_000: "instance", 1_000_000: "serverless"}


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--requests-per-month", "0", "--p95-budget-ms", "100"], "must be above 0"),
        (["--requests-per-month", "1000", "--p95-budget-ms", "-5"], "must be above 0"),
        (
            ["--requests-per-month", "1000", "--p95-budget-ms", "1", "--region", "us-east-1"],
            "no mode meets a p95 of 1 ms",
        ),
        (["--requests-per-month", "1000", "--p95-budget-ms", "100", "--region", "mars-1"], "no prices for region"),
        (["--requests-per-month", "1000", "--p95-budget-ms", "100", "--region", "eu-west-1"], "price table has no"),
    ],
)
def test_bad_input_is_one_line(args: list[str], reason: str) -> None:
    code, out, err = cost("advise", *args)
    assert code != 0
    assert reason in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_unreadable_figures_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "f.json"
    bad.write_text("{not json")
    result = runner.invoke(app, ["cost", "table", "--region", "us-east-1", "--figures", str(bad)])
    assert result.exit_code != 0 and "not valid JSON" in result.stderr
    bad.write_text(json.dumps({"figures": {"api_p50_ms": 1}}))
    result = runner.invoke(app, ["cost", "table", "--region", "us-east-1", "--figures", str(bad)])
    assert result.exit_code != 0 and "lack" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_table_has_every_volume() -> None:
    code, out, _ = cost("table", "--region", "us-east-1")
    assert code == 0
    assert all(f"{v:,}/month" in out for v in (10_000, 100_000, 1_000_000, 10_000_000))
    assert "serverless endpoint" in out and "ml.c6i.large, one instance" in out and "inside Lambda" in out


def test_advice_imports_nothing_heavy() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from mlops.cli import app; "
        f"r = CliRunner().invoke(app, ['cost', 'advise', '--requests-per-month', '100000', '--p95-budget-ms', '500', "
        f"'--region', 'us-east-1', '--figures', {str(REFERENCE)!r}]); assert r.exit_code == 0, r.output; "
        "heavy = {'numpy', 'torch', 'matplotlib', 'onnxruntime', 'mlflow', 'PIL'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
