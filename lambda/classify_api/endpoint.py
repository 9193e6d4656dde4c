"""Call the SageMaker endpoint through one long-lived sagemaker-runtime client and map its failures.

The client is built once per container with short timeouts and few retries; locally boto3
reads AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME by itself. Failures become ApiError: the model
refusing the image -> 4xx, model or endpoint faults -> 502, throttling -> 503, timeouts -> 504.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from classify_api.config import env_float, env_int
from classify_api.errors import ApiError

ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
BUSY_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ModelNotReadyException",
    }
)
_ORIGINAL_STATUS_RE = re.compile(r"error \((\d{3})\)")

_client: BaseClient | None = None


def make_client() -> BaseClient:
    """A sagemaker-runtime client with the timeouts and retry budget from the environment."""
    read_timeout = env_float("ENDPOINT_TIMEOUT_SECONDS", 10.0)
    config = Config(
        connect_timeout=min(read_timeout, env_float("ENDPOINT_CONNECT_TIMEOUT_SECONDS", 2.0)),
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": env_int("ENDPOINT_MAX_ATTEMPTS", 2)},
        tcp_keepalive=True,
    )
    return boto3.client("sagemaker-runtime", config=config)


def get_client() -> BaseClient:
    global _client
    if _client is None:
        _client = make_client()
    return _client


def set_client(client: BaseClient | None) -> None:
    """Replace the shared client (None: build a fresh one from the environment on next use)."""
    global _client
    _client = client


def _model_message(raw: Any) -> str:
    text = str(raw or "").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:300] or "no message"
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])[:300]
    return text[:300]


def map_client_error(exc: ClientError) -> ApiError:
    """Translate a sagemaker-runtime ClientError into the answer the caller gets."""
    response: dict[str, Any] = exc.response
    code = response.get("Error", {}).get("Code", "")
    http_status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code == "ModelError":
        original = response.get("OriginalStatusCode")
        if original is None:
            found = _ORIGINAL_STATUS_RE.search(response.get("Error", {}).get("Message", ""))
            original = int(found.group(1)) if found else 0
        message = _model_message(response.get("OriginalMessage"))
        if 400 <= int(original) < 500:
            status = int(original) if int(original) in (413, 415) else 422
            return ApiError(status, f"model rejected the image: {message}", metric="ModelRejections")
        return ApiError(502, f"model failed (HTTP {original}): {message}", metric="ModelErrors")
    if code in BUSY_CODES or http_status in (429, 503):
        return ApiError(503, "model endpoint is busy or unavailable; retry later", metric="Throttles")
    return ApiError(502, f"model endpoint error ({code or http_status})", metric="EndpointErrors")


def _check_answer(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise ApiError(502, "model returned an answer that is not JSON", metric="ModelErrors") from exc
    ok = (
        isinstance(doc, dict)
        and isinstance(doc.get("label"), str)
        and isinstance(doc.get("confidence"), int | float)
        and math.isfinite(doc["confidence"])
        and isinstance(doc.get("scores"), dict)
        and all(isinstance(v, int | float) for v in doc["scores"].values())
    )
    if not ok:
        message = "model returned an answer without label, confidence and scores"
        raise ApiError(502, message, metric="ModelErrors")
    return {
        "label": doc["label"],
        "confidence": float(doc["confidence"]),
        "scores": {str(k): float(v) for k, v in doc["scores"].items()},
        "model_version": str(doc.get("model_version") or "unknown"),
    }


def invoke(
    endpoint_name: str, data: bytes, content_type: str, client: BaseClient | None = None
) -> tuple[dict[str, Any], float]:
    """Send the image to the endpoint (through `client`, default the shared one); return the model's
    answer and the call's latency in ms."""
    if not ENDPOINT_NAME_RE.match(endpoint_name):
        raise ApiError(500, "configured endpoint name is not a valid SageMaker endpoint name", "ConfigErrors")
    client = client or get_client()
    started = time.perf_counter()
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name, ContentType=content_type, Accept="application/json", Body=data
        )
        payload = response["Body"].read()
    except (ReadTimeoutError, ConnectTimeoutError) as exc:
        raise ApiError(504, "model endpoint timed out", metric="EndpointTimeouts") from exc
    except ClientError as exc:
        raise map_client_error(exc) from exc
    except BotoCoreError as exc:  # connection refused/reset, missing credentials, ...
        raise ApiError(502, "could not reach the model endpoint", metric="EndpointErrors") from exc
    model_ms = (time.perf_counter() - started) * 1000.0
    return _check_answer(payload), model_ms
