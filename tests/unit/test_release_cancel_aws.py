"""Releases whose runner was killed (a cancelled job past its grace, a lost runner), on the aws backend (moto).

The kill is simulated by doing what the release had done up to that moment under the lock, then leaving
without a word: no rollback, no record of how it ended. The next promotion or repair must see it.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from aws_support import PREFIX, Stack, approved_stack, quiet
from test_aws_release import live_state, smoke

from mlops.backends.base import IN_PROGRESS, Release
from mlops.release import PromotionFailed, _switch, promote, repair, status
from mlops.smoke import SmokeConfig

FUNCTION = f"{PREFIX}-classify-api"


stack = pytest.fixture(name="stack")(approved_stack)


def killed_release(stack: Stack, version: str) -> Release:
    """A release recorded in_progress whose runner died: what it changed stays, nothing says so."""
    backend = stack.backend
    release = Release(
        release_id=time.strftime("r%Y%m%d-%H%M%S-") + "dead01",
        model_version=version,
        stage=backend.stage,
        who="killed",
        started="2026-01-01T00:00:00+00:00",
        code_id=backend.function_code_id(),
        status=IN_PROGRESS,
    )
    with backend.lock("promote by a runner about to be killed"):
        backend.save_release(release)
    return release


def test_a_runner_killed_mid_canary_is_repaired_by_the_next_push(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=quiet)
    before = live_state(stack)
    dead = killed_release(stack, "2")
    with backend.lock("the killed runner, mid-canary"):  # 10 % of requests on the candidate, then the kill
        candidate = backend.stage_candidate(backend.get_version("2"), dead, same_model=False)
        backend.save_release(dead)  # as the release records its candidate (mlops/release/traffic.py)
        backend.route(first.lambda_version, candidate, 0.1)
    assert status(backend)["drift"]  # what is served is not what the records say
    log: list[str] = []
    assert promote(backend, None, "push", SmokeConfig(), log=log.append) is None  # not retried on its own
    assert any("drifted from its records" in line for line in log), log
    assert "was rolled back in staging" in log[-1] or "not retried" in log[-1]
    # endpoint, alias and stage deployment as before (each version follows its own ENDPOINT_NAME since the split)
    assert live_state(stack)[:3] == before[:3] and status(backend)["drift"] == {}
    sm, fn = stack.client("sagemaker"), stack.client("lambda")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [f"{PREFIX}-classifier"]  # candidate gone
    assert candidate not in {v["Version"] for v in fn.list_versions_by_function(FunctionName=FUNCTION)["Versions"]}
    assert {r.release_id: r.status for r in backend.list_releases()}[dead.release_id] == "failed"


def test_a_killed_first_release_is_detected_and_repaired(stack: Stack) -> None:
    backend = stack.backend
    dead = killed_release(stack, "1")
    with backend.lock("the killed runner, mid-switch"):  # endpoint, function version and alias moved, then the kill
        _switch(backend, dead, backend.get_version("1"), None, quiet)
    found = status(backend)["drift"]
    assert found and found["endpoint_config"]["recorded"] == ""  # an untested model serves, and status says so
    target, repaired = repair(backend, "oncall", log=quiet)
    assert target is None and repaired == found
    assert stack.client("sagemaker").list_endpoints()["Endpoints"] == []  # nothing serves, as before the release
    assert status(backend)["drift"] == {}
    assert {r.release_id: r.status for r in backend.list_releases()}[dead.release_id] == "failed"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_cancellation_whose_signal_lands_in_a_destructor_still_rolls_back(stack: Stack, monkeypatch) -> None:
    """The fault: SIGTERM arrives while Python runs a destructor (the local backend drops a Popen right after
    the alias moves); the handler's exception is raised there, printed and lost, and the release went on."""
    smoke(monkeypatch, True, True)
    backend = stack.backend
    promote(backend, "1", "alice", SmokeConfig(), log=lambda _: None)
    before = live_state(stack)
    real_move = backend.move_alias

    class Dropped:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # what a cancelled job sends
            for _ in range(100_000):  # the handler runs in here, inside the destructor
                pass

    def move_alias(version: str) -> None:
        real_move(version)
        Dropped()  # dropped at once

    monkeypatch.setattr(backend, "move_alias", move_alias)
    with pytest.raises(PromotionFailed, match="rolled back to version 1: interrupted by SIGTERM"):
        promote(backend, "2", "alice", SmokeConfig(), log=lambda _: None)
    assert live_state(stack) == before
    assert status(backend)["needs_repair"] == []


def test_the_repair_step_after_a_failed_first_apply_has_nothing_to_repair(monkeypatch) -> None:
    """deploy.yml's repair step runs on failure(): when the job's first Terraform apply failed, the stage has
    no release table, so no release ever ran there. It says so and succeeds, instead of failing the job a
    second time; a promotion in the same state still fails, naming the missing stack."""
    from aws_support import aws_env
    from moto import mock_aws
    from typer.testing import CliRunner

    from mlops.cli import app

    aws_env(monkeypatch)
    with mock_aws():
        out = CliRunner().invoke(app, ["repair", "--backend", "aws", "--stage", "staging"], env={"COLUMNS": "300"})
        assert out.exit_code == 0, out.output
        said = " ".join(out.output.split())
        assert f"nothing to repair: staging has no release table {PREFIX}-releases: its stack is not applied" in said
        out = CliRunner().invoke(app, ["promote", "--backend", "aws", "--stage", "staging"], env={"COLUMNS": "300"})
        assert out.exit_code != 0 and "its stack is not applied" in " ".join(out.output.split())
