"""The test tiers, one folder each: tests/unit, tests/integration and tests/e2e. tests/conftest.py marks every
test with its folder's tier (pytest -m unit|integration|e2e), tests/unit/test_tiers.py fails on a test module
outside them, and `make test-unit`, `make test-integration` and `make test-e2e` run one tier each.

- unit: in-memory fakes, moto in process, static reads of files; no server, no process, no training. Fast
  (`make check` runs them with lint and the type check in under 2 minutes on 2 cores).
- integration: real local processes: model servers, Lambda runtimes, the AWS emulator, Terraform against a
  moto server, training, a browser, subprocesses of make, uv, actionlint or the CLI.
- e2e: the rehearsal, the documented AWS flow end to end against the emulator (`make aws-rehearsal`), and
  the rehearsals that break a release on purpose.

Helpers shared by several test modules live beside this file, in tests/.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e")


# How `make test` spreads the modules over its xdist workers. One module is one work unit (its module
# fixtures start once), except modules that wait on the same processes: the breakages rehearsal starts once
# per worker process (tests/rehearsal_runs.py) and both these modules read it.
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
    """The unit of work one xdist worker runs whole that a test module belongs to (tests/conftest.py)."""
    return SHARED_UNITS.get(module, module)


def start_rank(module: str) -> int:
    """Where a module's unit starts: its place in LONGEST_FIRST, else after all of them."""
    unit = work_unit(module)
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


def tier_of(path: Path) -> str | None:
    """The tier of a test module: the tests/ folder it is in, None outside the three."""
    parent = path.resolve().parent
    return parent.name if parent.parent == TESTS and parent.name in TIERS else None
