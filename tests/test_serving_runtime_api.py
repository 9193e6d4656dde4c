"""The SageMaker runtime API path, driven by real boto3 sagemaker-runtime against the model server."""

from __future__ import annotations

import base64
import json

import pytest
from serving_bad_inputs import real_jpeg
from serving_fixtures import (
    VERSION,
    build_artifact,
    check_answer,
    classify,
    request,
    start_model_server,
    stop_model_server,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    proc, url = start_model_server(build_artifact(tmp_path_factory.getbasetemp() / "serving-artifact"))
    yield url
    stop_model_server(proc)


def test_sagemaker_runtime_api_through_boto3(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.session.Session().client("sagemaker-runtime")
    resp = client.invoke_endpoint(
        EndpointName="catdog-prod", ContentType="image/jpeg", Accept="application/json", Body=real_jpeg()
    )
    assert resp["ContentType"] == "application/json"
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    doc = json.loads(resp["Body"].read())
    check_answer(doc)
    assert doc == classify(server, real_jpeg())
    body = json.dumps({"image_base64": base64.b64encode(real_jpeg()).decode()})
    check_answer(
        json.loads(
            client.invoke_endpoint(EndpointName="catdog-prod", ContentType="application/json", Body=body)["Body"].read()
        )
    )
    with pytest.raises(client.exceptions.ModelError) as refused:  # as SageMaker reports a container's 4xx
        client.invoke_endpoint(EndpointName="catdog-prod", ContentType="image/jpeg", Body=b"not a photo")
    err = refused.value.response
    assert err["OriginalStatusCode"] == 415
    assert "not an image" in json.loads(err["OriginalMessage"])["error"]
    assert "client error (415)" in err["Error"]["Message"]


def test_runtime_api_path_needs_post_and_a_name(server: str) -> None:
    status, _, body = request(server, "GET", "/endpoints/any-name/invocations")
    assert status == 405
    assert "not allowed" in json.loads(body)["error"]
    assert classify(server, real_jpeg(), path="/endpoints/Any-Name-1/invocations")["model_version"] == VERSION
