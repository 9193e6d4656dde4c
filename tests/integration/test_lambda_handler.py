"""The Lambda handler called directly with API Gateway REST proxy events, endpoint stubbed by Stubber."""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.stub import Stubber
from classify_api import endpoint, handler
from lambda_support import (
    MODEL_ANSWER,
    FakeRuntimeClient,
    call,
    clean_handler_env,
    expect_invoke,
    header,
    image_bytes,
    make_event,
    post_image,
    post_json,
    response_json,
    stubbed_runtime,
)

TESTS = str(Path(__file__).resolve().parents[1])  # the helpers beside the tier folders
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

JPEG = image_bytes("JPEG")
PNG = image_bytes("PNG")


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    clean_handler_env(monkeypatch)
    with stubbed_runtime() as stubber:
        yield stubber


def test_predict_binary_jpeg_answers_model_fields_and_timings(stub: Stubber) -> None:
    expect_invoke(stub, body=JPEG)
    event = make_event(body=JPEG, headers={"Content-Type": "image/jpeg"}, is_base64=True)
    response = call(event)
    assert response["statusCode"] == 200, response["body"]
    doc = response_json(response)
    assert {k: doc[k] for k in MODEL_ANSWER} == MODEL_ANSWER
    assert set(doc) == {*MODEL_ANSWER, "latency_ms", "model_latency_ms", "request_id"}
    assert isinstance(doc["latency_ms"], float) and isinstance(doc["model_latency_ms"], float)
    assert 0 <= doc["model_latency_ms"] <= doc["latency_ms"] < 1000
    request_id = event["requestContext"]["requestId"]
    assert doc["request_id"] == request_id
    assert header(response, "X-Request-Id") == request_id
    assert header(response, "Content-Type") == "application/json"
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("claimed", ["image/jpeg", "application/octet-stream", "application/x-image", "image/png"])
def test_model_gets_the_detected_type_not_the_claimed_one(stub: Stubber, claimed: str) -> None:
    expect_invoke(stub, body=PNG, content_type="image/png")
    assert post_image(PNG, claimed)["statusCode"] == 200
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("fmt", ["WEBP", "GIF", "BMP"])
def test_other_supported_formats_reach_the_model(stub: Stubber, fmt: str) -> None:
    data = image_bytes(fmt)
    expect_invoke(stub, body=data, content_type=f"image/{fmt.lower()}")
    assert post_image(data, "application/octet-stream")["statusCode"] == 200
    stub.assert_no_pending_responses()


def test_predict_json_image_base64(stub: Stubber) -> None:
    expect_invoke(stub, body=JPEG)
    response = post_json({"image_base64": base64.b64encode(JPEG).decode()})
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["label"] == "cat"


def test_predict_json_data_url_and_base64_encoded_event(stub: Stubber) -> None:
    """A browser data: URL, delivered base64-encoded as API Gateway does with binary media type */*."""
    expect_invoke(stub, body=PNG, content_type="image/png")
    doc = json.dumps({"image_base64": "data:image/png;base64," + base64.b64encode(PNG).decode()})
    event = make_event(body=doc.encode(), headers={"content-type": "application/json; charset=utf-8"}, is_base64=True)
    assert call(event)["statusCode"] == 200
    stub.assert_no_pending_responses()


def test_missing_content_type_is_judged_by_content(stub: Stubber) -> None:
    expect_invoke(stub, body=JPEG)
    expect_invoke(stub, body=JPEG)
    assert call(make_event(body=JPEG, headers={}, is_base64=True))["statusCode"] == 200
    doc = json.dumps({"image_base64": base64.b64encode(JPEG).decode()})
    assert call(make_event(body=doc, headers={}))["statusCode"] == 200
    stub.assert_no_pending_responses()


def test_stage_variables_pick_the_endpoint_and_name_the_release(stub: Stubber) -> None:
    expect_invoke(stub, body=JPEG, name="catdog-candidate-v8")
    stage = {"endpointName": "catdog-candidate-v8", "release": "v8-canary"}
    response = post_image(JPEG, stage_variables=stage)
    assert response["statusCode"] == 200
    assert response_json(response)["release"] == "v8-canary"
    stub.assert_no_pending_responses()


def test_invalid_stage_endpoint_name_is_a_server_error(stub: Stubber) -> None:
    response = post_image(JPEG, stage_variables={"endpointName": "../../etc"})
    assert response["statusCode"] == 500
    assert "endpoint name" in response_json(response)["error"]


def test_missing_endpoint_configuration_is_a_json_500(stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENDPOINT_NAME")
    response = post_image(JPEG)
    assert response["statusCode"] == 500
    assert "misconfigured" in response_json(response)["error"]


def test_health_is_cheap_and_names_the_endpoint(stub: Stubber) -> None:
    response = call(make_event("GET", "/health", stage_variables={"release": "v7"}))
    assert response["statusCode"] == 200
    doc = response_json(response)
    assert doc["status"] == "ok" and doc["endpoint"] == "catdog-test" and doc["release"] == "v7"
    assert doc["request_id"]
    stub.assert_no_pending_responses()  # and no endpoint call was attempted (it would raise)


def test_cors_headers_and_preflight(stub: Stubber) -> None:
    response = call(make_event("GET", "/health", headers={"Origin": "https://app.example"}))
    assert header(response, "Access-Control-Allow-Origin") == "*"
    preflight = call(make_event("OPTIONS", "/predict", headers={"Origin": "https://app.example"}))
    assert preflight["statusCode"] == 204
    assert "POST" in (header(preflight, "Access-Control-Allow-Methods") or "")


def test_cors_origin_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "https://app.example, https://admin.example")
    cors = handler._cors()
    assert cors.to_dict(cors.allowed_origin("https://admin.example"))["Access-Control-Allow-Origin"] == (
        "https://admin.example"
    )
    assert cors.allowed_origin("https://evil.example") is None


def test_metrics_are_emitted(stub: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    expect_invoke(stub)
    post_image(JPEG)
    post_image(b"not an image")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for line in lines for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"PredictionLatency", "ModelLatency", "Predictions", "BadRequests"} <= names
    assert all(d["Namespace"] == "CatDog" for line in lines for d in line["_aws"]["CloudWatchMetrics"])
    assert any(line.get("label") == "cat" for line in lines)


def test_size_limit_comes_from_the_environment(stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_IMAGE_BYTES", str(len(JPEG) - 1))
    response = post_image(JPEG)
    assert response["statusCode"] == 413
    assert f"{len(JPEG) - 1:,}" in response_json(response)["error"]


def test_handler_overhead_is_small(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """p50 of the whole handler (routing, checks, logging, metrics) with an instant endpoint."""
    clean_handler_env(monkeypatch)
    fake = FakeRuntimeClient()
    endpoint.set_client(fake)  # type: ignore[arg-type]
    photo = image_bytes("JPEG", (500, 375))
    try:
        timings = []
        for _ in range(300):
            event = make_event(body=photo, headers={"Content-Type": "image/jpeg"}, is_base64=True)
            started = time.perf_counter()
            response = call(event)
            timings.append((time.perf_counter() - started) * 1000)
            assert response["statusCode"] == 200
    finally:
        endpoint.set_client(None)
    capsys.readouterr()
    assert len(fake.calls) == 300 and fake.calls[0]["Body"] == photo
    assert statistics.median(timings) < 3.0, f"p50 {statistics.median(timings):.2f} ms"


def test_errors_carry_cors_headers(stub: Stubber) -> None:
    event = make_event(body=b"plain text", headers={"Content-Type": "image/png", "Origin": "https://app.example"})
    response = call(event)
    assert response["statusCode"] == 415
    assert header(response, "Access-Control-Allow-Origin") == "*"


def test_event_without_headers_is_judged_by_content(stub: Stubber) -> None:
    expect_invoke(stub, body=JPEG)
    event = make_event(body=JPEG, is_base64=True)
    event["headers"] = None
    event["multiValueHeaders"] = None
    assert call(event)["statusCode"] == 200
    stub.assert_no_pending_responses()


def test_api_base_path_is_stripped() -> None:
    """A custom-domain base path (API_BASE_PATH) in front of the routes; read at import, so a subprocess."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from lambda_support import make_event, FakeContext; from classify_api import handler;"
        "r = handler.lambda_handler(make_event('GET', '/v1/health'), FakeContext());"
        "print('STATUS', r['statusCode'])"
    )
    env = {**os.environ, "API_BASE_PATH": "/v1", "ENDPOINT_NAME": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.run([sys.executable, "-c", code, TESTS], capture_output=True, text=True, env=env, check=False)
    assert "STATUS 200" in proc.stdout, proc.stderr[-2000:]
