"""mlops.release.promote/rollback end to end on the aws backend (moto, UpdateEndpoint and Invoke stand-ins)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_support import PREFIX, STAGE, Stack, approve_all, aws_env, make_stack
from botocore.exceptions import ClientError
from moto import mock_aws

import mlops.release as release_mod
from mlops.backends.base import BackendError, Release
from mlops.release import PromotionFailed, PromotionRefused, promote, rollback, status
from mlops.smoke import SmokeConfig, SmokeResult

ENDPOINT = f"{PREFIX}-classifier"


@pytest.fixture
def stack(monkeypatch) -> Iterator[Stack]:
    aws_env(monkeypatch)
    with mock_aws():
        s = make_stack((0.95, 0.97))
        approve_all(s.backend)
        yield s


def smoke(monkeypatch, *results: bool) -> list[str]:
    """Replace the smoke tests: each call passes or fails in turn; returns the URLs smoke-tested."""
    urls: list[str] = []
    outcomes = iter(results)

    def fake(url: str, cfg: SmokeConfig, photos: object = None) -> SmokeResult:
        urls.append(url)
        ok = next(outcomes)
        failures = [] if ok else ["3/10 photos classified correctly with confidence ≥ 0.6"]
        return SmokeResult(ok, failures, 10 if ok else 3, 10, 80.0, 120.0, {"health": 200})

    monkeypatch.setattr(release_mod, "run_smoke", fake)
    monkeypatch.setattr(release_mod, "smoke_photos", lambda cfg, *_: [(Path("cat.1.jpg"), "cat")])
    return urls


def live_state(stack: Stack) -> tuple[str, str, str, dict]:
    """Endpoint config, alias version, stage deployment and stage variables as AWS reports them."""
    b = stack.backend
    variables = stack.client("apigateway").get_stage(restApiId=stack.rest_api_id, stageName=STAGE)["variables"]
    return b.current_endpoint_config(), b.current_function_version(), b.current_deployment(), variables


def test_a_failed_smoke_test_restores_endpoint_alias_and_stage(stack: Stack, monkeypatch) -> None:
    urls = smoke(monkeypatch, True, False)
    backend, log = stack.backend, []
    first = promote(backend, "1", "alice", SmokeConfig(), log=log.append)
    assert first.status == "live" and first.lambda_version == "2"
    before = live_state(stack)
    assert before[:3] == (first.endpoint_config, "2", first.deployment_id)
    assert before[3]["modelVersion"] == "1" and before[3]["release"] == first.release_id

    with pytest.raises(PromotionFailed, match="rolled back to version 1: smoke tests failed: 3/10 photos"):
        promote(backend, "2", "bob", SmokeConfig(), log=log.append)

    assert live_state(stack) == before  # endpoint config, alias and stage deployment + variables all restored
    assert urls == [backend.api_url()] * 2
    endpoint_calls = [(c["EndpointConfigName"], "DeploymentConfig" in c) for c in stack.updates.calls]
    second_config = endpoint_calls[0][0]
    assert endpoint_calls == [(second_config, True), (first.endpoint_config, False)]  # restore: no alarms
    assert [i["Qualifier"] for i in stack.invocations.calls] == ["2", "3"]  # each version checked before traffic

    releases = {r.model_version: r for r in backend.list_releases()}
    assert releases["1"].status == "live"
    failed = releases["2"]
    assert (failed.status, failed.previous_release_id, failed.who) == ("rolled_back", first.release_id, "bob")
    assert failed.endpoint_config == second_config and failed.lambda_version == "3"
    assert "3/10 photos" in failed.reason and failed.smoke["passed"] is False
    assert any("rolling back" in line for line in log)
    assert status(backend)["model_version"] == "1"


def test_a_passing_release_goes_live_and_rollback_returns_to_the_previous(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True, True)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    first_state = live_state(stack)
    second = promote(backend, None, "alice", SmokeConfig(), log=lambda m: None)  # newest approved, not live
    assert (second.model_version, second.status, second.lambda_version) == ("2", "live", "3")
    assert live_state(stack)[:3] == (second.endpoint_config, "3", second.deployment_id)
    assert {r.model_version: r.status for r in backend.list_releases()} == {"1": "superseded", "2": "live"}

    info = status(backend)
    assert (info["backend"], info["model_version"], info["lambda_version"]) == ("aws", "2", "3")
    assert info["endpoint_config"] == second.endpoint_config and info["stage_deployment"] == second.deployment_id

    assert promote(backend, "2", "alice", SmokeConfig(), log=lambda m: None).release_id == second.release_id

    target = rollback(backend, "carol", log=lambda m: None)
    assert target.release_id == first.release_id
    assert live_state(stack) == first_state
    assert {r.model_version: r.status for r in backend.list_releases()} == {"1": "live", "2": "rolled_back"}


def test_a_failing_pre_traffic_check_never_moves_the_alias(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    before = live_state(stack)
    stack.invocations.respond = lambda event: ("Unhandled", {"errorMessage": "ImportError: no module named x"})
    with pytest.raises(PromotionFailed, match="pre-traffic check: the handler raised"):
        promote(backend, "2", "bob", SmokeConfig(), log=lambda m: None)
    assert live_state(stack) == before and before[1] == first.lambda_version == "2"
    assert [i["Qualifier"] for i in stack.invocations.calls] == ["2", "3"]  # version 3 published and checked
    published = stack.client("lambda").list_versions_by_function(FunctionName=f"{PREFIX}-classify-api")["Versions"]
    assert "3" not in {v["Version"] for v in published}  # never routed to, and deleted with its release


def test_an_unapproved_version_is_refused_and_the_lock_is_free_again(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch)
    backend = stack.backend
    backend.set_approval("2", "Rejected", "bob", "no")
    with pytest.raises(PromotionRefused, match="version 2 is Rejected, not Approved"):
        promote(backend, "2", "alice", SmokeConfig(), log=lambda m: None)
    with backend.lock("next"):
        pass
    assert backend.list_releases() == [] and stack.updates.calls == []


def test_a_promotion_that_cannot_be_smoke_tested_is_refused_before_anything_moves(stack: Stack, tmp_path) -> None:
    backend = stack.backend
    with pytest.raises(PromotionRefused, match="no smoke-test photos"):
        promote(backend, "1", "alice", SmokeConfig(photos_dir=tmp_path), log=lambda m: None)
    assert backend.list_releases() == [] and stack.updates.calls == [] and stack.invocations.calls == []
    with backend.lock("next"):
        pass


def test_an_unexpected_error_during_the_smoke_tests_still_rolls_everything_back(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    before = live_state(stack)

    def broken(url: str, cfg: SmokeConfig, photos: object = None) -> SmokeResult:
        raise ConnectionResetError("peer reset")

    monkeypatch.setattr(release_mod, "run_smoke", broken)
    with pytest.raises(PromotionFailed, match="rolled back to version 1: ConnectionResetError: peer reset"):
        promote(backend, "2", "bob", SmokeConfig(), log=lambda m: None)
    assert live_state(stack) == before
    assert {r.model_version: r.status for r in backend.list_releases()} == {"1": "live", "2": "rolled_back"}
    assert status(backend)["release_id"] == first.release_id


def exists(stack: Stack, kind: str, name: str) -> bool:
    """Whether the endpoint config / model / function version `name` exists in (moto's) AWS."""
    calls = {
        "config": lambda: stack.client("sagemaker").describe_endpoint_config(EndpointConfigName=name),
        "model": lambda: stack.client("sagemaker").describe_model(ModelName=name),
        "function": lambda: stack.client("lambda").get_function(FunctionName=f"{PREFIX}-classify-api", Qualifier=name),
    }
    try:
        calls[kind]()
    except ClientError:
        return False
    return True


def test_a_rolled_back_release_leaves_no_endpoint_config_model_or_function_version(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True, False)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    with pytest.raises(PromotionFailed):
        promote(backend, "2", "bob", SmokeConfig(), log=lambda m: None)
    failed = next(r for r in backend.list_releases() if r.model_version == "2")
    assert failed.endpoint_config and failed.lambda_version == "3"
    for kind, name in (("config", failed.endpoint_config), ("model", failed.endpoint_config), ("function", "3")):
        assert not exists(stack, kind, name), f"{kind} {name} of the rolled-back release is still there"
    for kind, name in (("config", first.endpoint_config), ("model", first.endpoint_config), ("function", "2")):
        assert exists(stack, kind, name), f"{kind} {name} of the live release was deleted"


def test_rollback_deletes_what_only_the_undone_release_used_and_keeps_the_target(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True, True)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    second = promote(backend, "2", "alice", SmokeConfig(), log=lambda m: None)
    assert exists(stack, "config", first.endpoint_config)  # superseded: kept as the rollback target
    rollback(backend, "carol", log=lambda m: None)
    assert live_state(stack)[:2] == (first.endpoint_config, first.lambda_version)
    assert not exists(stack, "config", second.endpoint_config) and not exists(stack, "model", second.endpoint_config)
    assert not exists(stack, "function", second.lambda_version)
    assert exists(stack, "config", first.endpoint_config) and exists(stack, "function", first.lambda_version)


def test_retire_keeps_what_is_live_and_reports_a_failed_delete_without_raising(
    stack: Stack, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    smoke(monkeypatch, True)
    backend = stack.backend
    live = promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    backend.retire(live)  # the endpoint and the alias are on it: nothing is deleted
    assert exists(stack, "config", live.endpoint_config) and exists(stack, "model", live.endpoint_config)
    assert exists(stack, "function", live.lambda_version)

    def refuse(name: str) -> str:
        raise BackendError(f"deleting endpoint config {name}: AccessDenied: not allowed")

    monkeypatch.setattr(backend.host, "discard", refuse)
    gone = Release(release_id="r-gone", model_version="9", stage=STAGE, endpoint_config="cfg-9")
    with caplog.at_level(logging.WARNING, logger="mlops.backends.aws"):
        backend.retire(gone)
    assert "endpoint config and model left in place: deleting endpoint config cfg-9: AccessDenied" in caplog.text


def test_a_deployment_that_failed_part_way_is_cleaned_up_by_its_name(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    real_wait = backend.host.wait_for

    def new_config_never_settles(config: str) -> None:
        if config != first.endpoint_config:
            raise BackendError(f"endpoint did not switch to {config}: CannotStartContainerError")
        real_wait(config)

    monkeypatch.setattr(backend.host, "wait_for", new_config_never_settles)
    with pytest.raises(PromotionFailed, match="CannotStartContainerError"):
        promote(backend, "2", "bob", SmokeConfig(), log=lambda m: None)
    failed = next(r for r in backend.list_releases() if r.model_version == "2")
    assert failed.endpoint_config == ""  # deploy never returned its name
    name = backend.host.config_name("2", failed.release_id)
    assert stack.updates.calls[-2]["EndpointConfigName"] == name  # it was created and switched to
    assert not exists(stack, "config", name) and not exists(stack, "model", name)
    assert live_state(stack)[0] == first.endpoint_config and exists(stack, "config", first.endpoint_config)
