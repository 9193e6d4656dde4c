"""Every test module is in one tier's folder (tests/tiers.py), and its tests carry that tier's marker."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiers

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_is_in_a_tier_folder() -> None:
    outside = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py") if tiers.tier_of(p) is None)
    assert not outside, f"move these test modules into tests/unit, tests/integration or tests/e2e: {outside}"
    for tier in tiers.TIERS:
        assert sorted((TESTS / tier).glob("test_*.py")), f"tests/{tier} has no test module"


def test_each_module_name_is_unique_across_the_tiers() -> None:
    # Test modules import each other by name (the tier folders are on sys.path): one name, one module.
    names = [p.name for tier in tiers.TIERS for p in (TESTS / tier).glob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_the_tiers_are_registered_markers(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(tiers.TIERS) <= registered


def test_this_module_is_marked_with_its_tier(request: pytest.FixtureRequest) -> None:
    assert tiers.tier_of(Path(__file__)) == "unit"
    assert request.node.get_closest_marker("unit") is not None


def test_the_longest_units_name_test_modules() -> None:
    modules = {p.stem for p in TESTS.rglob("test_*.py")}
    units = {tiers.work_unit(m) for m in modules}
    assert set(tiers.LONGEST_FIRST) <= units, set(tiers.LONGEST_FIRST) - units
