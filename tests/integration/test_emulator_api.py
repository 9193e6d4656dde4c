"""The emulated public API: a stage URL is routed by the emulator's state down to a real handler process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from aws_emulator import Emulator
from aws_emulator.server import NETSHIM
from emulator_support import ACCOUNT, REGION, create_function

pytestmark = pytest.mark.slow

CLIENT = """
import json, sys, urllib3
http = urllib3.PoolManager(retries=False)
out = []
for method, url, headers, body in json.loads(sys.argv[1]):
    r = http.request(method, url, headers=headers, body=body.encode("latin-1") if body else None)
    out.append([r.status, r.data.decode()])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, str, str]]:
    emu = Emulator(tmp_path_factory.mktemp("emulator-api")).start()
    try:
        fn, gw = emu.client("lambda"), emu.client("apigateway")
        create_function(emu, "api-fn", "first")
        fn.publish_version(FunctionName="api-fn")
        fn.update_function_configuration(FunctionName="api-fn", Environment={"Variables": {"RELEASE": "second"}})
        fn.publish_version(FunctionName="api-fn")
        fn.create_alias(FunctionName="api-fn", Name="live", FunctionVersion="1")
        fn.create_alias(FunctionName="api-fn", Name="canary", FunctionVersion="2")
        api_id = gw.create_rest_api(name="api")["id"]
        root = next(r["id"] for r in gw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:api-fn"
        target = f"2015-03-31/functions/{arn}:${{stageVariables.lambdaAlias}}/invocations"
        uri = f"arn:aws:apigateway:{REGION}:lambda:path/{target}"
        for path, method in (("health", "GET"), ("predict", "POST")):
            res = gw.create_resource(restApiId=api_id, parentId=root, pathPart=path)["id"]
            gw.put_method(
                restApiId=api_id, resourceId=res, httpMethod=method, authorizationType="NONE", apiKeyRequired=True
            )
            gw.put_integration(
                restApiId=api_id,
                resourceId=res,
                httpMethod=method,
                type="AWS_PROXY",
                integrationHttpMethod="POST",
                uri=uri,
            )
        gw.create_deployment(restApiId=api_id, stageName="staging", variables={"lambdaAlias": "live"})
        key = gw.create_api_key(name="clients", enabled=True)
        plan = gw.create_usage_plan(name="plan", apiStages=[{"apiId": api_id, "stage": "staging"}])
        gw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        yield emu, api_id, key["value"]
    finally:
        emu.stop()


def requests(emu: Emulator, calls: list[tuple[str, str, dict, str]]) -> list[tuple[int, dict]]:
    """Send the calls from another process, which resolves the stage host through the netshim."""
    env = {**os.environ, **emu.env(), "PYTHONPATH": str(NETSHIM)}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, json.dumps(calls)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [(status, json.loads(body) if body.startswith("{") else {}) for status, body in json.loads(done.stdout)]


def test_stage_routes_through_alias_to_the_version_handler(api: tuple[Emulator, str, str]) -> None:
    emu, api_id, key = api
    base = f"https://{api_id}.execute-api.{REGION}.amazonaws.com/staging"
    auth = {"x-api-key": key}
    results = requests(
        emu,
        [
            ("GET", f"{base}/health", {}, ""),
            ("GET", f"{base}/health", auth, ""),
            ("GET", f"{base}/nowhere", auth, ""),
            ("POST", f"{base}/predict", {**auth, "Content-Type": "image/jpeg"}, "\xff\xd8\xff binary"),
            ("GET", f"{base}/health?fail=1", auth, ""),
        ],
    )
    assert results[0] == (403, {"message": "Forbidden"})
    status, body = results[1]
    assert status == 200 and body["release"] == "first" and body["version"] == "1"
    assert body["stage_variables"] == {"lambdaAlias": "live"} and body["path"] == "/health"
    assert results[2] == (403, {"message": "Missing Authentication Token"})
    assert results[3][0] == 200 and results[3][1]["base64"] is True
    assert results[4] == (502, {"message": "Internal server error"})

    emu.client("lambda").update_alias(FunctionName="api-fn", Name="live", FunctionVersion="2")
    assert requests(emu, [("GET", f"{base}/health", auth, "")])[0][1]["release"] == "second"


def test_stage_updates_and_deployments_change_the_route(api: tuple[Emulator, str, str]) -> None:
    emu, api_id, key = api
    gw = emu.client("apigateway")
    base = f"https://{api_id}.execute-api.{REGION}.amazonaws.com/staging"
    emu.client("lambda").update_alias(FunctionName="api-fn", Name="live", FunctionVersion="1")
    deployment = gw.create_deployment(restApiId=api_id, description="release r2")["id"]
    gw.update_stage(
        restApiId=api_id,
        stageName="staging",
        patchOperations=[
            {"op": "replace", "path": "/deploymentId", "value": deployment},
            {"op": "replace", "path": "/variables/lambdaAlias", "value": "canary"},
        ],
    )
    stage = gw.get_stage(restApiId=api_id, stageName="staging")
    assert stage["deploymentId"] == deployment
    assert requests(emu, [("GET", f"{base}/health", {"x-api-key": key}, "")])[0][1]["release"] == "second"
    # A deployment made for the stage points it at the new deployment and keeps its variables.
    again = gw.create_deployment(restApiId=api_id, stageName="staging", description="again")["id"]
    stage = gw.get_stage(restApiId=api_id, stageName="staging")
    assert stage["deploymentId"] == again and stage["variables"] == {"lambdaAlias": "canary"}
