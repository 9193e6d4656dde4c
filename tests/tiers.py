"""The test tiers, one list per tier, by test module (tests/test_*.py). tests/conftest.py marks every test
with its module's tier (pytest -m unit|integration|e2e), tests/test_tiers.py fails on a module in no tier,
and `make test-unit`, `make test-integration` and `make test-e2e` run one tier each (`python tests/tiers.py
TIER` prints its files).

- unit: in-memory fakes, moto in process, static reads of files; no server, no process, no training. Fast
  (`make check` runs them with lint and the type check in under 2 minutes on 2 cores).
- integration: real local processes: model servers, Lambda runtimes, the AWS emulator, Terraform against a
  moto server, training, a browser, subprocesses of make, uv, actionlint or the CLI.
- e2e: the rehearsal, the documented AWS flow end to end against the emulator (with `make aws-rehearsal`).
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

UNIT = (
    "test_aws_backend",
    "test_aws_cli",
    "test_aws_endpoint",
    "test_aws_release",
    "test_cost_model",
    "test_data_upload",
    "test_import_contracts",
    "test_infra_static",
    "test_lambda_bad_inputs",
    "test_lambda_handler_errors",
    "test_lambda_handler_shadow",
    "test_lambda_image_check",
    "test_metrics_gate",
    "test_progressive_aws",
    "test_release_lock_code",
    "test_release_promises_aws",
    "test_serving_image_contract",
    "test_serving_preprocess",
    "test_serving_settings",
    "test_signal_lag",
    "test_tiers",
    "test_type_ignores",
    "test_web_publish",
)

INTEGRATION = (
    "test_bench_stack",
    "test_browser",
    "test_cli_options",
    "test_control_plane_install",
    "test_conventions",
    "test_cost_cli",
    "test_data_manifest",
    "test_demo_reduced",
    "test_emulator_api",
    "test_emulator_gaps",
    "test_emulator_iam",
    "test_emulator_pipeline",
    "test_emulator_routing",
    "test_emulator_signals",
    "test_evaluation_report",
    "test_iam_policies",
    "test_infra_lambda_settings",
    "test_infra_lambda_zip",
    "test_infra_moto",
    "test_int8_serving_model",
    "test_lambda_endpoint",
    "test_lambda_handler",
    "test_lambda_local_stack",
    "test_lambda_packaging",
    "test_lambda_safe_fetch",
    "test_local_pipeline",
    "test_local_release",
    "test_local_servers_limits",
    "test_lock",
    "test_lock_workflows",
    "test_onnx_parity",
    "test_pipeline_definition",
    "test_progressive_local",
    "test_release_promises_local",
    "test_serving_bench",
    "test_serving_engine",
    "test_serving_limits",
    "test_serving_packaging",
    "test_serving_runtime_api",
    "test_serving_server",
    "test_smoke_set",
    "test_workflows",
    "test_workflows_actionlint",
)

E2E = (
    "test_rehearsal_breakage",
    "test_rehearsal_flow",
    "test_rehearsal_iam",
)

TIERS = {"unit": UNIT, "integration": INTEGRATION, "e2e": E2E}
TIER_OF = {module: tier for tier, modules in TIERS.items() for module in modules}


# How `make test` spreads the modules over its xdist workers. One module is one work unit (its module
# fixtures start once), except modules that wait on the same processes: the breakage rehearsals start once
# per worker process (tests/rehearsal_runs.py) and both these modules read them.
SHARED_UNITS = {"test_rehearsal_breakage": "rehearsal-breakages", "test_rehearsal_iam": "rehearsal-breakages"}
# The longest work units, longest first (measured on 2 cores): they start before everything else, so that
# the run is not left waiting on one of them started last. The others follow in collection order.
LONGEST_FIRST = (
    "test_rehearsal_flow",
    "rehearsal-breakages",
    "test_local_pipeline",
    "test_local_release",
    "test_infra_lambda_settings",
    "test_demo_reduced",
    "test_release_promises_local",
    "test_progressive_local",
    "test_emulator_routing",
    "test_browser",
)


def work_unit(module: str) -> str:
    """The xdist group of a test module: the name of the unit of work one worker runs whole."""
    return SHARED_UNITS.get(module, module)


def start_rank(module: str) -> int:
    """Where a module's unit starts: its place in LONGEST_FIRST, else after all of them."""
    unit = work_unit(module)
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


def tier_of(module: str) -> str | None:
    """The tier of a test module (its file name without .py), None when it is in no list."""
    return TIER_OF.get(module)


def paths(tier: str) -> list[str]:
    return [f"tests/{module}.py" for module in TIERS[tier]]


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in TIERS:
        sys.exit(f"usage: python tests/tiers.py {'|'.join(TIERS)}")
    print(" ".join(paths(sys.argv[1])))
