"""The aws backend against moto: configuration, registry approval, function versions, stage, records, lock."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from aws_support import GROUP, IMAGE, PREFIX, REGION, STAGE, Stack, add_model_version, aws_env, make_stack, new_backend
from moto import mock_aws

from mlops.backends.aws.config import AwsConfig, resource_name
from mlops.backends.base import BackendError, LockBusyError, Release


@pytest.fixture
def stack(monkeypatch) -> Iterator[Stack]:
    aws_env(monkeypatch)
    with mock_aws():
        yield make_stack((0.95, None))


def release(n: int, version: str = "1") -> Release:
    return Release(release_id=f"r2026010{n}-000000-abcdef", model_version=version, stage=STAGE, started=f"2026-01-0{n}")


# --- configuration ---------------------------------------------------------------------------------
def test_defaults_follow_the_terraform_names(monkeypatch) -> None:
    aws_env(monkeypatch)
    cfg = AwsConfig.from_env("production")
    assert cfg.model_package_group == "catdog-production-models"
    assert cfg.endpoint_name == "catdog-production-classifier"
    assert cfg.function_name == "catdog-production-classify-api"
    assert (cfg.function_alias, cfg.stage_name, cfg.variant_name) == ("live", "production", "AllTraffic")
    assert cfg.release_table == "catdog-production-releases"
    assert cfg.rest_api_name == "catdog-production-api"
    assert cfg.alarm_names == tuple(f"catdog-production-endpoint-{k}" for k in ("5xx", "latency"))
    assert (cfg.endpoint_mode, cfg.region) == ("serverless", REGION)


def test_environment_overrides(monkeypatch) -> None:
    aws_env(monkeypatch)
    monkeypatch.setenv("REGISTRY_ENVIRONMENT", "staging")
    monkeypatch.setenv("ENDPOINT_ALARM_NAMES", '["a-1", "a-2"]')
    monkeypatch.setenv("ENDPOINT_MODE", "instance")
    monkeypatch.setenv("ENDPOINT_INSTANCE_COUNT", "2")
    cfg = AwsConfig.from_env("production")
    assert cfg.model_package_group == "catdog-staging-models"  # production reads staging's registry
    assert cfg.alarm_names == ("a-1", "a-2")
    assert (cfg.endpoint_mode, cfg.instance_count, cfg.bake_seconds) == ("instance", 2, 300)
    monkeypatch.setenv("ENDPOINT_ALARM_NAMES", "x, y")
    assert AwsConfig.from_env("staging").alarm_names == ("x", "y")
    for name, value in (("ENDPOINT_MODE", "gpu"), ("ENDPOINT_MEMORY_MB", "lots"), ("ENDPOINT_MEMORY_MB", "512")):
        monkeypatch.setenv(name, value)
        with pytest.raises(BackendError, match=name):
            AwsConfig.from_env("staging")
        monkeypatch.delenv(name)
    with pytest.raises(BackendError, match="choose one of staging, production"):
        AwsConfig.from_env("local")


def test_terraform_outputs_are_read_and_the_environment_wins(monkeypatch, tmp_path) -> None:
    outputs = {
        "environment": "production",
        "aws_region": "us-west-2",
        "function_name": "fn-from-terraform",
        "rest_api_id": "abc123",
        "api_url": "https://abc123.execute-api.us-west-2.amazonaws.com/production",
        "endpoint_alarm_names": ["alarm-a", "alarm-b"],
        "sagemaker_role_arn": "arn:aws:iam::111122223333:role/catdog-production-sagemaker",
        "api_key_id": "key123",
        "model_package_group_name": "catdog-staging-models",
        "registration_signing_key": "alias/catdog-staging-registration-signing",
    }
    (tmp_path / "production.json").write_text(
        json.dumps({k: {"sensitive": False, "type": "string", "value": v} for k, v in outputs.items()})
    )
    aws_env(monkeypatch, str(tmp_path))
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("FUNCTION_NAME", "fn-from-env")
    cfg = AwsConfig.from_env("production")
    assert (cfg.region, cfg.function_name, cfg.rest_api_id) == ("us-west-2", "fn-from-env", "abc123")
    assert cfg.alarm_names == ("alarm-a", "alarm-b") and cfg.api_key_id == "key123"
    assert cfg.api_url.endswith("/production") and cfg.role_arn.endswith("catdog-production-sagemaker")
    assert cfg.model_package_group == "catdog-staging-models"
    assert cfg.signing_key == "alias/catdog-staging-registration-signing"  # production verifies the registry's
    (tmp_path / "staging.json").write_text(json.dumps({"environment": {"value": "production"}}))
    with pytest.raises(BackendError, match="outputs of production, not staging"):
        AwsConfig.from_env("staging")


def test_a_session_exports_the_api_key_for_the_smoke_tests(stack: Stack, monkeypatch) -> None:
    apigw = stack.client("apigateway")
    key = apigw.create_api_key(name=f"{PREFIX}-clients", enabled=True, value="s3cret-key-value-20c")
    monkeypatch.setenv("API_KEY_ID", key["id"])
    backend = new_backend(STAGE)
    with backend.session():
        assert os.environ["API_KEY"] == "s3cret-key-value-20c"
    assert "API_KEY" not in os.environ
    monkeypatch.setenv("API_KEY", "given")
    with backend.session():
        assert os.environ["API_KEY"] == "given"


def test_resource_names_fit_sagemaker_limits() -> None:
    name = resource_name("catdog-production-classifier", "v123", "r20260101-120000-abcdef")
    assert len(name) <= 63 and name.startswith("catdog-production-classifier-v123")
    long = resource_name("x" * 70, "v1", "r1")
    assert len(long) == 63 and long != resource_name("x" * 70, "v2", "r1")


# --- registry --------------------------------------------------------------------------------------
def test_registry_versions_accuracy_and_approval(stack: Stack) -> None:
    backend = stack.backend
    versions = backend.list_versions()
    assert [v.version for v in versions] == ["1", "2"]
    assert versions[0].accuracy == pytest.approx(0.95)
    assert versions[1].accuracy is None  # no evaluation report: tolerated
    assert versions[0].status == "PendingManualApproval"
    assert versions[0].artifact_uri.endswith("/models/v1/model.tar.gz")
    assert (versions[0].git_sha, versions[0].run_id) == ("sha1", "run1")

    approved = backend.set_approval("1", "Approved", "alice", "beats the baseline")
    assert (approved.status, approved.approved_by, approved.reason) == ("Approved", "alice", "beats the baseline")
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/1"
    desc = stack.client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert desc["ApprovalDescription"] == "alice: beats the baseline"
    assert backend.get_version("2").status == "PendingManualApproval"
    assert backend.set_approval("2", "Rejected", "bob", "too slow").status == "Rejected"

    with pytest.raises(BackendError, match="model version 9 not found"):
        backend.get_version("9")
    with pytest.raises(BackendError, match="unknown approval status"):
        backend.set_approval("1", "Maybe", "x", "y")
    assert backend.registry.container("1") == {"Image": IMAGE, "ModelDataUrl": versions[0].artifact_uri}
    add_model_version(backend, 0.99)
    assert [v.version for v in backend.list_versions()] == ["1", "2", "3"]


# --- function versions and alias -------------------------------------------------------------------
def test_publish_keeps_the_environment_checks_health_then_alias_moves(stack: Stack) -> None:
    backend, fn = stack.backend, stack.client("lambda")
    version = backend.publish_function(release(1, "1"))
    assert version == "2"
    env = fn.get_function_configuration(FunctionName=f"{PREFIX}-classify-api", Qualifier="2")["Environment"]
    assert env["Variables"] == {
        "ENDPOINT_NAME": f"{PREFIX}-classifier",
        "LOG_LEVEL": "INFO",
        "MODEL_RELEASE": "r20260101-000000-abcdef",
        "MODEL_VERSION": "1",
    }
    (call,) = stack.invocations.calls
    assert call["Qualifier"] == "2"
    event = call["event"]
    assert (event["httpMethod"], event["path"], event["requestContext"]["stage"]) == ("GET", "/health", STAGE)
    assert event["stageVariables"]["lambdaAlias"] == "live"
    assert backend.current_function_version() == "1"  # publishing never moves the alias
    backend.move_alias(version)
    assert backend.current_function_version() == "2"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((None, {"statusCode": 503, "body": "{}"}), "GET /health answered 503"),
        (("Unhandled", {"errorMessage": "KeyError: 'ENDPOINT_NAME'"}), "handler raised .*KeyError"),
    ],
)
def test_a_failing_pre_traffic_check_stops_before_the_alias(stack: Stack, answer, message) -> None:
    stack.invocations.respond = lambda event: answer
    with pytest.raises(BackendError, match=message):
        stack.backend.publish_function(release(1))
    assert stack.backend.current_function_version() == "1"


# --- API stage -------------------------------------------------------------------------------------
def test_stage_deployments_carry_and_restore_their_variables(stack: Stack) -> None:
    backend, apigw = stack.backend, stack.client("apigateway")
    first = backend.deploy_stage(release(1, "1"))
    stage = apigw.get_stage(restApiId=stack.rest_api_id, stageName=STAGE)
    assert stage["deploymentId"] == first == backend.current_deployment()
    assert stage["variables"] == {
        "lambdaAlias": "live",
        "release": "r20260101-000000-abcdef",
        "modelVersion": "1",
        "endpointName": f"{PREFIX}-classifier",
    }
    second = backend.deploy_stage(release(2, "2"))
    assert second != first
    assert apigw.get_stage(restApiId=stack.rest_api_id, stageName=STAGE)["variables"]["modelVersion"] == "2"

    backend.restore_stage(first)
    stage = apigw.get_stage(restApiId=stack.rest_api_id, stageName=STAGE)
    assert (stage["deploymentId"], stage["variables"]["modelVersion"]) == (first, "1")
    assert stage["variables"]["release"] == "r20260101-000000-abcdef"

    backend.restore_stage(stack.initial_deployment)  # made by Terraform: no variables recorded
    assert backend.current_deployment() == stack.initial_deployment


def test_api_url_from_the_rest_api_name_or_api_url(stack: Stack, monkeypatch) -> None:
    url = f"https://{stack.rest_api_id}.execute-api.{REGION}.amazonaws.com/{STAGE}"
    assert stack.backend.api_url() == url
    monkeypatch.setenv("API_URL", "https://api.example.org/staging/")
    assert new_backend(STAGE).api_url() == "https://api.example.org/staging"
    monkeypatch.setenv("REST_API_NAME", "missing-api")
    monkeypatch.delenv("API_URL")
    with pytest.raises(BackendError, match="no REST API named missing-api: set REST_API_ID"):
        new_backend(STAGE).api_url()


# --- records and lock ------------------------------------------------------------------------------
def test_releases_round_trip_in_order(stack: Stack, monkeypatch) -> None:
    backend = stack.backend
    assert backend.list_releases() == [] and backend.live_release() is None
    second, first = release(2, "2"), release(1, "1")
    second.smoke = {"passed": True, "p95_ms": 123.4, "checks": {"health": 200}}
    with pytest.raises(BackendError, match="records are written under the staging release lock"):
        backend.save_release(second)  # no record without the lock: nothing to fence it with
    with backend.lock("test"):
        for r in (second, first):
            r.status = "live" if r is second else "superseded"
            backend.save_release(r)
    assert [r.release_id for r in backend.list_releases()] == [first.release_id, second.release_id]
    assert backend.live_release() == second
    second.status = "rolled_back"
    with backend.lock("test"):
        backend.save_release(second)
    assert backend.live_release() is None
    monkeypatch.setenv("RELEASE_TABLE", f"{PREFIX}-releases")
    assert new_backend("production").list_releases() == []  # another stage's partition


def test_the_lock_is_exclusive_and_released(stack: Stack) -> None:
    one, other = stack.backend, new_backend(STAGE)
    with one.lock("promote by alice"):
        with pytest.raises(LockBusyError, match="held by promote by alice"), other.lock("promote by bob"):
            pass
        with pytest.raises(LockBusyError):
            one.lock("again").__enter__()
    with other.lock("promote by bob"):  # released: free again
        pass
    with pytest.raises(RuntimeError, match="boom"), one.lock("x"):
        raise RuntimeError("boom")
    with other.lock("after a failure"):  # released on error too
        pass


def test_a_lease_left_unrenewed_is_taken_over_and_not_released_by_its_old_owner(stack: Stack) -> None:
    stale, fresh = stack.backend, new_backend(STAGE)
    stale.records.lock_ttl_s = 1
    stale.records._beat = lambda lease, stop: None  # its runner was killed: nothing renews the lease
    held = stale.lock("crashed promotion")
    held.__enter__()
    fresh.records.poll_s = 0.1
    time.sleep(1.1)  # past its holder's deadline: carol watches it and it stays unchanged for its TTL
    with fresh.lock("rollback by carol"):  # taken over, judged on carol's own clock
        held.__exit__(None, None, None)  # the old owner's release must not free carol's lock
        with pytest.raises(LockBusyError, match="carol"), new_backend(STAGE).lock("dave"):
            pass
    item = stack.client("dynamodb").get_item(
        TableName=f"{PREFIX}-releases", Key={"pk": {"S": f"LOCK#{STAGE}"}, "sk": {"S": "LOCK"}}
    )
    assert "Item" not in item
