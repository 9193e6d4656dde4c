"""Every test module is in exactly one tier (tests/tiers.py), and its tests carry that tier's marker."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiers

TESTS = Path(__file__).resolve().parent


def test_every_test_module_has_one_tier() -> None:
    modules = {path.stem for path in TESTS.glob("test_*.py")}
    listed = [module for names in tiers.TIERS.values() for module in names]
    untiered = sorted(modules - set(listed))
    assert not untiered, f"add these test modules to a tier in tests/tiers.py: {untiered}"
    assert sorted(set(listed) - modules) == [], "tests/tiers.py lists modules that do not exist"
    twice = sorted({module for module in listed if listed.count(module) > 1})
    assert not twice, f"in more than one tier: {twice}"


def test_the_tiers_are_registered_markers(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(tiers.TIERS) <= registered


def test_this_module_is_marked_with_its_tier(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker(tiers.tier_of("test_tiers")) is not None
