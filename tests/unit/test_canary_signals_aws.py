"""A code-only canary whose candidate answers 502, on the aws backend (moto).

The handler answers every failure (a 502 here), so Lambda's Errors stays 0 and a code-only candidate,
sharing the live endpoint, has no endpoint metric of its own: only the function's per-version count
(EMF) shows it. `FunctionTraffic` stands in for API Gateway, Lambda and CloudWatch Logs on the client's
path: the alias's weights pick the version of each request, the real handler runs with the stage's
variables and the version's ENDPOINT_NAME, Lambda's metrics are published as Lambda publishes them
(Errors only when the handler raised), and the EMF lines the handler prints become metrics as
CloudWatch Logs extracts them (aws_emulator.emf). Also: the order in which a canary's first step moves
the stage's variables and the alias's weights.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from aws_emulator import emf
from aws_lambda_powertools.metrics import base as metrics_base
from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch as metrics_cloudwatch
from aws_support import Stack
from botocore.exceptions import ClientError
from classify_api import config as function_config
from classify_api import handler
from lambda_support import FakeContext, make_event
from test_progressive_aws import FUNCTION, HandlerTraffic, ModelEndpoints, routed_version, share_bound
from test_progressive_aws import stack as stack  # the fixture, re-exported for the tests here
from test_release_promises_aws import new_code

from mlops.backends import function_metrics
from mlops.release import PromotionFailed, promote, status
from mlops.release.traffic import TrafficPlan
from mlops.smoke import SmokeConfig

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


class BrokenModelCalls(ModelEndpoints):
    """The model's runtime as the faulty code reaches it: while `broken`, every call ends in a model error."""

    broken = False

    def invoke_endpoint(self, EndpointName: str, Body: bytes, **kw: Any) -> dict:
        if self.broken:
            error = {"Code": "ModelError", "Message": "Received server error (500) from primary"}
            raise ClientError({"Error": error, "OriginalStatusCode": 500}, "InvokeEndpoint")
        return super().invoke_endpoint(EndpointName, Body, **kw)


class FunctionTraffic(HandlerTraffic):
    """Clients through the alias's weighted routing into the real handler; `faulty` versions break every
    model call. Lambda's and the handler's own metrics reach CloudWatch as on AWS."""

    services = ("lambda", "apigateway", "cloudwatch")

    def __init__(self, stack: Stack, monkeypatch: pytest.MonkeyPatch, faulty: set[str]) -> None:
        super().__init__(stack, set(), monkeypatch)
        self.models.__class__ = BrokenModelCalls
        self.faulty, self.rng, self.printed = faulty, random.Random(11), []
        for module in (metrics_base, metrics_cloudwatch):  # where Powertools prints its EMF records
            monkeypatch.setattr(module, "print", lambda line, **_: self.printed.append(str(line)), raising=False)

    def request(self, fn: Any, apigw: Any, cw: Any, truth: str) -> dict:
        version = routed_version(fn, self.rng)
        env = fn.get_function_configuration(FunctionName=FUNCTION, Qualifier=version)["Environment"]["Variables"]
        variables = apigw.get_stage(restApiId=self.rest_api_id, stageName="staging").get("variables") or {}
        self._endpoint, self.models.broken = env["ENDPOINT_NAME"], version in self.faulty
        event = make_event(body=self.images[truth], headers={"Content-Type": "image/jpeg"}, is_base64=True,
                           stage_variables=variables)  # fmt: skip
        started, raised = time.perf_counter(), False
        try:
            status_code = handler.lambda_handler(event, FakeContext(function_name=FUNCTION, function_version=version))[
                "statusCode"
            ]
        except Exception:  # a function error: API Gateway answers 502 and Lambda counts it
            status_code, raised = 502, True
        dims = [{"Name": "FunctionName", "Value": FUNCTION}, {"Name": "Resource", "Value": f"{FUNCTION}:live"}]
        dims.append({"Name": "ExecutedVersion", "Value": version})
        lambda_data = {"Invocations": 1.0, "Errors": float(raised), "Duration": (time.perf_counter() - started) * 1e3}
        data = [{"MetricName": n, "Dimensions": dims, "Value": v} for n, v in lambda_data.items()]
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
        printed, self.printed[:] = list(self.printed), []
        for namespace, name, found, value in (p for line in printed for p in emf.points(line)):
            dimensions = [{"Name": k, "Value": v} for k, v in found.items()]
            cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": name, "Dimensions": dimensions,
                                                                 "Value": value}])  # fmt: skip
        return {"version": version, "status": status_code}


def test_a_code_only_canary_whose_candidate_answers_502_is_rolled_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = stack.backend
    before = (backend.current_endpoint_config(), backend.current_function_version(), backend.current_deployment())
    new_code(stack, "a handler change that breaks every model call")
    traffic = FunctionTraffic(stack, monkeypatch, faulty={"3"})  # 1 by Terraform, 2 = release 1, 3 the candidate
    traffic.start()
    time.sleep(0.3)
    with pytest.raises(PromotionFailed) as failed:
        promote(backend, "1", "bob", SmokeConfig(), log=print, plan=TrafficPlan(strategy="canary", step_seconds=4))
    time.sleep(0.3)
    traffic.stop()
    assert "breach at 10 % (canary)" in str(failed.value) and "candidate 5xx answers" in str(failed.value)
    assert "candidate function errors" not in str(failed.value)  # Lambda's Errors stayed 0, as on AWS
    after = (backend.current_endpoint_config(), backend.current_function_version(), backend.current_deployment())
    assert after == before and status(backend)["drift"] == {}
    rec = next(r for r in backend.list_releases() if r.status != "live")
    assert rec.status == "rolled_back" and rec.model_version == "1" and rec.traffic["steps"][0]["served"]["candidate"]

    answers = traffic.answers
    assert {a["status"] for a in answers if a["version"] == "3"} == {502}  # the candidate failed every request
    assert {a["status"] for a in answers if a["version"] != "3"} == {200}  # the live release never did
    to_candidate = sum(a["version"] == "3" for a in answers)
    assert 0 < to_candidate / len(answers) <= share_bound(0.10, len(answers)), (to_candidate, len(answers))
    assert answers[-1]["version"] == "2" and answers[-1]["status"] == 200  # the live release keeps serving


def test_the_canary_reads_the_names_the_function_writes() -> None:
    assert function_metrics.NAMESPACE == function_config.METRICS_NAMESPACE  # their defaults, as infra sets them
    assert function_metrics.SERVICE == function_config.SERVICE_NAME
    assert function_metrics.VERSION_DIMENSIONS == function_config.VERSION_DIMENSIONS
    assert function_metrics.SERVER_ERRORS == function_config.SERVER_ERRORS_METRIC
    assert function_metrics.MODEL_ERRORS == function_config.MODEL_ERRORS_METRIC


def test_the_function_on_aws_writes_under_those_names() -> None:
    """The release reads the namespace and service infra/lambda.tf gives the function, not another."""
    import re
    from pathlib import Path

    terraform = (Path(__file__).resolve().parents[2] / "infra" / "lambda.tf").read_text()
    found = dict(re.findall(r'(POWERTOOLS_SERVICE_NAME|POWERTOOLS_METRICS_NAMESPACE)\s*=\s*"([^"]+)"', terraform))
    assert found == {
        "POWERTOOLS_SERVICE_NAME": function_metrics.SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": function_metrics.NAMESPACE,
    }


def test_the_stage_stops_naming_the_live_endpoint_before_the_candidate_gets_a_request(stack: Stack) -> None:
    """API Gateway's `endpointName` wins over a version's ENDPOINT_NAME: were the weights moved first, the
    candidate's first requests would be answered by the live model (a canary measuring the wrong one)."""
    calls: list[tuple[str, Any]] = []

    def record(model: Any, params: dict, **_: Any) -> None:
        calls.append((model.name, params))

    for service in ("lambda", "apigateway"):
        stack.backend.clients.get(service).meta.events.register("provide-client-params.*.*", record)
    promote(stack.backend, "2", "bob", SmokeConfig(), log=lambda m: None, plan=TrafficPlan("canary", step_seconds=1))
    weighted = next(
        i
        for i, (name, params) in enumerate(calls)
        if name == "UpdateAlias" and params.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    )
    cleared = [
        i
        for i, (name, params) in enumerate(calls)
        if name == "UpdateStage"
        and {"op": "remove", "path": "/variables/endpointName"} in params.get("patchOperations", [])
    ]
    assert cleared and cleared[0] < weighted, (cleared, weighted)
