"""Canary, linear and shadow releases on the aws backend (moto), with clients sending requests throughout.

moto cannot run a function, so `AliasTraffic` stands in for API Gateway + Lambda on the client's
path, doing what the services do: the alias's weighted routing picks a version per request (at
random, by weight), the handler reaches the endpoint that the stage variable `endpointName` or
else the version's ENDPOINT_NAME names, and Lambda publishes the version's Invocations and Errors
with the ExecutedVersion dimension. The candidate's handler raises for `mobile` clients only: a function
error, which Lambda counts in Errors and API Gateway answers with 502 (a failure the handler answers
itself leaves Errors at 0: test_canary_signals_aws).

For shadow, `HandlerTraffic` runs the real handler (classify_api.handler) on the client's path,
with the stage's variables in the event, the version's ENDPOINT_NAME, SageMaker runtime answered
from the endpoint's config in moto, and the handler's log lines shipped to the function's log group
in moto's CloudWatch Logs, which the release reads back.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_support import PREFIX, REGION, STAGE, Stack, approve_all, aws_env, make_stack
from classify_api import endpoint, handler, shadow
from lambda_support import FakeContext, image_bytes, make_event
from moto import mock_aws
from test_aws_release import smoke
from test_release_promises_aws import new_code

from mlops.backends.aws import front as aws_front
from mlops.backends.aws import shadow as aws_shadow
from mlops.release import PromotionFailed, PromotionRefused, promote, status
from mlops.release.traffic import ShadowRefused, TrafficPlan
from mlops.smoke import SmokeConfig

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

FUNCTION = f"{PREFIX}-classify-api"


def share_bound(weight: float, requests: int) -> float:
    """The most a weighted alias sends to its candidate, but once in ~30,000 runs: Lambda draws each request's
    version at random, so the share is binomial around the weight (4 standard deviations above it)."""
    return weight + 4 * (weight * (1 - weight) / max(requests, 1)) ** 0.5


def routed_version(fn: Any, rng: random.Random) -> str:
    """The version alias `live` sends one invocation to, drawn by its weights as Lambda does."""
    alias = fn.get_alias(FunctionName=FUNCTION, Name="live")
    version = alias["FunctionVersion"]
    for v, weight in ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items():
        if rng.random() < weight:
            version = v
    return str(version)


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
        version = routed_version(fn, self.rng)
        env = fn.get_function_configuration(FunctionName=FUNCTION, Qualifier=version)["Environment"]["Variables"]
        stage_vars = apigw.get_stage(restApiId=self.rest_api_id, stageName=STAGE).get("variables") or {}
        endpoint = stage_vars.get("endpointName") or env["ENDPOINT_NAME"]
        config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        failed = mobile and version in self.failing  # the handler raised: a function error
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


def run_with_traffic(
    stack: Stack, plan: TrafficPlan, failing: list[str], traffic: threading.Thread | None = None
) -> tuple[threading.Thread, Exception | None]:
    traffic = traffic or AliasTraffic(stack.rest_api_id, failing)
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


class RoutedModels:
    """After each call of the release that moves requests (alias, stage, endpoint), every version the alias
    routes to must reach an endpoint serving its own model: API Gateway's `endpointName` wins over the
    version's ENDPOINT_NAME, so a stale one sends a candidate's requests to the live model."""

    CALLS = ("after-call.lambda.UpdateAlias", "after-call.apigateway.*", "after-call.sagemaker.UpdateEndpoint")

    def __init__(self, stack: Stack) -> None:
        self.rest_api_id, self.mixed, self.checks = stack.rest_api_id, [], 0
        self.fn, self.sm, self.apigw = (
            boto3.client(s, region_name=REGION) for s in ("lambda", "sagemaker", "apigateway")
        )
        for service in ("lambda", "apigateway", "sagemaker"):
            for event in self.CALLS:
                stack.backend.clients.get(service).meta.events.register(event, self.check)

    def check(self, **_: Any) -> None:
        fn, sm = self.fn, self.sm
        alias = fn.get_alias(FunctionName=FUNCTION, Name="live")
        routed = {alias["FunctionVersion"], *((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})}
        stage = self.apigw.get_stage(restApiId=self.rest_api_id, stageName=STAGE)
        override = (stage.get("variables") or {}).get("endpointName")
        for version in routed:
            env = fn.get_function_configuration(FunctionName=FUNCTION, Qualifier=version)["Environment"]["Variables"]
            reached = override or env["ENDPOINT_NAME"]
            config = sm.describe_endpoint(EndpointName=reached)["EndpointConfigName"]
            served = re.search(r"-v(\d+)-r", config).group(1)
            if env.get("MODEL_VERSION") and served != env["MODEL_VERSION"]:
                self.mixed.append(f"version {version} (model {env['MODEL_VERSION']}) reaches {reached}: model {served}")
        self.checks += 1


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
    assert to_candidate and len(to_candidate) / len(served) <= share_bound(0.10, len(served)), (
        len(to_candidate),
        len(served),
    )
    # no mixed request: every version answered with its own model
    assert all(r["served_model"] == r["function_model"] for r in served if r["function_model"])
    assert {r["served_model"] for r in to_candidate} == {"2"}
    rec = next(r for r in backend.list_releases() if r.model_version == "2")
    assert rec.status == "rolled_back" and rec.traffic["steps"][0]["served"]["candidate"] > 0


def test_linear_release_of_a_good_candidate_reaches_all_traffic(stack: Stack) -> None:
    backend = stack.backend
    routed = RoutedModels(stack)
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
    assert routed.checks >= 5 and routed.mixed == []  # at no step did a version reach another model


# --- shadow: the real handler on the client's path ----------------------------------------------------

LOG_GROUP = f"/aws/lambda/{FUNCTION}"  # infra/logs.tf
OTHER = {"cat": "dog", "dog": "cat"}


class ModelEndpoints:
    """SageMaker runtime for the handler: an endpoint answers with the model version of its config, the
    photo's true label, or the other one from a labels-swapped model. Every call is recorded."""

    def __init__(self, truth: dict[bytes, str], swapped: set[str]) -> None:
        self.sm = boto3.client("sagemaker", region_name=REGION)
        self.truth, self.swapped = truth, swapped
        self.calls: list[dict] = []
        self._lock = threading.Lock()

    def invoke_endpoint(self, EndpointName: str, Body: bytes, **_: Any) -> dict:
        with self._lock:
            config = self.sm.describe_endpoint(EndpointName=EndpointName)["EndpointConfigName"]
        model = re.search(r"-v(\d+)-r", config).group(1)
        label = OTHER[self.truth[Body]] if model in self.swapped else self.truth[Body]
        self.calls.append({"endpoint": EndpointName, "model": model, "label": label})
        doc = {"label": label, "confidence": 0.9, "scores": {label: 0.9, OTHER[label]: 0.1}, "model_version": model}
        return {"Body": io.BytesIO(json.dumps(doc).encode())}


class LogLines(logging.Handler):
    """The function's log output, formatted as it writes it; shipped to its log group after each request."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(handler.logger.registered_formatter)
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append({"timestamp": int(record.created * 1000), "message": self.format(record)})


class HandlerTraffic(threading.Thread):
    """Clients through the stage and alias `live` into the real handler, as API Gateway and Lambda deliver
    them: the alias picks the version, the event carries the stage's variables, the handler runs with the
    version's ENDPOINT_NAME, and its log lines go to the function's log group (one stream per version)."""

    def __init__(self, stack: Stack, swapped: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(daemon=True)
        self.rest_api_id = stack.rest_api_id
        self.images = {"cat": image_bytes("JPEG", color="orange"), "dog": image_bytes("JPEG", color="gray")}
        self.models = ModelEndpoints({data: label for label, data in self.images.items()}, swapped)
        self.answers: list[dict] = []
        self._halt = threading.Event()
        self._endpoint = ""  # the invoked version's ENDPOINT_NAME, as Lambda sets it per version
        monkeypatch.setattr(endpoint, "_client", self.models)
        monkeypatch.setattr(shadow, "_client", self.models)
        real = handler.load_settings
        monkeypatch.setattr(handler, "load_settings", lambda: dataclasses.replace(real(), endpoint_name=self._endpoint))
        self.log = LogLines()
        logging.getLogger(handler.logger.name).addHandler(self.log)
        stack.client("logs").create_log_group(logGroupName=LOG_GROUP)

    def request(self, fn: Any, apigw: Any, logs: Any, truth: str) -> dict:
        version = fn.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"]
        env = fn.get_function_configuration(FunctionName=FUNCTION, Qualifier=version)["Environment"]["Variables"]
        variables = apigw.get_stage(restApiId=self.rest_api_id, stageName=STAGE).get("variables") or {}
        self._endpoint = env["ENDPOINT_NAME"]
        headers = {"Content-Type": "image/jpeg"}
        event = make_event(body=self.images[truth], headers=headers, is_base64=True, stage_variables=variables)
        response = handler.lambda_handler(event, FakeContext(function_name=FUNCTION, function_version=version))
        lines, self.log.lines = self.log.lines, []
        stream = f"2025/01/01/[{version}]{threading.get_ident()}"
        if stream not in {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]}:
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        if lines:
            logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=lines)
        doc = json.loads(response["body"])
        return {
            "status": response["statusCode"],
            "truth": truth,
            "label": doc.get("label"),
            "model": doc.get("model_version"),
            "function_model": env.get("MODEL_VERSION"),
        }

    services = ("lambda", "apigateway", "logs")  # the clients `request` takes, after the truth

    def run(self) -> None:
        clients = [boto3.client(s, region_name=REGION) for s in self.services]
        n = 0
        while not self._halt.is_set():
            n += 1
            self.answers.append(self.request(*clients, truth="cat" if n % 2 else "dog"))
            time.sleep(0.01)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)
        logging.getLogger(handler.logger.name).removeHandler(self.log)


# The window ends as soon as 15 mirrored requests are compared; its bound only matters on a starved machine
# (a unit run beside rehearsals once compared fewer than 15 in 30 s).
SHADOW = TrafficPlan(strategy="shadow", shadow_min_requests=15, shadow_seconds=90)


def test_shadow_refuses_a_labels_swapped_candidate_and_no_client_sees_its_answers(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = stack.backend
    before = backend.served()
    traffic = HandlerTraffic(stack, {"2"}, monkeypatch)
    _, error = run_with_traffic(stack, SHADOW, [], traffic)
    assert isinstance(error, ShadowRefused) and "shadow test refused version 2" in str(error)
    assert "agreement 0.000 below 0.970" in str(error)
    assert "shadow comparison: agreement 0.000 over" in capsys.readouterr().out  # printed
    rec = next(r for r in backend.list_releases() if r.model_version == "2")
    result = rec.traffic["shadow"]
    assert rec.status == "refused" and result["passed"] is False and result["agreement"] == 0.0
    assert result["compared"] >= 15 and result["candidate_errors"] == 0
    assert (
        set(result["confusion"]) == {"cat→dog", "dog→cat"} and sum(result["confusion"].values()) == result["compared"]
    )
    assert result["live_p95_ms"] >= 0 and result["candidate_p95_ms"] >= 0

    # nothing moved: the stage serves what it served; the mirror and the candidate are gone
    assert backend.served() == before and status(backend)["drift"] == {}
    variables = stack.client("apigateway").get_stage(restApiId=stack.rest_api_id, stageName=STAGE)["variables"]
    assert "shadowEndpoint" not in variables and variables["endpointName"] == f"{PREFIX}-classifier"
    sm = stack.client("sagemaker")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [f"{PREFIX}-classifier"]
    assert not [c for c in sm.list_endpoint_configs()["EndpointConfigs"] if "-v2-" in c["EndpointConfigName"]]
    versions = stack.client("lambda").list_versions_by_function(FunctionName=FUNCTION)["Versions"]
    assert "3" not in {v["Version"] for v in versions}  # the candidate's function version is gone

    # the candidate was asked (with swapped answers) and no client ever received one of its answers
    mirrored = [c for c in traffic.models.calls if c["endpoint"] == f"{PREFIX}-classifier-candidate"]
    assert len(mirrored) >= 15 and {c["model"] for c in mirrored} == {"2"}
    answers = traffic.answers
    assert answers and all(a["status"] == 200 for a in answers)
    assert all(a["model"] == "1" and a["label"] == a["truth"] for a in answers)


def test_shadow_passes_a_good_candidate_which_is_then_promoted(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = stack.backend
    traffic = HandlerTraffic(stack, set(), monkeypatch)
    routed = RoutedModels(stack)
    _, error = run_with_traffic(stack, SHADOW, [], traffic)
    assert error is None
    assert routed.checks >= 3 and routed.mixed == []  # the switch to the candidate never mixed models
    live = status(backend)
    assert live["model_version"] == "2" and live["drift"] == {}
    rec = next(r for r in backend.list_releases() if r.model_version == "2")
    result = rec.traffic["shadow"]
    assert rec.status == "live" and rec.strategy == "shadow" and result["passed"] is True
    assert result["agreement"] == 1.0 and result["compared"] >= 15 and result["candidate_errors"] == 0
    assert result["confusion"].keys() <= {"cat→cat", "dog→dog"}
    variables = stack.client("apigateway").get_stage(restApiId=stack.rest_api_id, stageName=STAGE)["variables"]
    assert "shadowEndpoint" not in variables
    sm = stack.client("sagemaker")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [f"{PREFIX}-classifier"]
    answers = traffic.answers
    assert all(a["status"] == 200 and a["label"] == a["truth"] for a in answers)
    assert all(a["model"] == a["function_model"] for a in answers if a["function_model"])  # no mixed request
    assert answers[-1]["model"] == "2"


def test_shadow_refuses_a_code_only_release_before_anything_moves(stack: Stack) -> None:
    backend = stack.backend
    before = backend.served()

    def versions() -> list[str]:
        return [
            v["Version"] for v in stack.client("lambda").list_versions_by_function(FunctionName=FUNCTION)["Versions"]
        ]

    published = versions()
    new_code(stack, "handler fix")
    with pytest.raises(ShadowRefused, match=r"compares models, and model version 1 is already live \(a code-only"):
        promote(backend, "1", "bob", SmokeConfig(), log=lambda m: None, plan=TrafficPlan(strategy="shadow"))
    assert backend.served() == before
    assert versions() == published  # no candidate version was published
    assert sorted((r.model_version, r.status) for r in backend.list_releases()) == [("1", "live"), ("1", "refused")]


def test_the_handler_and_the_release_agree_on_the_names(stack: Stack) -> None:
    """The stage variable, the candidate endpoint's name and the record's message, written on both sides."""
    assert aws_front.SHADOW_VARIABLE == shadow.VARIABLE
    assert stack.backend.candidate_host.name == f"{stack.backend.cfg.endpoint_name}{shadow.SUFFIX}"
    assert aws_shadow.RECORD == shadow.RECORD
