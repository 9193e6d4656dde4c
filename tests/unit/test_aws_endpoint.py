"""The endpoint switch with botocore's Stubber (moto has no UpdateEndpoint): request shapes, waits, failures."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from aws_support import PREFIX, REGION, aws_env
from botocore.stub import ANY, Stubber

from mlops.backends.aws.config import AwsClients, AwsConfig
from mlops.backends.aws.endpoint import EndpointHost
from mlops.backends.base import BackendError

ENDPOINT = f"{PREFIX}-classifier"
ROLE = f"arn:aws:iam::123456789012:role/{PREFIX}-sagemaker"
CONTAINER = {"Image": "img:1", "ModelDataUrl": "s3://bucket/models/v2/model.tar.gz"}
OLD = f"{ENDPOINT}-v1-r20260101-000000-aaaaaa"
NEW = f"{ENDPOINT}-v2-r20260102-000000-bbbbbb"
ALARMS = [{"AlarmName": f"{PREFIX}-endpoint-{k}"} for k in ("5xx", "latency")]
NOW = datetime(2026, 1, 2, tzinfo=UTC)
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}"


class Alarms:
    """CloudWatch's DescribeAlarms for the endpoint alarms, in the states a test sets (OK by default)."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def get_paginator(self, name: str) -> Alarms:
        assert name == "describe_alarms"
        return self

    def paginate(self, AlarmNames: list[str], AlarmTypes: list[str]) -> Iterator[dict]:
        yield {"MetricAlarms": [{"AlarmName": n, "StateValue": self.states.get(n, "OK")} for n in AlarmNames]}


@pytest.fixture
def stubbed(monkeypatch) -> Iterator[tuple[Stubber, callable]]:
    """A Stubber on a SageMaker client, and a factory for an EndpointHost using it (its alarms: host.alarms)."""
    aws_env(monkeypatch)
    sm = boto3.client("sagemaker", region_name=REGION)
    alarms = Alarms()
    with Stubber(sm) as stub:

        def host(**env: str) -> EndpointHost:
            for k, v in env.items():
                monkeypatch.setenv(k, v)
            clients = AwsClients(REGION)
            clients.set("sagemaker", sm)
            clients.set("cloudwatch", alarms)
            ticks = itertools.count(step=10)
            return EndpointHost(
                clients, AwsConfig.from_env("staging"), lambda: ROLE, sleep=lambda s: None, clock=lambda: next(ticks)
            )

        host.alarms = alarms  # type: ignore[attr-defined]
        yield stub, host
        stub.assert_no_pending_responses()


def described(status: str, config: str, reason: str | None = None) -> dict:
    out = {
        "EndpointName": ENDPOINT,
        "EndpointArn": ENDPOINT_ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    if reason:
        out["FailureReason"] = reason
    return out


def expect_describe(stub: Stubber, *states: tuple) -> None:
    for state in states:
        stub.add_response("describe_endpoint", described(*state), {"EndpointName": ENDPOINT})


def expect_missing(stub: Stubber) -> None:
    stub.add_client_error(
        "describe_endpoint",
        "ValidationException",
        f'Could not find endpoint "arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}".',
        400,
        expected_params={"EndpointName": ENDPOINT},
    )


def expect_model_and_config(stub: Stubber, variant: dict) -> None:
    stub.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:{REGION}:123456789012:model/{NEW}"},
        {
            "ModelName": NEW,
            "PrimaryContainer": {
                **CONTAINER,
                "Environment": {"MODEL_VERSION": "2", "MODEL_RELEASE": "r20260102-000000-bbbbbb"},
            },
            "ExecutionRoleArn": ROLE,
            "Tags": ANY,
        },
    )
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint-config/{NEW}"},
        {
            "EndpointConfigName": NEW,
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": NEW, **variant}],
            "Tags": ANY,
        },
    )


SERVERLESS = {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
INSTANCE = {"InstanceType": "ml.c6i.large", "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}


def deploy(host: EndpointHost) -> str:
    return host.deploy(CONTAINER, "2", "r20260102-000000-bbbbbb")


def test_the_first_release_creates_the_endpoint(stubbed) -> None:
    stub, host = stubbed
    expect_missing(stub)
    expect_model_and_config(stub, SERVERLESS)
    stub.add_response(
        "create_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": NEW, "Tags": ANY},
    )
    expect_describe(stub, ("Creating", NEW), ("InService", NEW))
    assert deploy(host()) == NEW


def test_an_instance_endpoint_updates_blue_green_with_auto_rollback_alarms(stubbed) -> None:
    stub, host = stubbed
    expect_describe(stub, ("InService", OLD))
    expect_model_and_config(stub, INSTANCE)
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600},
            "TerminationWaitInSeconds": 120,
            "MaximumExecutionTimeoutInSeconds": 1800,
        },
        "AutoRollbackConfiguration": {"Alarms": ALARMS},
    }
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": NEW, "DeploymentConfig": deployment},
    )
    expect_describe(stub, ("Updating", OLD), ("Updating", NEW), ("InService", NEW))
    assert (
        deploy(host(ENDPOINT_MODE="instance", ENDPOINT_BAKE_SECONDS="600", ENDPOINT_TERMINATION_WAIT_SECONDS="120"))
        == NEW
    )


def serverless_update(stub: Stubber, alarms: list[dict]) -> None:
    """A serverless endpoint's update: blue/green, all at once, no baking, these auto-rollback alarms."""
    expect_describe(stub, ("InService", OLD))
    expect_model_and_config(stub, SERVERLESS)
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "MaximumExecutionTimeoutInSeconds": 1800,
        },
        "AutoRollbackConfiguration": {"Alarms": alarms},
    }
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": NEW, "DeploymentConfig": deployment},
    )
    expect_describe(stub, ("InService", NEW))


def test_a_serverless_endpoint_shifts_all_at_once_without_baking(stubbed) -> None:
    stub, host = stubbed
    serverless_update(stub, ALARMS)
    assert deploy(host()) == NEW


def test_an_alarm_already_firing_is_left_out_of_the_updates_auto_rollback(stubbed) -> None:
    """The failure: an update released to fix an incident was undone by SageMaker because the incident's
    alarm was in ALARM. That alarm is left to the bake (judged on the release's own datapoints)."""
    stub, host = stubbed
    host.alarms.states[f"{PREFIX}-endpoint-5xx"] = "ALARM"
    serverless_update(stub, [{"AlarmName": f"{PREFIX}-endpoint-latency"}])
    assert deploy(host()) == NEW


def test_an_update_rolled_back_by_an_alarm_fails_and_names_the_old_config(stubbed) -> None:
    stub, host = stubbed
    expect_describe(stub, ("InService", OLD))
    expect_model_and_config(stub, SERVERLESS)
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": NEW, "DeploymentConfig": ANY},
    )
    reason = f"Auto rollback triggered by alarm {PREFIX}-endpoint-5xx"
    expect_describe(stub, ("Updating", OLD), ("RollingBack", OLD), ("InService", OLD, reason))
    with pytest.raises(BackendError, match=f"did not switch to {NEW}: {reason}; the endpoint stays on {OLD}"):
        deploy(host())


def test_a_failed_creation_raises_and_the_failed_endpoint_is_replaced_next_time(stubbed) -> None:
    stub, host = stubbed
    expect_missing(stub)
    expect_model_and_config(stub, SERVERLESS)
    stub.add_response(
        "create_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": NEW, "Tags": ANY},
    )
    expect_describe(
        stub, ("Creating", NEW), ("Failed", NEW, "The primary container did not pass the ping health check")
    )
    with pytest.raises(BackendError, match="did not pass the ping health check"):
        deploy(host())

    expect_describe(stub, ("Failed", NEW, "ping"))
    expect_model_and_config(stub, SERVERLESS)
    stub.add_response("delete_endpoint", {}, {"EndpointName": ENDPOINT})
    expect_describe(stub, ("Deleting", NEW))
    expect_missing(stub)
    stub.add_response(
        "create_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": NEW, "Tags": ANY},
    )
    expect_describe(stub, ("InService", NEW))
    assert deploy(host()) == NEW


def test_a_busy_endpoint_is_left_alone(stubbed) -> None:
    stub, host = stubbed
    expect_describe(stub, ("Updating", OLD))
    with pytest.raises(BackendError, match="is Updating: wait until it settles"):
        deploy(host())


def test_waiting_is_bounded(stubbed) -> None:
    stub, host = stubbed
    expect_describe(stub, ("InService", OLD))
    expect_model_and_config(stub, SERVERLESS)
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": NEW, "DeploymentConfig": ANY},
    )
    expect_describe(stub, ("Updating", OLD), ("Updating", OLD))  # the clock moves 10 s per reading
    with pytest.raises(BackendError, match="still Updating after 15 s"):
        deploy(host(ENDPOINT_WAIT_SECONDS="15"))


def test_restore_switches_back_without_alarms_and_waits(stubbed) -> None:
    stub, host = stubbed
    expect_describe(stub, ("InService", NEW))
    stub.add_response(
        "update_endpoint", {"EndpointArn": ENDPOINT_ARN}, {"EndpointName": ENDPOINT, "EndpointConfigName": OLD}
    )
    expect_describe(stub, ("Updating", NEW), ("InService", OLD))
    h = host()
    h.restore(OLD)

    expect_describe(stub, ("InService", OLD))  # already there: nothing to do
    h.restore(OLD)

    expect_describe(stub, ("InService", OLD))
    assert h.current_config() == OLD
    expect_missing(stub)
    assert h.current_config() == ""
