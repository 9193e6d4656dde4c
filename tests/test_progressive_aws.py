"""Canary and linear releases on the aws backend (moto), with clients sending requests throughout.

moto cannot run a function, so `AliasTraffic` stands in for API Gateway + Lambda on the client's
path, doing what the services do: the alias's weighted routing picks a version per request (at
random, by weight), the handler reaches the endpoint that the stage variable `endpointName` or
else the version's ENDPOINT_NAME names, and Lambda publishes the version's Invocations and Errors
with the ExecutedVersion dimension. The candidate fails for `mobile` clients only.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from aws_support import PREFIX, REGION, STAGE, Stack, approve_all, aws_env, make_stack
from moto import mock_aws
from test_aws_release import smoke

from mlops.release import PromotionFailed, PromotionRefused, promote, status
from mlops.release_traffic import TrafficPlan
from mlops.smoke import SmokeConfig

FUNCTION = f"{PREFIX}-classify-api"
TOLERANCE = 0.10  # Lambda's weighted routing is random per request: the share is binomial around the weight


class AliasTraffic(threading.Thread):
    """Client requests through the stage and alias `live`, as API Gateway and Lambda would route them."""

    def __init__(self, rest_api_id: str, failing_version: list[str]) -> None:
        super().__init__(daemon=True)
        self.rest_api_id = rest_api_id
        self.failing = failing_version  # filled in once the candidate's version is known
        self.rng = random.Random(7)
        self.served: list[dict] = []
        self._halt = threading.Event()

    def request(self, fn, apigw, sm, cw, mobile: bool) -> dict:
        alias = fn.get_alias(FunctionName=FUNCTION, Name="live")
        version = alias["FunctionVersion"]
        for v, weight in ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items():
            if self.rng.random() < weight:
                version = v
        env = fn.get_function_configuration(FunctionName=FUNCTION, Qualifier=version)["Environment"]["Variables"]
        stage_vars = apigw.get_stage(restApiId=self.rest_api_id, stageName=STAGE).get("variables") or {}
        endpoint = stage_vars.get("endpointName") or env["ENDPOINT_NAME"]
        config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        failed = mobile and version in self.failing
        dims = [
            {"Name": "FunctionName", "Value": FUNCTION},
            {"Name": "Resource", "Value": f"{FUNCTION}:live"},
            {"Name": "ExecutedVersion", "Value": version},
        ]
        data = [{"MetricName": "Invocations", "Dimensions": dims, "Value": 1.0, "Unit": "Count"}]
        data.append({"MetricName": "Errors", "Dimensions": dims, "Value": float(failed), "Unit": "Count"})
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
        return {
            "version": version,
            "function_model": env.get("MODEL_VERSION"),
            "served_model": re.search(r"-v(\d+)-r", config).group(1),
            "mobile": mobile,
            "status": 502 if failed else 200,
        }

    def run(self) -> None:
        clients = [boto3.client(s, region_name=REGION) for s in ("lambda", "apigateway", "sagemaker", "cloudwatch")]
        n = 0
        while not self._halt.is_set():
            n += 1
            self.served.append(self.request(*clients, mobile=n % 2 == 0))
            time.sleep(0.01)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


@pytest.fixture
def stack(monkeypatch) -> Iterator[Stack]:
    aws_env(monkeypatch)
    monkeypatch.setenv("MLOPS_BAKE_POLL_SECONDS", "0.5")
    with mock_aws():
        s = make_stack((0.95, 0.97))
        approve_all(s.backend)
        smoke(monkeypatch, *[True] * 4)
        promote(s.backend, "1", "alice", SmokeConfig(), log=lambda m: None)
        yield s


def run_with_traffic(stack: Stack, plan: TrafficPlan, failing: list[str]) -> tuple[AliasTraffic, Exception | None]:
    traffic = AliasTraffic(stack.rest_api_id, failing)
    traffic.start()
    time.sleep(0.3)
    error = None
    try:
        promote(stack.backend, "2", "bob", SmokeConfig(), log=print, plan=plan)
    except (PromotionFailed, PromotionRefused) as exc:
        error = exc
    time.sleep(0.3)
    traffic.stop()
    return traffic, error


def test_canary_of_a_failing_candidate_is_rolled_back_after_its_share_only(stack: Stack) -> None:
    backend = stack.backend
    before = (backend.current_endpoint_config(), backend.current_function_version(), backend.current_deployment())
    # Versions: 1 by Terraform, 2 = release 1; the candidate will be version 3.
    traffic, error = run_with_traffic(stack, TrafficPlan(strategy="canary", step_seconds=4), ["3"])
    assert isinstance(error, PromotionFailed) and "breach at 10 % (canary)" in str(error)
    assert "candidate function errors" in str(error)
    after = (backend.current_endpoint_config(), backend.current_function_version(), backend.current_deployment())
    assert after == before and status(backend)["drift"] == {}
    sm = stack.client("sagemaker")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [f"{PREFIX}-classifier"]
    published = stack.client("lambda").list_versions_by_function(FunctionName=FUNCTION)["Versions"]
    versions = {v["Version"] for v in published}
    assert "3" not in versions  # the candidate's function version is gone with its endpoint

    served = traffic.served
    assert all(r["status"] == 200 for r in served if not r["mobile"])  # the steady client never failed
    to_candidate = [r for r in served if r["version"] == "3"]
    assert to_candidate and len(to_candidate) / len(served) <= 0.10 + TOLERANCE, (len(to_candidate), len(served))
    # no mixed request: every version answered with its own model
    assert all(r["served_model"] == r["function_model"] for r in served if r["function_model"])
    assert {r["served_model"] for r in to_candidate} == {"2"}
    rec = next(r for r in backend.list_releases() if r.model_version == "2")
    assert rec.status == "rolled_back" and rec.traffic["steps"][0]["served"]["candidate"] > 0


def test_linear_release_of_a_good_candidate_reaches_all_traffic(stack: Stack) -> None:
    backend = stack.backend
    plan = TrafficPlan(strategy="linear", linear_step_percent=25, step_seconds=1.5)
    traffic, error = run_with_traffic(stack, plan, [])
    assert error is None
    live = status(backend)
    assert live["model_version"] == "2" and live["drift"] == {}
    final = live["lambda_version"]
    served = traffic.served
    assert all(r["status"] == 200 for r in served)
    assert served[-1]["version"] == final and served[-1]["served_model"] == "2"
    assert all(r["served_model"] == r["function_model"] for r in served if r["function_model"])
    rec = next(r for r in backend.list_releases() if r.model_version == "2")
    assert [s["percent"] for s in rec.traffic["steps"]] == [25, 50, 75]
    sm = stack.client("sagemaker")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [f"{PREFIX}-classifier"]
    alias = stack.client("lambda").get_alias(FunctionName=FUNCTION, Name="live")
    assert alias["FunctionVersion"] == final and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


def test_shadow_is_refused_on_aws_before_anything_moves(stack: Stack) -> None:
    backend = stack.backend
    before = backend.served()
    with pytest.raises(PromotionRefused, match="shadow testing is not available on the aws backend"):
        promote(backend, "2", "bob", SmokeConfig(), log=lambda m: None, plan=TrafficPlan(strategy="shadow"))
    assert backend.served() == before and [r.model_version for r in backend.list_releases()] == ["1"]
