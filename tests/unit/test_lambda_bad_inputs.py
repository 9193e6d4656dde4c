"""Every case of the bad-input corpus gets a 4xx JSON error naming the problem, and the handler
keeps serving good requests afterwards. None of them may reach the model endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.stub import Stubber
from classify_api import handler
from lambda_bad_inputs import BadInput, case_ids, cases
from lambda_support import FakeContext, clean_handler_env, header, image_bytes, make_event, model_body, stubbed_runtime

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")
GOOD = image_bytes("JPEG", (120, 90), "teal")


@pytest.fixture(scope="module")
def stub() -> Iterator[Stubber]:
    with stubbed_runtime() as stubber:
        yield stubber


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_handler_env(monkeypatch)


def to_event(case: BadInput) -> dict:
    return make_event(case.method, case.path, case.body, dict(case.headers), case.is_base64)


def test_corpus_is_large_and_well_formed() -> None:
    names = case_ids()
    assert len(names) >= 40
    assert len(names) == len(set(names)), "case names must be unique"
    for case in cases():
        assert 400 <= case.status < 500 and case.keyword, case.name
        if not case.is_base64:
            case.body.decode("utf-8")  # text bodies must survive API Gateway's text handling


@pytest.mark.parametrize("case", cases(), ids=case_ids())
def test_bad_input_is_refused_with_a_useful_json_error(case: BadInput, stub: Stubber) -> None:
    response = handler.lambda_handler(to_event(case), FakeContext())
    assert response["statusCode"] == case.status, response["body"][:300]
    assert header(response, "Content-Type") == "application/json"
    doc = json.loads(response["body"])
    assert case.keyword.lower() in doc["error"].lower(), doc
    assert doc["request_id"]
    assert "Traceback" not in response["body"]
    # The handler still serves a good request right after.
    stub.add_response(
        "invoke_endpoint",
        {"Body": model_body()},
        {
            "EndpointName": "catdog-test",
            "ContentType": "image/jpeg",
            "Accept": "application/json",
            "Body": GOOD,
        },
    )
    good = make_event(body=GOOD, headers={"Content-Type": "image/jpeg"}, is_base64=True)
    response = handler.lambda_handler(good, FakeContext())
    assert response["statusCode"] == 200, response["body"]
    # Exactly the good request reached the endpoint: an extra call would have consumed the stub.
    stub.assert_no_pending_responses()


def test_stub_detects_endpoint_calls(stub: Stubber) -> None:
    """Guard for the test above: with no stubbed answer, reaching the endpoint cannot pass as a 4xx."""
    response = handler.lambda_handler(
        make_event(body=GOOD, headers={"Content-Type": "image/jpeg"}, is_base64=True), FakeContext()
    )
    assert response["statusCode"] >= 500


def test_the_corpus_limit_is_the_image_contracts() -> None:
    import lambda_bad_inputs
    from classify_api.image_contract import MAX_IMAGE_BYTES

    assert lambda_bad_inputs.MAX_IMAGE_BYTES == MAX_IMAGE_BYTES == 4_613_734
