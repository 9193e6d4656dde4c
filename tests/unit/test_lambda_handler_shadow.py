"""The handler's shadow mirror: with the stage variable shadowEndpoint, POST /predict also asks the
candidate's endpoint, answers the client with the live answer only, and logs one record with both."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from classify_api import endpoint, handler, shadow
from lambda_support import MODEL_ANSWER, clean_handler_env, image_bytes, post_image, response_json

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

JPEG = image_bytes("JPEG")
LIVE, CANDIDATE = "catdog-test", "catdog-test-candidate"
SWAPPED = {**MODEL_ANSWER, "label": "dog", "scores": {"cat": 0.07, "dog": 0.93}, "model_version": "v8"}
Answer = dict[str, Any] | Callable[[], dict[str, Any]]


class Endpoints:
    """A sagemaker-runtime stand-in answering per endpoint name (a dict, or a callable that may raise or block)."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
        name = params["EndpointName"]
        self.calls.append(name)
        answer = self.answers[name]
        doc = answer() if callable(answer) else answer
        return {"Body": io.BytesIO(json.dumps(doc).encode()), "ContentType": "application/json"}


@pytest.fixture
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoints]:
    clean_handler_env(monkeypatch, LIVE)
    monkeypatch.delenv("SHADOW_TIMEOUT_SECONDS", raising=False)
    fake = Endpoints({LIVE: MODEL_ANSWER, CANDIDATE: SWAPPED})
    endpoint.set_client(fake)  # type: ignore[arg-type]
    shadow.set_client(fake)  # type: ignore[arg-type]
    try:
        yield fake
    finally:
        endpoint.set_client(None)
        shadow.set_client(None)


def records(caplog: pytest.LogCaptureFixture, message: str = shadow.RECORD) -> list[dict[str, Any]]:
    """The log lines with `message`, formatted as the function writes them to its log."""
    fmt = handler.logger.registered_formatter
    return [json.loads(fmt.format(r)) for r in caplog.records if r.getMessage() == message]


def test_the_client_gets_the_live_answer_and_the_log_gets_both(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    response = post_image(JPEG, stage_variables={"shadowEndpoint": CANDIDATE, "release": "r1"})
    assert response["statusCode"] == 200
    doc = response_json(response)
    assert doc["label"] == "cat" and doc["model_version"] == "v7"  # never the candidate's "dog"/"v8"
    assert sorted(endpoints.calls) == [LIVE, CANDIDATE]
    (line,) = records(caplog)
    pair = line["shadow"]
    assert pair["request_id"] == doc["request_id"] and pair["candidate_endpoint"] == CANDIDATE
    assert pair["release"] == "r1" and pair["live_version"] == "$LATEST"
    assert pair["live"]["status"] == 200 and pair["live"]["label"] == "cat" and pair["live"]["ms"] >= 0
    assert pair["candidate"] == {**pair["candidate"], "status": 200, "label": "dog", "model_version": "v8"}


def test_without_the_stage_variable_nothing_is_mirrored(endpoints: Endpoints, caplog: pytest.LogCaptureFixture) -> None:
    assert post_image(JPEG, stage_variables={"release": "r1"})["statusCode"] == 200
    assert endpoints.calls == [LIVE] and records(caplog) == []


@pytest.mark.parametrize(
    "variables",
    [
        {"shadowEndpoint": "catdog-other"},  # not the candidate of this function's endpoint
        {"shadowEndpoint": LIVE},  # the live endpoint itself
        {"shadowEndpoint": "evil-candidate"},
        {"shadowEndpoint": "catdog-test-candidate-x"},
        {"shadowEndpoint": "x-candidate", "endpointName": "x"},  # the base is the function's own ENDPOINT_NAME
        {"shadowEndpoint": "../catdog-test-candidate"},
    ],
)
def test_a_shadow_endpoint_other_than_the_candidate_is_refused(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture, variables: dict[str, str]
) -> None:
    endpoints.answers.setdefault("x", MODEL_ANSWER)
    response = post_image(JPEG, stage_variables=variables)
    assert response["statusCode"] == 200 and response_json(response)["label"] == "cat"
    assert endpoints.calls == [variables.get("endpointName", LIVE)]  # only the live call was made
    assert records(caplog) == []
    (refused,) = records(caplog, "shadow endpoint refused")
    assert refused["shadow_endpoint"] == variables["shadowEndpoint"] and refused["allowed"] == CANDIDATE


def _model_error() -> dict[str, Any]:
    error = {"Error": {"Code": "ModelError", "Message": "Received server error (500)"}, "OriginalStatusCode": 500}
    raise ClientError(error, "InvokeEndpoint")  # type: ignore[arg-type]


def _crash() -> dict[str, Any]:
    raise RuntimeError("connection pool is full")


@pytest.mark.parametrize(("failure", "status"), [(_model_error, 502), (_crash, 500), (lambda: {"nope": 1}, 502)])
def test_a_failing_candidate_never_changes_the_clients_answer(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture, failure: Callable[[], dict], status: int
) -> None:
    endpoints.answers[CANDIDATE] = failure
    response = post_image(JPEG, stage_variables={"shadowEndpoint": CANDIDATE})
    assert response["statusCode"] == 200
    assert {k: response_json(response)[k] for k in MODEL_ANSWER} == MODEL_ANSWER
    (line,) = records(caplog)
    assert line["shadow"]["candidate"]["status"] == status and line["shadow"]["candidate"]["label"] is None
    assert line["shadow"]["candidate"]["error"]


def test_a_candidate_that_does_not_answer_in_time_is_recorded_and_not_waited_for(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOW_TIMEOUT_SECONDS", "0.2")
    release = threading.Event()

    def hang() -> dict[str, Any]:
        release.wait(30)  # answers only after the client already has its answer
        return SWAPPED

    endpoints.answers[CANDIDATE] = hang
    try:
        response = post_image(JPEG, stage_variables={"shadowEndpoint": CANDIDATE})
        assert not release.is_set()
    finally:
        release.set()
    assert response["statusCode"] == 200 and response_json(response)["label"] == "cat"
    (line,) = records(caplog)
    assert line["shadow"]["candidate"] == {"status": 504, "label": None, "ms": 200.0, "error": "no answer within 0.2 s"}


def test_a_live_failure_is_the_clients_answer_and_is_still_recorded(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    endpoints.answers[LIVE] = _model_error
    response = post_image(JPEG, stage_variables={"shadowEndpoint": CANDIDATE})
    assert response["statusCode"] == 502 and "label" not in response_json(response)
    (line,) = records(caplog)
    assert line["shadow"]["live"] == {"status": 502, "label": None, "ms": None}
    assert line["shadow"]["candidate"]["label"] == "dog"


def test_a_request_refused_before_the_model_is_not_mirrored(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    response = post_image(b"not an image", stage_variables={"shadowEndpoint": CANDIDATE})
    assert 400 <= response["statusCode"] < 500
    assert endpoints.calls == [] and records(caplog) == []
