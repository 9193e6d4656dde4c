"""Test helpers for the Lambda handler: API Gateway REST proxy events, a Lambda context, sample
images, handler settings and endpoint stand-ins (servers live in lambda_servers.py).

Deliberately free of Pillow at import time: the packaging test loads it with Pillow blocked."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KNOWN_RESOURCES = {"/predict", "/health"}


def data_dir() -> Path:
    """The cats-vs-dogs photos (tests/inputs.py; imported here, not at the top: the isolated handler
    runs import this module and count every module loaded)."""
    import inputs

    return inputs.data_dir()


def make_event(
    method: str = "POST",
    path: str = "/predict",
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    is_base64: bool = False,
    stage_variables: dict[str, str] | None = None,
    request_id: str | None = None,
    stage: str = "prod",
) -> dict[str, Any]:
    """An API Gateway REST API (v1 payload) Lambda proxy integration event."""
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode("ascii") if is_base64 else body.decode("utf-8")
    headers = {
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "pytest",
        **(headers or {}),
    }
    request_id = request_id or str(uuid.uuid4())
    resource = path if path in KNOWN_RESOURCES else "/{proxy+}"
    now = time.time()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None if resource == path else {"proxy": path.lstrip("/")},
        "stageVariables": stage_variables,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": "res123",
            "resourcePath": resource,
            "stage": stage,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest"},
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


@dataclass
class FakeContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "catdog-classify-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:catdog-classify-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/catdog-classify-api"
    log_stream_name: str = "2025/01/01/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def response_json(response: dict[str, Any]) -> dict[str, Any]:
    assert response["isBase64Encoded"] is False
    return json.loads(response["body"])


def header(response: dict[str, Any], name: str) -> str | None:
    """A response header from either `headers` or `multiValueHeaders` (case-insensitive)."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return ",".join(values)
    return None


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: str = "orange") -> bytes:
    from PIL import Image  # imported here so the packaging test can load this module without Pillow

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


MODEL_ANSWER = {
    "label": "cat",
    "confidence": 0.93,
    "scores": {"cat": 0.93, "dog": 0.07},
    "model_version": "v7",
}


# --- environment and endpoint stubs ------------------------------------------------------------

HANDLER_ENV = (
    "ENDPOINT_NAME",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "PREDICTION_TABLE",
    "ALLOW_HTTP_IMAGE_URLS",
    "IMAGE_URL_ALLOW_LOOPBACK",
    "IMAGE_URL_TIMEOUT_SECONDS",
    "IMAGE_URL_MAX_REDIRECTS",
    "AWS_LAMBDA_RUNTIME_API",
    "ENDPOINT_TIMEOUT_SECONDS",
    "ENDPOINT_MAX_ATTEMPTS",
)


def clean_handler_env(monkeypatch: Any, endpoint_name: str = "catdog-test") -> None:
    """Default handler settings, an endpoint name, and dummy credentials (never real AWS)."""
    for name in HANDLER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENDPOINT_NAME", endpoint_name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def model_body(answer: dict[str, Any] | None = None) -> Any:
    from botocore.response import StreamingBody

    data = json.dumps(answer or MODEL_ANSWER).encode()
    return StreamingBody(io.BytesIO(data), len(data))


class FakeRuntimeClient:
    """A stand-in sagemaker-runtime client answering instantly (measures handler overhead only)."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.payload = json.dumps(answer or MODEL_ANSWER).encode()
        self.calls: list[dict[str, Any]] = []

    def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return {"Body": io.BytesIO(self.payload), "ContentType": "application/json"}


@contextmanager
def stubbed_runtime() -> Iterator[Any]:
    """A botocore Stubber on a sagemaker-runtime client installed as the handler's client."""
    import boto3
    from botocore.stub import Stubber
    from classify_api import endpoint

    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        endpoint.set_client(client)
        try:
            yield stubber
        finally:
            endpoint.set_client(None)


def call(event: dict[str, Any]) -> dict[str, Any]:
    from classify_api import handler

    return handler.lambda_handler(event, FakeContext())


def post_image(data: bytes, content_type: str = "image/jpeg", **kw: Any) -> dict[str, Any]:
    return call(make_event(body=data, headers={"Content-Type": content_type}, is_base64=True, **kw))


def post_json(doc: Any, **kw: Any) -> dict[str, Any]:
    return call(make_event(body=json.dumps(doc), headers={"Content-Type": "application/json"}, **kw))


def expect_invoke(stub: Any, body: Any = None, content_type: str = "image/jpeg", name: str = "catdog-test") -> None:
    """Queue one successful invoke_endpoint answer; the call must carry exactly these parameters."""
    from botocore.stub import ANY

    params = {"EndpointName": name, "ContentType": content_type, "Accept": "application/json"}
    params["Body"] = ANY if body is None else body
    stub.add_response("invoke_endpoint", {"Body": model_body(), "ContentType": "application/json"}, params)
