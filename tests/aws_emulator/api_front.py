"""The public API of a REST stage: each request is routed by the emulator's own state, as API Gateway does.

`https://{api}.execute-api.{region}.amazonaws.com/{stage}/{path}` → the stage → its deployment →
the resource and method → (API key check: the key must be enabled and in a usage plan of this
stage) → the Lambda proxy integration URI with `${stageVariables.*}` filled from the stage → the
function version the alias routes this request to (its weights drawn per request: lambda_routing)
→ a real process running that version's handler. Responses:
the proxy result's statusCode/headers/body; a function error or malformed result is 502
{"message": "Internal server error"}; a missing key 403 {"message": "Forbidden"}; an unknown route
403 {"message": "Missing Authentication Token"} (API Gateway's answer to an unknown path).
Bodies that are not UTF-8 text reach the function base64-encoded (isBase64Encoded), as with the
binary media types the stack declares (which moto does not keep).
Each request also feeds CloudWatch's AWS/ApiGateway metrics (Count, 4XXError, 5XXError, Latency).
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from moto.apigateway.models import apigateway_backends
from moto.awslambda.models import lambda_backends
from moto.core import DEFAULT_ACCOUNT_ID

from aws_emulator import lambda_routing, metrics

FUNCTION_URI = re.compile(r"arn:[^:]+:apigateway:[^:]+:lambda:path/2015-03-31/functions/(?P<fn>.+)/invocations$")
STAGE_VAR = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")


def _reply(start_response: Any, status: int, body: bytes, headers: dict[str, str] | None = None) -> list[bytes]:
    out = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
    out.update(headers or {})
    out["Content-Length"] = str(len(body))
    start_response(f"{status} X", list(out.items()))
    return [body]


def _message(status: int, text: str, start_response: Any) -> list[bytes]:
    return _reply(start_response, status, json.dumps({"message": text}).encode())


def _match(api: Any, path: str, method: str) -> tuple[Any, Any, dict]:
    """(resource, method, path parameters) for the request, or (None, None, {})."""
    for resource in api.resources.values():
        pattern = re.sub(r"\\\{([^}+]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(resource.get_path()))
        pattern = re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", pattern)
        found = re.fullmatch(pattern, path)
        if found:
            chosen = resource.resource_methods.get(method) or resource.resource_methods.get("ANY")
            if chosen is not None:
                return resource, chosen, found.groupdict()
    return None, None, {}


def _key_allowed(backend: Any, api_id: str, stage: str, value: str) -> bool:
    keys = [k for k in backend.keys.values() if k.value == value and k.enabled]
    for plan in backend.usage_plans.values():
        if not any(s.get("apiId") == api_id and s.get("stage") == stage for s in plan.api_stages):
            continue
        plan_keys = backend.usage_plan_keys.get(plan.id, {})
        if any(k.id in plan_keys for k in keys):
            return True
    return False


def _event(environ: dict, api_id: str, stage: Any, deployment: str, resource: Any, params: dict, body: bytes) -> dict:
    headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    try:
        text, binary = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, binary = base64.b64encode(body).decode(), True
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"].split("/", 2)[-1]
    return {
        "resource": resource.get_path(),
        "path": "/" + path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": params or None,
        "stageVariables": dict(stage.variables) or None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "apiId": api_id,
            "stage": stage.name,
            "deploymentId": deployment,
            "resourceId": resource.id,
            "resourcePath": resource.get_path(),
            "httpMethod": method,
            "path": f"/{stage.name}/{path}",
            "identity": {"sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"), "userAgent": headers.get("User-Agent")},
        },
        "body": (text if body else None),
        "isBase64Encoded": binary,
    }


def _refused(why: str) -> None:
    print(f"aws-emulator: API Gateway answers 403: {why}", file=sys.stderr)


def handle_api_request(api_id: str, environ: dict, start_response: Any) -> list[bytes]:
    region = environ.get("HTTP_HOST", "").split(".")[2]
    backend = apigateway_backends[DEFAULT_ACCOUNT_ID][region]
    api = backend.apis.get(api_id)
    parts = environ.get("PATH_INFO", "/").split("/", 2)
    stage = api.stages.get(parts[1]) if api is not None and len(parts) > 1 else None
    if api is None or stage is None:
        _refused(f"no API {api_id} or no stage in {environ.get('PATH_INFO')}")
        return _message(403, "Forbidden", start_response)
    started = time.monotonic()
    status, out = _route(backend, api, stage, region, environ, start_response)
    metrics.api_request(region, api.name, stage.name, status, (time.monotonic() - started) * 1000)
    return out


def _route(backend: Any, api: Any, stage: Any, region: str, environ: dict, start_response: Any) -> tuple[int, list]:
    if stage.deployment_id not in api.deployments:
        return 500, _message(500, "Internal server error", start_response)
    path = "/" + (environ["PATH_INFO"].split("/", 2)[2] if environ["PATH_INFO"].count("/") >= 2 else "")
    resource, method, params = _match(api, path.rstrip("/") or "/", environ["REQUEST_METHOD"])
    if method is None or method.method_integration is None:
        _refused(f"no route for {environ['REQUEST_METHOD']} {path}")
        return 403, _message(403, "Missing Authentication Token", start_response)
    if method.api_key_required and not _key_allowed(backend, api.id, stage.name, environ.get("HTTP_X_API_KEY", "")):
        sent = "no x-api-key" if not environ.get("HTTP_X_API_KEY") else "the x-api-key sent is"
        _refused(f"{sent} not in a usage plan of {api.id}/{stage.name}")
        return 403, _message(403, "Forbidden", start_response)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    found = FUNCTION_URI.match(method.method_integration.uri or "")
    if method.method_integration.integration_type != "AWS_PROXY" or not found:
        return 500, _message(500, "Internal server error", start_response)
    target = STAGE_VAR.sub(lambda m: str(stage.variables.get(m.group(1), "")), found.group("fn"))
    name, _, qualifier = target.partition(":function:")[2].partition(":")
    functions = lambda_backends[DEFAULT_ACCOUNT_ID][region]
    try:
        functions.get_function(name, qualifier or None)
    except Exception:
        return 500, _message(500, "Internal server error", start_response)
    event = _event(environ, api.id, stage, stage.deployment_id, resource, params, body)
    payload, error, _ = lambda_routing.invoke(functions, region, name, qualifier, json.dumps(event).encode())
    try:
        result = json.loads(payload)
        status = int(result["statusCode"])
    except (ValueError, KeyError, TypeError):
        return 502, _message(502, "Internal server error", start_response)
    if error:
        return 502, _message(502, "Internal server error", start_response)
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return status, _reply(start_response, status, data, headers)


def create_deployment_keeps_stage(original: Any) -> Any:
    """RestAPI.create_deployment with a stage name points that stage at the new deployment (API Gateway
    keeps the stage's settings and merges the variables); moto 5.2.5 replaced the whole stage."""

    def create_deployment(self: Any, name: str, description: str, stage_variables: Any = None) -> Any:
        existing = self.stages.get(name) if name else None
        deployment = original(self, name, description, stage_variables)
        if existing is not None:
            existing.deployment_id = deployment.id
            existing.variables.update(stage_variables or {})
            self.stages[name] = existing
        return deployment

    return create_deployment
