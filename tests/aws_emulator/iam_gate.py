"""Every request to the emulator authorized as the principal that signed it, as IAM would.

The caller is the access key of the request's SigV4 signature: the administrator's key (the
emulator's default credentials, what an operator and the bootstrap use) is allowed everything; any
other key must belong to a role session that STS issued (AssumeRoleWithWebIdentity for GitHub's
OIDC tokens, checked against the role's trust policy, or a service's session of an execution role),
and its request is evaluated with the role's identity policies and its permissions boundary
(iam_policy) on the action and resource ARNs the service authorizes it as (iam_catalog), with the
condition keys of iam_conditions. A refused call gets the service's own AccessDenied error, naming
the caller, the action and the resource. Every decision is appended to `iam-decisions.jsonl` in
the emulator's folder; AWS_EMULATOR_IAM=audit records refusals without refusing (to survey a flow).
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aws_emulator import iam_catalog, iam_conditions, iam_policy, iam_s3
from aws_emulator.iam_principals import ADMIN_KEYS, Principal, check_web_identity, principal_for_key, role_documents


def mode() -> str:
    """enforce (refuse what IAM would refuse) or audit (record it only)."""
    return os.environ.get("AWS_EMULATOR_IAM", "audit")


CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
RPC_V2 = re.compile(r"^/service/[^/]+/operation/([A-Za-z0-9]+)$")
_log_lock = threading.Lock()


class Denied(Exception):
    def __init__(self, message: str, action: str, resource: str) -> None:
        super().__init__(message)
        self.action, self.resource = action, resource


def _log(record: dict[str, Any]) -> None:
    from aws_emulator import context

    path = Path(context.emulator().workdir) / "iam-decisions.jsonl"
    with _log_lock, path.open("a") as out:
        out.write(json.dumps(record, default=str) + "\n")


def service_name(signing: str, path: str) -> str:
    if signing == "sagemaker" and re.match(r"^/endpoints/[^/]+/invocations", path):
        return "sagemaker-runtime"
    return {"monitoring": "cloudwatch"}.get(signing, signing)


def parse(service: str, environ: dict[str, Any], body: bytes) -> tuple[str, dict[str, Any]]:
    """The operation name and its parameters, parsed as moto parses them."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import Request, determine_request_protocol
    from moto.core.routing import get_service_router
    from moto.core.utils import get_service_model

    rpc = RPC_V2.match(environ.get("PATH_INFO", ""))
    if rpc:
        return rpc.group(1), _cbor_params(body)
    request = Request(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
    operation, uri_params = get_service_router(service).match(request)
    model = get_service_model(service)
    protocol = determine_request_protocol(model, request.content_type)
    parser = PROTOCOL_PARSERS[protocol](operation, map_type=dict)
    values = request.values
    parsed = parser.parse(
        {"method": request.method, "values": values, "headers": request.headers, "body": body,
         "url_path": request.path, "url_params": uri_params}
    )  # fmt: skip
    return operation.name, dict(parsed)


def _cbor_params(body: bytes) -> dict[str, Any]:
    try:
        import cbor2

        return dict(cbor2.loads(body)) if body else {}
    except Exception:
        return {}


def authorize(
    principal: Principal, service: str, operation: str, params: dict[str, Any], secure: bool,
    actions: list[str] | None = None,
) -> None:  # fmt: skip
    """Raise Denied unless the principal may make this call (and every call it makes on the caller's behalf)."""
    prefix = iam_catalog.prefix_of(service)
    if actions is None:
        actions = [params["__method__"]] if prefix == "apigateway" else iam_catalog.actions_for(service, operation)
    for action in actions:
        resources = iam_conditions.resources(prefix, action, operation, params, principal)
        context = iam_conditions.context(prefix, action, operation, params, principal, secure, resources)
        check(principal, f"{prefix}:{action}", resources, context)
    for action, resources, context in iam_conditions.implied(service, operation, params, principal, secure):
        check(principal, action, resources, context)


def check(principal: Principal, action: str, resources: list[str], context: dict[str, list[str]]) -> None:
    request = iam_policy.Request(action, resources, context, principal.arn)
    identity, boundary = role_documents(principal)
    decision = iam_policy.decide(request, identity, boundary, iam_conditions.resource_policies(resources))
    record = {"principal": principal.arn, "action": action, "resources": resources, "allowed": decision.allowed,
              "t": time.time()}  # fmt: skip
    if not decision.allowed:
        record.update(reason=decision.reason, context=context)
    _log(record)
    if not decision.allowed:
        message = (
            f"User: {principal.arn} is not authorized to perform: {action} on resource: "
            f"{decision.resource} because {decision.reason}"
        )
        if mode() == "enforce":
            raise Denied(message, action, decision.resource)


def middleware(app: Callable) -> Callable:
    """WSGI: authorize each signed request before moto (or a gap filler) carries it out."""

    def gate(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        found = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION") or "")
        if not found and environ.get("REQUEST_METHOD") == "POST":
            refused = _web_identity(environ, start_response)
            if refused is not None:
                return refused
        if not found or found.group(1) in ADMIN_KEYS:
            return app(environ, start_response)
        key, signing = found.group(1), found.group(3)
        body = _read_body(environ)
        service = service_name(signing, environ.get("PATH_INFO", ""))
        principal = principal_for_key(key, environ.get("HTTP_X_AMZ_SECURITY_TOKEN", ""))
        if principal is None:
            return _error(
                service,
                start_response,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        actions = None
        try:
            if service == "s3":
                operation, actions, params = iam_s3.classify(
                    environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""),
                    {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")},
                )  # fmt: skip
            else:
                operation, params = parse(service, environ, body)
        except Exception as exc:
            _log({"principal": principal.arn, "service": service, "unparsed": f"{type(exc).__name__}: {exc}"})
            return _error(
                service, start_response, "AccessDenied", f"the emulator cannot authorize this {service} request"
            )
        environ["wsgi.input"] = io.BytesIO(body)
        params.update(__method__=environ.get("REQUEST_METHOD", ""), __path__=environ.get("PATH_INFO", ""))
        try:
            authorize(principal, service, operation, params, environ.get("wsgi.url_scheme") == "https", actions)
        except Denied as denied:
            return _error(service, start_response, "AccessDenied", str(denied))
        except LookupError as exc:
            _log({"principal": principal.arn, "service": service, "operation": operation, "unmapped": str(exc)})
            return _error(service, start_response, "AccessDenied", str(exc))
        return app(environ, start_response)

    return gate


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body (chunked or not), put back for whoever reads it next."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        body = environ["wsgi.input"].read(length)
    elif environ.get("wsgi.input_terminated"):
        body = environ["wsgi.input"].read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _web_identity(environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    """STS AssumeRoleWithWebIdentity (unsigned): refused unless the token and the trust policy allow it."""
    from urllib.parse import parse_qs

    body = _read_body(environ)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if form.get("Action") != "AssumeRoleWithWebIdentity":
        return None
    try:
        check_web_identity(form.get("RoleArn", ""), form.get("WebIdentityToken", ""))
    except ValueError as exc:
        _log({"principal": "web identity", "action": "sts:AssumeRoleWithWebIdentity", "role": form.get("RoleArn"),
              "allowed": False, "reason": str(exc)})  # fmt: skip
        return _error("sts", start_response, "AccessDenied", str(exc))
    _log({"principal": "web identity", "action": "sts:AssumeRoleWithWebIdentity", "role": form.get("RoleArn"),
          "allowed": True})  # fmt: skip
    return None


def _error(service: str, start_response: Callable, code: str, message: str) -> list[bytes]:
    """AWS's error shape for the service's protocol (what boto3 and Terraform parse)."""
    from moto.core.utils import get_service_model

    protocol = get_service_model(service).protocol
    exception = "AccessDeniedException" if code == "AccessDenied" else code
    if service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message></Error>"
        headers = [("Content-Type", "application/xml")]
    elif protocol in ("query", "rest-xml"):
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
                "</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")  # fmt: skip
        headers = [("Content-Type", "text/xml")]
    else:
        body = json.dumps({"__type": exception, "message": message, "Message": message})
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", exception)]
    data = body.encode()
    start_response("403 Forbidden", [*headers, ("Content-Length", str(len(data)))])
    return [data]


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def refusals_since(workdir: Path, since: float) -> list[str]:
    """One line per distinct refusal recorded after `since` (time.time()): who, what, on which resource."""
    path = workdir / "iam-decisions.jsonl"
    lines: list[str] = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        record = json.loads(line)
        if record.get("allowed") is False and record.get("t", 0) >= since:
            who = (
                str(record.get("principal", "")).split("/")[-2]
                if "/" in str(record.get("principal"))
                else record.get("principal")
            )
            text = f"AccessDenied: {who} may not {record['action']} on {', '.join(record.get('resources') or ['*'])}"
            if text not in lines:
                lines.append(text)
    return lines
