"""Handler failure paths: endpoint and model errors, malformed events, the prediction log."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from classify_api import endpoint, handler, prediction_log
from lambda_support import (
    FakeContext,
    call,
    clean_handler_env,
    expect_invoke,
    image_bytes,
    make_event,
    post_image,
    response_json,
    stubbed_runtime,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

JPEG = image_bytes("JPEG")


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    clean_handler_env(monkeypatch)
    with stubbed_runtime() as stubber:
        yield stubber


def model_error(stub: Stubber, original_status: int, message: str) -> None:
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f"Received client error ({original_status}) from primary",
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": original_status,
            "OriginalMessage": json.dumps({"error": message}),
        },
    )


@pytest.mark.parametrize(
    ("original", "status", "keyword"),
    [(400, 422, "cannot identify image"), (415, 415, "cannot identify image"), (500, 502, "HTTP 500")],
)
def test_model_errors_are_mapped(stub: Stubber, original: int, status: int, keyword: str) -> None:
    model_error(stub, original, "cannot identify image file")
    response = post_image(JPEG)
    assert response["statusCode"] == status
    doc = response_json(response)
    assert keyword in doc["error"] and doc["request_id"]


@pytest.mark.parametrize(
    ("code", "http", "status"),
    [
        ("ThrottlingException", 400, 503),
        ("ServiceUnavailable", 503, 503),
        ("ModelNotReadyException", 429, 503),
        ("ValidationError", 400, 502),
        ("InternalFailure", 500, 502),
        ("AccessDeniedException", 403, 502),
    ],
)
def test_endpoint_errors_are_mapped(stub: Stubber, code: str, http: int, status: int) -> None:
    stub.add_client_error("invoke_endpoint", service_error_code=code, http_status_code=http)
    response = post_image(JPEG)
    assert response["statusCode"] == status
    assert response_json(response)["error"]


@pytest.mark.parametrize(
    "answer",
    [b"not json", b"[]", b'{"label": "cat"}', b'{"label": "cat", "confidence": "high", "scores": {}}'],
)
def test_malformed_model_answers_are_502(stub: Stubber, answer: bytes) -> None:
    stub.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(answer), len(answer))})
    response = post_image(JPEG)
    assert response["statusCode"] == 502
    assert "model returned" in response_json(response)["error"]


class RecordingTable:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.items: list[dict[str, Any]] = []

    def put_item(self, **params: Any) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError("table is on fire")
        self.items.append(params)
        return {}


def test_prediction_log_writes_one_item(stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    table = RecordingTable()
    monkeypatch.setattr(prediction_log, "_client", table)
    monkeypatch.setenv("PREDICTION_TABLE", "catdog-predictions")
    expect_invoke(stub)
    response = post_image(JPEG, stage_variables={"release": "v7"})
    assert response["statusCode"] == 200
    (params,) = table.items
    item = params["Item"]
    assert params["TableName"] == "catdog-predictions"
    assert item["request_id"]["S"] == response_json(response)["request_id"]
    assert item["label"] == {"S": "cat"} and float(item["confidence"]["N"]) == pytest.approx(0.93)
    assert item["model_version"] == {"S": "v7"} and item["release"] == {"S": "v7"}
    assert float(item["latency_ms"]["N"]) >= 0 and item["timestamp"]["S"].endswith("+00:00")


def test_prediction_log_failure_never_fails_the_request(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(prediction_log, "_client", RecordingTable(fail=True))
    monkeypatch.setenv("PREDICTION_TABLE", "catdog-predictions")
    expect_invoke(stub)
    assert post_image(JPEG)["statusCode"] == 200
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("prediction log write failed" in r.getMessage() for r in warnings)


def test_prediction_log_is_off_without_a_table(stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    table = RecordingTable()
    monkeypatch.setattr(prediction_log, "_client", table)
    expect_invoke(stub)
    assert post_image(JPEG)["statusCode"] == 200
    assert table.items == []


def test_unexpected_exceptions_become_json_500(stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_args: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(endpoint, "invoke", explode)
    response = post_image(JPEG)
    assert response["statusCode"] == 500
    assert response_json(response)["error"] == "internal error"
    assert "secret" not in response["body"] and "Traceback" not in response["body"]


@pytest.mark.parametrize(
    "event",
    [{}, {"httpMethod": "POST"}, {"path": "/predict", "requestContext": {"requestId": "r-1"}}],
    ids=["empty", "no_path", "no_method"],
)
def test_malformed_events_get_json_500(stub: Stubber, event: dict[str, Any]) -> None:
    response = call(event)
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"].startswith("internal error")


def test_event_level_bad_bodies(stub: Stubber) -> None:
    bad_b64 = make_event(body="!!! not base64 !!!", headers={"Content-Type": "image/jpeg"})
    bad_b64["isBase64Encoded"] = True
    response = call(bad_b64)
    assert response["statusCode"] == 400 and "base64" in response_json(response)["error"]
    no_body = make_event(headers={"Content-Type": "image/jpeg"})
    assert no_body["body"] is None
    response = call(no_body)
    assert response["statusCode"] == 400 and "empty" in response_json(response)["error"]
    # The request context may lack a request id: the Lambda request id is used instead.
    event = make_event("GET", "/health")
    del event["requestContext"]["requestId"]
    context = FakeContext(aws_request_id="lambda-req-1")
    assert response_json(handler.lambda_handler(event, context))["request_id"] == "lambda-req-1"


def version_counts(out: str) -> list[tuple[str, dict[str, str]]]:
    """(metric, dimensions) of every EMF record written with the per-version dimensions."""
    from classify_api.config import VERSION_DIMENSIONS

    found = []
    for line in out.splitlines():
        doc = json.loads(line) if line.startswith("{") else {}
        for directive in doc.get("_aws", {}).get("CloudWatchMetrics", []):
            if directive["Dimensions"] == [list(VERSION_DIMENSIONS)]:
                dims = {d: doc[d] for d in VERSION_DIMENSIONS}
                found += [(m["Name"], dims) for m in directive["Metrics"] if doc[m["Name"]] in (1, [1], 1.0)]
    return found


def test_a_5xx_answer_is_counted_for_the_version_that_gave_it(
    stub: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lambda's Errors stays 0 for an answered failure: the handler's own count is the canary's only signal."""
    model_error(stub, 500, "model crashed")
    context = FakeContext(function_name="catdog-classify-api", function_version="7")
    headers = {"Content-Type": "image/jpeg"}
    response = handler.lambda_handler(make_event(body=JPEG, headers=headers, is_base64=True), context)
    assert response["statusCode"] == 502
    dims = {"service": handler.SERVICE_NAME, "FunctionName": "catdog-classify-api", "FunctionVersion": "7"}
    assert sorted(version_counts(capsys.readouterr().out)) == [("ModelCallErrors", dims), ("ServerErrors", dims)]


def test_every_5xx_answer_is_counted_and_no_4xx_is(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    call({})  # an event the resolver cannot handle: the fallback 500
    monkeypatch.setattr(endpoint, "invoke", lambda *_: 1 / 0)
    post_image(JPEG)  # an unexpected exception: 500
    assert [name for name, _ in version_counts(capsys.readouterr().out)] == ["ServerErrors", "ServerErrors"]
    post_image(b"not an image at all")  # 4xx: the client's fault, not the version's
    assert version_counts(capsys.readouterr().out) == []
