"""The handler against a real loopback server impersonating the SageMaker runtime API (real boto3)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from classify_api import endpoint, handler
from lambda_servers import FakeRuntime, serve
from lambda_support import (
    MODEL_ANSWER,
    FakeContext,
    clean_handler_env,
    data_dir,
    image_bytes,
    make_event,
    response_json,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")
JPEG = image_bytes("JPEG", (80, 60))


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRuntime]:
    clean_handler_env(monkeypatch)
    monkeypatch.setenv("ENDPOINT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("ENDPOINT_MAX_ATTEMPTS", "1")
    with serve(FakeRuntime()) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
        endpoint.set_client(endpoint.make_client())
        try:
            yield server  # type: ignore[misc]
        finally:
            endpoint.set_client(None)


def predict(data: bytes = JPEG, endpoint_name: str | None = None, content_type: str = "image/jpeg") -> dict:
    stage = {"endpointName": endpoint_name} if endpoint_name else None
    event = make_event(body=data, headers={"Content-Type": content_type}, is_base64=True, stage_variables=stage)
    return handler.lambda_handler(event, FakeContext())


def test_client_settings_come_from_the_environment(runtime: FakeRuntime) -> None:
    config = endpoint.get_client().meta.config
    assert config.read_timeout == 0.5
    assert config.connect_timeout == 0.5
    assert config.retries["total_max_attempts"] == 1
    assert endpoint.get_client().meta.endpoint_url == runtime.url


def test_prediction_round_trip(runtime: FakeRuntime) -> None:
    runtime.answer = {
        "label": "dog",
        "confidence": 0.8,
        "scores": {"cat": 0.2, "dog": 0.8},
        "model_version": "v9",
    }
    response = predict()
    assert response["statusCode"] == 200, response["body"]
    doc = response_json(response)
    assert doc["label"] == "dog" and doc["model_version"] == "v9" and doc["scores"] == {"cat": 0.2, "dog": 0.8}
    (call,) = runtime.calls
    assert call.endpoint == "catdog-test"
    assert call.content_type == "image/jpeg" and call.accept == "application/json"
    assert call.body == JPEG
    assert call.signed


def test_real_photos_reach_the_model_unchanged(runtime: FakeRuntime) -> None:
    root = data_dir()
    photos = sorted((root / "test" / "cat").glob("*.jpg"))[:5] + sorted((root / "test" / "dog").glob("*.jpg"))[:5]
    assert len(photos) == 10, f"expected the cats-vs-dogs photos under {root} (set DATA_DIR)"
    for photo in photos:
        data = Path(photo).read_bytes()
        response = predict(data, content_type="application/octet-stream")
        assert response["statusCode"] == 200, (photo.name, response["body"])
        assert runtime.calls[-1].body == data and runtime.calls[-1].content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("name", "status", "keyword"),
    [
        ("model-400", 422, "cannot identify image file"),
        ("model-413", 413, "too large"),
        ("model-500", 502, "HTTP 500"),
        ("throttled", 503, "busy"),
        ("unavailable", 503, "busy"),
        ("missing", 502, "ValidationError"),
        ("garbage", 502, "not JSON"),
    ],
)
def test_endpoint_failures_are_mapped(runtime: FakeRuntime, name: str, status: int, keyword: str) -> None:
    response = predict(endpoint_name=name)
    assert response["statusCode"] == status, response["body"]
    doc = response_json(response)
    assert keyword in doc["error"] and doc["request_id"]
    assert [c.endpoint for c in runtime.calls] == [name]


def test_read_timeout_is_504(runtime: FakeRuntime) -> None:
    runtime.slow_seconds = 2.0
    started = time.monotonic()
    response = predict(endpoint_name="slow-model")
    elapsed = time.monotonic() - started
    assert response["statusCode"] == 504
    assert "timed out" in response_json(response)["error"]
    assert elapsed < 1.5, f"the 0.5 s read timeout was not applied ({elapsed:.2f} s)"


def test_unreachable_endpoint_is_502(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_handler_env(monkeypatch)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ENDPOINT_MAX_ATTEMPTS", "1")
    endpoint.set_client(endpoint.make_client())
    try:
        response = predict()
    finally:
        endpoint.set_client(None)
    assert response["statusCode"] == 502
    assert "could not reach" in response_json(response)["error"]


def test_busy_endpoint_is_retried_once_by_default(runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENDPOINT_MAX_ATTEMPTS")
    endpoint.set_client(endpoint.make_client())
    response = predict(endpoint_name="unavailable")
    assert response["statusCode"] == 503
    assert len(runtime.calls) == 2


def test_the_default_client_is_built_from_the_environment(runtime: FakeRuntime) -> None:
    """set_client(None) drops the shared client; the next request builds one from the env."""
    endpoint.set_client(None)
    response = predict()
    assert response["statusCode"] == 200
    assert len(runtime.calls) == 1


def test_model_answer_shape(runtime: FakeRuntime) -> None:
    doc: dict[str, Any] = response_json(predict())
    assert set(doc) == {*MODEL_ANSWER, "latency_ms", "model_latency_ms", "request_id"}
    assert json.loads(json.dumps(doc)) == doc
