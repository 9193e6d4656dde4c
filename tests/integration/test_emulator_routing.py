"""Weighted aliases in the emulator: each invocation draws its version, and metrics and logs name the one that ran."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aws_emulator import Emulator, context, lambda_routing
from emulator_support import ACCOUNT, REGION, TRUST, create_function, function_zip, wait_until
from test_emulator_api import requests

pytestmark = pytest.mark.slow
FUNCTION = "weighted-fn"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A function with versions 1 (`first`) and 2 (`second`), alias `live` on 1, behind a REST stage."""
    emulator = Emulator(tmp_path_factory.mktemp("emulator-routing")).start()
    try:
        fn, gw = emulator.client("lambda"), emulator.client("apigateway")
        create_function(emulator, FUNCTION, "first")
        fn.publish_version(FunctionName=FUNCTION)
        fn.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": {"RELEASE": "second"}})
        fn.publish_version(FunctionName=FUNCTION)
        fn.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
        api = gw.create_rest_api(name="weighted-api")["id"]
        root = next(r["id"] for r in gw.get_resources(restApiId=api)["items"] if r["path"] == "/")
        res = gw.create_resource(restApiId=api, parentId=root, pathPart="health")["id"]
        gw.put_method(restApiId=api, resourceId=res, httpMethod="GET", authorizationType="NONE")
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}:live"
        uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations"
        gw.put_integration(restApiId=api, resourceId=res, httpMethod="GET", type="AWS_PROXY",
                           integrationHttpMethod="POST", uri=uri)  # fmt: skip
        gw.create_deployment(restApiId=api, stageName="prod")
        emulator.api_id = api  # type: ignore[attr-defined]
        yield emulator
    finally:
        emulator.stop()


def weigh(emu: Emulator, weights: dict[str, float]) -> None:
    emu.client("lambda").update_alias(
        FunctionName=FUNCTION, Name="live", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": weights}
    )


def test_invoke_of_a_weighted_alias_draws_the_version_per_invocation(emu: Emulator) -> None:
    weigh(emu, {"2": 0.3})
    fn, ran, said = emu.client("lambda"), Counter(), Counter()
    for _ in range(300):  # version 2's share: 90 ± 8 (one SD); the bounds below are ±4.4 SD
        resp = fn.invoke(FunctionName=FUNCTION, Qualifier="live", Payload=b"{}")
        ran[resp["ExecutedVersion"]] += 1
        said[json.loads(json.loads(resp["Payload"].read())["body"])["version"]] += 1
    print(f"300 invocations of live (version 2 weighted 0.3): {dict(ran)}")
    assert ran == said  # the header names the version whose code answered
    assert set(ran) == {"1", "2"} and 55 <= ran["2"] <= 125, ran
    recorded = Counter(e.version for e in lambda_routing.executions(FUNCTION) if e.weights == (("2", 0.3),))
    assert recorded == ran
    # A version qualifier, or an alias without weights, runs that version only.
    assert fn.invoke(FunctionName=FUNCTION, Qualifier="2", Payload=b"{}")["ExecutedVersion"] == "2"
    weigh(emu, {})
    assert {fn.invoke(FunctionName=f"{FUNCTION}:live", Payload=b"{}")["ExecutedVersion"] for _ in range(20)} == {"1"}


def test_the_public_api_routes_each_request_by_the_alias_weights(emu: Emulator) -> None:
    weigh(emu, {"2": 0.9})
    base = f"https://{emu.api_id}.execute-api.{REGION}.amazonaws.com/prod"  # type: ignore[attr-defined]
    answers = requests(emu, [("GET", f"{base}/health", {}, "")] * 200)
    versions = Counter(body["version"] for status, body in answers if status == 200)
    print(f"200 requests through the stage (version 2 weighted 0.9): {dict(versions)}")
    assert sum(versions.values()) == 200
    assert versions["1"] > 0 and 150 <= versions["2"] < 200, versions


def _sum(emu: Emulator, dims: dict[str, str], metric: str = "Invocations", namespace: str = "AWS/Lambda") -> float:
    cw = emu.client("cloudwatch")
    now = datetime.now(UTC)
    query = {"Namespace": namespace, "MetricName": metric,
             "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}  # fmt: skip
    found = cw.get_metric_data(
        MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": query, "Period": 60, "Stat": "Sum"}}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=1),
    )["MetricDataResults"][0]["Values"]  # fmt: skip
    return sum(found)


def test_metrics_and_log_streams_name_the_version_that_ran(emu: Emulator) -> None:
    weigh(emu, {"2": 0.5})
    fn = emu.client("lambda")
    ran = Counter(
        fn.invoke(FunctionName=FUNCTION, Qualifier="live", Payload=b"{}")["ExecutedVersion"] for _ in range(60)
    )
    assert set(ran) == {"1", "2"}
    recorded = Counter(e.version for e in lambda_routing.executions(FUNCTION) if e.qualifier == "live")
    alias = {"FunctionName": FUNCTION, "Resource": f"{FUNCTION}:live"}

    def seen() -> dict[str, float] | None:
        per = {v: _sum(emu, {**alias, "ExecutedVersion": v}) for v in recorded}
        return per if per == {v: float(n) for v, n in recorded.items()} else None

    per_version = wait_until(seen, timeout=10 + 5 * context.METRIC_DELAY, what="the invocations' metrics")
    print(f"Invocations of live by ExecutedVersion: {per_version}")
    assert _sum(emu, alias) == sum(recorded.values())
    streams = emu.client("logs").describe_log_streams(logGroupName=f"/aws/lambda/{FUNCTION}")["logStreams"]
    assert {s["logStreamName"].split("[")[1].split("]")[0] for s in streams} == {"1", "2"}


SLOW_INIT = """
import time

time.sleep(2)  # the module's import is a cold start's init


def handler(event, context):
    return {"statusCode": 200, "body": ""}
"""


def test_duration_is_the_handlers_time_without_the_cold_start(emu: Emulator) -> None:
    fn = emu.client("lambda")
    role = emu.client("iam").create_role(RoleName="slow-init-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    fn.create_function(FunctionName="slow-init-fn", Runtime="python3.12", Role=role, Handler="app.handler",
                       Code={"ZipFile": function_zip(SLOW_INIT)}, Timeout=10)  # fmt: skip
    version = fn.publish_version(FunctionName="slow-init-fn")["Version"]
    started = time.monotonic()
    fn.invoke(FunctionName="slow-init-fn", Qualifier=version, Payload=b"{}")
    assert time.monotonic() - started >= 2  # the caller waited for the init
    now, cw = datetime.now(UTC), emu.client("cloudwatch")
    dims = [{"Name": "FunctionName", "Value": "slow-init-fn"}, {"Name": "Resource", "Value": f"slow-init-fn:{version}"}]
    metric = {"Namespace": "AWS/Lambda", "MetricName": "Duration", "Dimensions": dims}

    def durations() -> list[float]:
        return cw.get_metric_data(
            MetricDataQueries=[{"Id": "d", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum"}}],
            StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5),
        )["MetricDataResults"][0]["Values"]  # fmt: skip

    longest = wait_until(durations, timeout=10 + 5 * context.METRIC_DELAY, what="the Duration datapoint")
    print(f"Duration {longest} ms for an invocation whose cold start took 2 s more")
    assert longest[0] < 1000


ANSWERS_502 = """
import json
import time


def handler(event, context):
    directive = {"Namespace": "Own", "Dimensions": [["FunctionVersion"]], "Metrics": [{"Name": "ServerErrors"}]}
    record = {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [directive]}}
    print(json.dumps({**record, "FunctionVersion": context.function_version, "ServerErrors": 1}))
    if event.get("raise"):
        raise RuntimeError("a function error")
    return {"statusCode": 502, "body": ""}
"""


def test_an_answered_502_is_no_function_error_and_the_functions_emf_lines_are_metrics(emu: Emulator) -> None:
    """Lambda's Errors counts a handler that raised, never a 5xx it answered; CloudWatch Logs turns the
    function's EMF lines into metrics: the only per-version sign of an answered failure."""
    fn = emu.client("lambda")
    role = emu.client("iam").create_role(RoleName="emf-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    fn.create_function(FunctionName="emf-fn", Runtime="python3.12", Role=role, Handler="app.handler",
                       Code={"ZipFile": function_zip(ANSWERS_502)}, Timeout=10)  # fmt: skip
    version = fn.publish_version(FunctionName="emf-fn")["Version"]
    for payload in (b"{}", b"{}", b'{"raise": true}'):
        fn.invoke(FunctionName="emf-fn", Qualifier=version, Payload=payload)
    dims = {"FunctionName": "emf-fn", "Resource": f"emf-fn:{version}"}

    def seen() -> tuple[float, float, float] | None:
        found = (
            _sum(emu, dims),
            _sum(emu, dims, "Errors"),
            _sum(emu, {"FunctionVersion": version}, "ServerErrors", "Own"),
        )
        return found if found[0] == 3 and found[2] == 3 else None

    _, errors, _ = wait_until(seen, timeout=10 + 5 * context.METRIC_DELAY, what="the metrics")
    assert errors == 1  # the raise only: both 502 answers are no function errors
