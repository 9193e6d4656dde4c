"""The SageMaker runtime API, locally: real boto3 sagemaker-runtime through the stand-in to the model server."""

from __future__ import annotations

import base64
import json
import threading

import pytest
from serving_bad_inputs import real_jpeg
from serving_fixtures import (
    VERSION,
    check_answer,
    classify,
    request,
    shared_artifact,
    start_model_server,
    stop_model_server,
)

from mlops.standins.sagemaker_runtime import Server


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    proc, url = start_model_server(shared_artifact(tmp_path_factory))
    yield url
    stop_model_server(proc)


@pytest.fixture(scope="module")
def server(model: str):
    """The stand-in for the SageMaker runtime service, in front of the model server."""
    runtime = Server(0, model)
    threading.Thread(target=runtime.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    yield f"http://127.0.0.1:{runtime.server_address[1]}"
    runtime.shutdown()
    runtime.server_close()


def test_sagemaker_runtime_api_through_boto3(server: str, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert doc == classify(model, real_jpeg())
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


def test_runtime_path_is_the_stand_ins_not_the_images(server: str, model: str) -> None:
    assert classify(server, real_jpeg(), path="/endpoints/Any-Name-1/invocations")["model_version"] == VERSION
    assert request(server, "POST", "/invocations", real_jpeg(), {"Content-Type": "image/jpeg"})[0] == 404
    status, _, body = request(
        model, "POST", "/endpoints/any-name/invocations", real_jpeg(), {"Content-Type": "image/jpeg"}
    )
    assert status == 404  # the production image serves only the container contract
    assert "no such path" in json.loads(body)["error"]
