"""What the rehearsal asserts between steps, read from the emulator's state and through the public API."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from aws_emulator import lambda_routing, metrics
from aws_emulator.iam_principals import github_token
from aws_emulator.server import NETSHIM
from botocore.exceptions import ClientError

CLIENT = """
import json, sys, urllib3
url, key, photo = sys.argv[1:4]
r = urllib3.PoolManager(retries=False).request(
    "POST", url + "/predict", body=open(photo, "rb").read(), headers={"x-api-key": key, "Content-Type": "image/jpeg"}
)
print(json.dumps({"status": r.status, "body": r.data.decode()}))
"""


TRAFFIC = """
import collections, json, os, sys, threading, time, urllib3
url, key, photo, stop = sys.argv[1:5]
body, pool = open(photo, "rb").read(), urllib3.PoolManager(retries=False)
deadline, seen = time.monotonic() + 1800, [collections.Counter() for _ in range(2)]

def client(mine):
    while not os.path.exists(stop) and time.monotonic() < deadline:
        r = pool.request("POST", url + "/predict", body=body, headers={"x-api-key": key, "Content-Type": "image/jpeg"})
        answer = json.loads(r.data) if r.data.startswith(b"{") else {}
        mine[f"{r.status} version {answer.get('model_version', '-')}"] += 1
        time.sleep(0.05)

clients = [threading.Thread(target=client, args=(mine,)) for mine in seen]
[c.start() for c in clients]
[c.join() for c in clients]
print(json.dumps(sum(seen, collections.Counter())))
"""


@contextlib.contextmanager
def client_traffic(emu: Any, workspace: Path, stage: str, photo: Path) -> Iterator[dict[str, int]]:
    """Clients (two at once) sending POST /predict through the stage's public API until the block ends; the
    dict it yields is then filled with how many answers of each status and model version they got."""
    out = outputs(workspace, stage)
    key = emu.client("apigateway").get_api_key(apiKey=out["api_key_id"], includeValue=True)["value"]
    env = {**os.environ, **emu.env(), "PYTHONPATH": str(NETSHIM)}
    stop = workspace / "build" / f"traffic-{stage}.stop"
    stop.unlink(missing_ok=True)
    args = [sys.executable, "-c", TRAFFIC, out["api_url"], key, str(photo), str(stop)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[str, int] = {}
    try:
        yield seen
    finally:
        stop.touch()
        stdout, stderr = proc.communicate(timeout=120)
        if proc.returncode:
            raise AssertionError(f"the client failed: {stderr.strip()[-300:]}")
        seen.update(json.loads(stdout))


def outputs(workspace: Path, stage: str) -> dict[str, Any]:
    raw = json.loads((workspace / "build" / "infra" / f"{stage}.json").read_text())
    return {k: v["value"] for k, v in raw.items()}


def served(emu: Any, workspace: Path, stage: str, photo: Path) -> dict[str, str]:
    """The model version each layer serves: the alias's function version, the endpoint, the public API."""
    out = outputs(workspace, stage)
    fn, sm, gw = emu.client("lambda"), emu.client("sagemaker"), emu.client("apigateway")
    alias = fn.get_alias(FunctionName=out["function_name"], Name=out["function_alias"])
    conf = fn.get_function_configuration(FunctionName=out["function_name"], Qualifier=alias["FunctionVersion"])
    endpoint = sm.describe_endpoint(EndpointName=out["endpoint_name"])
    model = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])["ProductionVariants"][0]
    container = sm.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]
    key = gw.get_api_key(apiKey=out["api_key_id"], includeValue=True)["value"]
    env = {**os.environ, **emu.env(), "PYTHONPATH": str(NETSHIM)}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, out["api_url"], key, str(photo)],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    answer = json.loads(done.stdout)
    body = json.loads(answer["body"]) if answer["body"].startswith("{") else {}
    return {
        "function": str(conf.get("Environment", {}).get("Variables", {}).get("MODEL_VERSION", "")),
        "endpoint": str(container.get("Environment", {}).get("MODEL_VERSION", "")),
        "endpoint_status": endpoint["EndpointStatus"],
        "api": str(body.get("model_version", f"HTTP {answer['status']}")),
    }


def expect_serving(emu: Any, workspace: Path, stage: str, version: str, photo: Path) -> str:
    seen = served(emu, workspace, stage, photo)
    wanted = {"function": version, "endpoint": version, "endpoint_status": "InService", "api": version}
    if seen != wanted:
        raise AssertionError(f"{stage} should serve version {version} everywhere: {seen}")
    live = [r for r in _releases(emu, outputs(workspace, stage), stage) if r.get("status") == "live"]
    baked = (live[-1].get("bake") or {}) if live else {}
    if not baked or baked.get("requests", 0) < max(1, baked.get("min_requests", 0)):
        raise AssertionError(f"{stage}: the live release's bake judged too few requests: {baked}")
    return (
        f"{stage}: alias, endpoint and public API all on version {version}; its bake judged {baked['requests']} "
        f"requests ({baked.get('synthetic_requests', 0)} synthetic)"
    )


def _github_client(emu: Any, repository: str, role: str, environment: str, workflow: str, service: str) -> Any:
    """A client signing as the GitHub role a job of `workflow` in `environment` assumes."""
    ca, region = str(emu.tls_files.ca), emu.region
    token = github_token(
        repository, f"environment:{environment}", f"{repository}/.github/workflows/{workflow}@refs/heads/main"
    )
    sts = boto3.client("sts", region_name=region, endpoint_url=emu.url, verify=ca,
                       aws_access_key_id="unused", aws_secret_access_key="unused")  # fmt: skip
    got = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="insider", WebIdentityToken=token)
    keys = {
        "AccessKeyId": "aws_access_key_id",
        "SecretAccessKey": "aws_secret_access_key",
        "SessionToken": "aws_session_token",
    }
    creds = {arg: got["Credentials"][field] for field, arg in keys.items()}
    return boto3.client(service, region_name=region, endpoint_url=emu.url, verify=ca, **creds)


def _denied(name: str, what: str, call: Callable[[], Any]) -> None:
    try:
        call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("AccessDenied", "AccessDeniedException"):
            raise
    else:
        raise AssertionError(f"{name} {what}")


def own_model(emu: Any, workspace: Path, repository: str) -> str:
    """Production's endpoint serves the copy its release made in production's bucket; the roles that write
    the registry's models (the staging deploy role, the pipeline role) cannot replace that copy, and the
    staging deploy role cannot record a qualification in production's release table."""
    out, sm = outputs(workspace, "production"), emu.client("sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=out["endpoint_name"])["EndpointConfigName"]
    )
    url = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]["ModelDataUrl"]
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if bucket != out["artifact_bucket"] or not key.startswith("released/"):
        raise AssertionError(
            f"production's endpoint reads {url}, not a copy in its own bucket {out['artifact_bucket']}"
        )
    account, staging_role = bucket.rsplit("-", 1)[-1], "catdog-github-deploy-staging"
    arn = f"arn:aws:iam::{account}:role/{staging_role}"
    staging = {s: _github_client(emu, repository, arn, "staging", "deploy.yml", s) for s in ("s3", "dynamodb")}
    pipeline = emu.client_as(f"arn:aws:iam::{account}:role/catdog-staging-pipeline", "sagemaker.amazonaws.com", "s3")
    for name, s3 in ((staging_role, staging["s3"]), ("catdog-staging-pipeline", pipeline)):
        _denied(name, f"replaced {url}", lambda s3=s3: s3.put_object(Bucket=bucket, Key=key, Body=b"forged weights"))
    forged = {"pk": {"S": "QUALIFIED#production"}, "sk": {"S": "RELEASE#forged"}, "data": {"S": "{}"}}
    table = out["release_table"]
    _denied(staging_role, f"wrote a qualification into {table}",
            lambda: staging["dynamodb"].put_item(TableName=table, Item=forged))  # fmt: skip
    return (
        f"production reads {url}; the staging deploy role and the pipeline role may not write it, nor the staging "
        f"deploy role production's qualifications (AccessDenied)"
    )


def _releases(emu: Any, out: dict[str, Any], stage: str) -> list[dict]:
    items = emu.client("dynamodb").query(
        TableName=out["release_table"], KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"STAGE#{stage}"}},
    )["Items"]  # fmt: skip
    return sorted((json.loads(i["data"]["S"]) for i in items), key=lambda r: r.get("started", ""))


def _unlikely(hits: int, total: int, weight: float) -> bool:
    """Whether `hits` of `total` draws at `weight` is out of what chance gives 9,999 times in 10,000."""
    p = [math.comb(total, k) * weight**k * (1 - weight) ** (total - k) for k in range(total + 1)]
    return sum(p[: hits + 1]) < 5e-5 or sum(p[hits:]) < 5e-5


def traffic_split(emu: Any, workspace: Path, stage: str, since: float, seen: dict[str, int]) -> str:
    """How many requests each function version answered while the stage's alias split them (the emulator's
    record of what ran), beside what the release read from CloudWatch; fails when the alias never split the
    clients' requests or not as its weights say, a client got an error, or the release gave a verdict
    before CloudWatch could show its requests."""
    out = outputs(workspace, stage)
    split = lambda_routing.shares(lambda_routing.executions(out["function_name"], since))
    releases = _releases(emu, out, stage)
    release = releases[-1] if releases else {}
    previous = next((r for r in releases if r["release_id"] == release.get("previous_release_id")), {})
    models = {previous.get("lambda_version"): previous.get("model_version")}
    models[release.get("candidate", {}).get("function_version")] = release.get("model_version")
    errors = {k: n for k, n in seen.items() if not k.startswith("200 ")}
    if not split or errors:
        raise AssertionError(f"{stage}: the alias split {split or 'nothing'}; the clients got {seen}")
    said = []
    for weights, counts in split:
        (candidate, weight), total = next(iter(weights.items())), sum(counts.values())
        others = ", ".join(f"version {v} (model {models.get(v, '?')}) {n}" for v, n in counts.items() if v != candidate)
        said.append(
            f"{weight:.0%} to function version {candidate} (model {models.get(candidate, '?')}): "
            f"it answered {counts[candidate]} of {total}, {others}"
        )
        if _unlikely(counts[candidate], total, weight):
            raise AssertionError(f"{stage} {release.get('strategy')}: not the alias's weight: {said[-1]}")
    names = out["endpoint_alarm_names"] + out["release_alarm_names"]
    lag = metrics.signal_lag(max(metrics.alarm_windows(emu.region, names).values()))
    steps = release.get("traffic", {}).get("steps", [])
    baked = release.get("bake") or {}
    watched = [s["seconds"] for s in steps] + ([baked.get("lag_seconds", 0)] if baked else [])
    if min(watched) < lag - 0.01:
        raise AssertionError(f"{stage}: a verdict after {min(watched):g} s, before CloudWatch's lag of {lag:g} s")
    read = ", ".join(f"{s['served'].get('candidate', 0)} of {sum(s['served'].values())}" for s in steps)
    clients = ", ".join(f"{k} {n}" for k, n in sorted(seen.items()))
    return (
        f"{release.get('strategy')} ({release.get('status')}): {'; '.join(said)} (the release read {read} from "
        f"CloudWatch; every verdict waited for its {lag:g} s lag; clients: {clients})"
    )


def leftovers(emu: Any, keep_buckets: set[str]) -> dict[str, list[str]]:
    """Everything the stack or releases created that still exists."""
    s3, fn, gw, sm = (emu.client(s) for s in ("s3", "lambda", "apigateway", "sagemaker"))
    ddb, cw, logs = emu.client("dynamodb"), emu.client("cloudwatch"), emu.client("logs")
    found = {
        "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] not in keep_buckets],
        "functions": [f["FunctionName"] for f in fn.list_functions()["Functions"]],
        "rest_apis": [a["name"] for a in gw.get_rest_apis()["items"]],
        "tables": ddb.list_tables()["TableNames"],
        "alarms": [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]],
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "endpoint_configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "model_package_groups": [
            g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        ],
        "pipelines": [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]],
        "log_groups": [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]],
    }
    return {k: v for k, v in found.items() if v}


def snapshot(emu: Any) -> dict[str, Any]:
    """The emulator's state as a client sees it (for build/rehearsal/emulator-state.json)."""
    s3, fn, gw, sm = (emu.client(s) for s in ("s3", "lambda", "apigateway", "sagemaker"))
    state: dict[str, Any] = {"resources": leftovers(emu, set())}
    functions = {}
    for f in fn.list_functions()["Functions"]:
        name = f["FunctionName"]
        versions = fn.list_versions_by_function(FunctionName=name)["Versions"]
        functions[name] = {
            "aliases": {a["Name"]: a["FunctionVersion"] for a in fn.list_aliases(FunctionName=name)["Aliases"]},
            "versions": {v["Version"]: v.get("Environment", {}).get("Variables", {}) for v in versions},
        }
    state["functions"] = functions
    state["stages"] = {
        a["name"]: {s["stageName"]: {"deployment": s.get("deploymentId"), "variables": s.get("variables", {})}
                    for s in gw.get_stages(restApiId=a["id"])["item"]}
        for a in gw.get_rest_apis()["items"]
    }  # fmt: skip
    state["endpoints"] = [
        sm.describe_endpoint(EndpointName=e["EndpointName"]) for e in sm.list_endpoints()["Endpoints"]
    ]
    groups = [g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]]
    state["model_packages"] = {}
    for g in groups:
        listed = sm.list_model_packages(ModelPackageGroupName=g)["ModelPackageSummaryList"]
        state["model_packages"][g] = [(p["ModelPackageVersion"], p["ModelApprovalStatus"]) for p in listed]
    state["buckets"] = {
        b["Name"]: [o["Key"] for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])][:200]
        for b in s3.list_buckets()["Buckets"]
    }
    return state
