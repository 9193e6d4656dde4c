"""Offline AWS for the aws backend tests: the stack's resources in moto, plus stand-ins for what moto lacks.

moto has no UpdateEndpoint, and its Lambda Invoke needs Docker: `EndpointUpdates` answers
UpdateEndpoint by re-creating the endpoint on the new config (through moto's own API), and
`FunctionInvocations` answers the pre-traffic Invoke with a chosen API Gateway proxy response.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from mlops.backends.aws import AwsBackend
from mlops.backends.aws.config import AwsClients
from training import attestation

REGION = "eu-west-1"
ACCOUNT = "123456789012"
STAGE = "staging"
PREFIX = f"catdog-{STAGE}"
GROUP = f"{PREFIX}-models"
BUCKET = f"{PREFIX}-artifacts-{ACCOUNT}"
SIGNING_KEY = f"alias/{PREFIX}-registration-signing"  # infra/bootstrap/signing.tf; the backend's default
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{PREFIX}-serving:abc123"
# Every variable the aws backend reads: cleared so a developer's shell cannot leak into a test.
CONFIG_VARS = (
    "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "MLOPS_PROJECT", "REGISTRY_ENVIRONMENT",
    "ENDPOINT_MODE", "ENDPOINT_ALARM_NAMES", "ENDPOINT_BAKE_SECONDS", "ENDPOINT_TERMINATION_WAIT_SECONDS",
    "ENDPOINT_MAX_EXECUTION_SECONDS", "ENDPOINT_WAIT_SECONDS", "ENDPOINT_MEMORY_MB", "ENDPOINT_MAX_CONCURRENCY",
    "ENDPOINT_INSTANCE_TYPE", "ENDPOINT_INSTANCE_COUNT", "ENDPOINT_AUTO_ROLLBACK", "ENDPOINT_NAME",
    "ENDPOINT_VARIANT_NAME", "MODEL_PACKAGE_GROUP_NAME", "FUNCTION_NAME", "FUNCTION_ALIAS", "REST_API_ID",
    "REST_API_NAME", "STAGE_NAME", "RELEASE_TABLE", "SAGEMAKER_ROLE_ARN", "INFERENCE_ROLE_ARN",
    "LOCK_TTL_SECONDS", "API_URL", "AWS_ACCOUNT_ID", "ARTIFACT_BUCKET", "GITHUB_SHA", "MLOPS_STAGE",
    "MLOPS_BACKEND", "API_KEY", "API_KEY_ID", "IMAGE_TAG", "ENDPOINT_POLL_SECONDS", "RELEASE_ALARM_NAMES",
    "RELEASE_BAKE_SECONDS", "LOCK_WAIT_SECONDS", "MLOPS_BAKE_SECONDS", "MLOPS_LOCK_WAIT_SECONDS",
    "MLOPS_RESTORE_ATTEMPTS", "MLOPS_RESTORE_BACKOFF_SECONDS", "MLOPS_SIGNAL_LAG_SECONDS", "METRIC_DELAY_SECONDS",
    "REGISTRATION_SIGNING_KEY",
)  # fmt: skip


def aws_env(monkeypatch: Any, outputs_dir: str = "/nonexistent/infra-outputs") -> None:
    """Fake credentials, the region, no Terraform outputs file, nothing else from the caller's shell."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOPS_INFRA_OUTPUTS_DIR", outputs_dir)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("ENDPOINT_POLL_SECONDS", "0")
    monkeypatch.setenv("MLOPS_BAKE_SECONDS", "0")  # one reading of the alarms; tests that bake set their own
    monkeypatch.setenv("MLOPS_SIGNAL_LAG_SECONDS", "0")  # moto shows datapoints and alarm states at once
    # moto's API has no public URL to send a bake's synthetic requests to, nor Lambda metrics to count them:
    # the bake's request minimum is tested with the local stack, the rehearsal and tests/unit/test_bake_requests.py.
    monkeypatch.setenv("MLOPS_BAKE_MIN_REQUESTS", "0")
    monkeypatch.setenv("MLOPS_RESTORE_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("LOCK_WAIT_SECONDS", "0")  # a busy lock fails at once; the waiting test sets its own


_session: list[boto3.Session] = []


def new_backend(stage: str = STAGE) -> AwsBackend:
    """An AwsBackend whose clients come from one shared boto3 session (its loaded models are reused)."""
    if not _session:
        _session.append(boto3.Session(region_name=REGION))
    return AwsBackend(stage, clients=AwsClients(REGION, _session[0]))


class EndpointUpdates:
    """UpdateEndpoint for moto: records the request and moves the endpoint to the new config."""

    def __init__(self, sm: Any) -> None:
        self.sm = sm
        self.calls: list[dict] = []
        sm.meta.events.register("before-parameter-build.sagemaker.UpdateEndpoint", self._record)
        sm.meta.events.register("before-call.sagemaker.UpdateEndpoint", self._answer)

    def _record(self, params: dict, **_: Any) -> None:
        self.calls.append(dict(params))

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict]:
        params = self.calls[-1]
        self.sm.delete_endpoint(EndpointName=params["EndpointName"])
        self.sm.create_endpoint(EndpointName=params["EndpointName"], EndpointConfigName=params["EndpointConfigName"])
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{params['EndpointName']}"
        return AWSResponse(None, 200, {}, None), {"EndpointArn": arn}


@dataclass
class FunctionInvocations:
    """Invoke for moto's Lambda: answers with `respond(event) -> (FunctionError or None, payload)`."""

    respond: Callable[[dict], tuple[str | None, dict]] = lambda event: (None, {"statusCode": 200, "body": "{}"})
    calls: list[dict] = field(default_factory=list)

    def __call__(self, **kwargs: Any) -> dict:
        event = json.loads(kwargs["Payload"])
        self.calls.append({**kwargs, "event": event})
        error, payload = self.respond(event)
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(payload).encode())}
        if error:
            response["FunctionError"] = error
        return response


@dataclass
class Stack:
    backend: AwsBackend
    rest_api_id: str
    initial_deployment: str
    invocations: FunctionInvocations
    updates: EndpointUpdates

    def client(self, service: str) -> Any:
        return self.backend.clients.get(service)


def _lambda_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("classify_api/handler.py", "def lambda_handler(event, context):\n    return {}\n")
    return buf.getvalue()


def tiny_artifact(tag: str) -> tuple[bytes, str]:
    """A model.tar.gz as the pipeline packs it (metadata.json and the model file it names; here no real model:
    these stacks run no model server) and its content SHA-256, as registration records it."""
    from serving.artifact import artifact_sha256

    files = {"metadata.json": json.dumps({"labels": ["cat", "dog"], "serving_model": "model.onnx"}).encode()}
    files["model.onnx"] = f"not a model: {tag}".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return buf.getvalue(), artifact_sha256(tmp)


def signing_key(kms: Any, alias: str = SIGNING_KEY) -> str:
    """The pipeline's registration key (an ECC_NIST_P256 KMS key under `alias`), created on first use; its id."""
    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"])
    except kms.exceptions.NotFoundException:
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key)
        return str(key)


def attested(kms: Any, props: dict[str, str], group: str = GROUP, alias: str = SIGNING_KEY) -> dict[str, str]:
    """CustomerMetadataProperties with the pipeline's signature over their hashes, as its Evaluate step signs."""
    signing_key(kms, alias)
    body = attestation.of_properties(group, props)
    return {**props, attestation.SIGNATURE_KEY: attestation.sign_with_kms(kms, alias, body)}


def add_model_version(backend: AwsBackend, accuracy: float | None) -> str:
    """Register a version as the pipeline does (evaluation.json on S3 in ModelMetrics); returns its number."""
    sm, s3 = backend.clients.get("sagemaker"), backend.clients.get("s3")
    n = len(backend.registry._summaries()) + 1
    metrics = {}
    if accuracy is not None:
        key = f"evaluation/exec-{n}/evaluation.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"metrics": {"accuracy": {"value": accuracy}}}))
        metrics = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{key}"}}}
    sha = tiny_artifact(f"v{n}")[1]
    props = attested(
        backend.clients.get("kms"), {"git_sha": f"sha{n}", "mlflow_run_id": f"run{n}", "model_sha256": sha}
    )
    return create_package(
        sm, s3, f"v{n}", "PendingManualApproval", props, **({"ModelMetrics": metrics} if metrics else {})
    )


def create_package(sm: Any, s3: Any, tag: str, status: str, props: dict[str, str], **extra: Any) -> str:
    """CreateModelPackage of tiny_artifact(tag), put at models/<tag>/; returns the version's number."""
    s3.put_object(Bucket=BUCKET, Key=f"models/{tag}/model.tar.gz", Body=tiny_artifact(tag)[0])
    arn = sm.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/{tag}/model.tar.gz"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus=status,
        CustomerMetadataProperties=props,
        **extra,
    )["ModelPackageArn"]
    return str(arn.rsplit("/", 1)[-1])


def make_stack(accuracies: tuple[float | None, ...] = (0.95, 0.97)) -> Stack:
    """Inside an active mock_aws: what infra/ creates for the staging environment, and model versions."""
    backend = new_backend(STAGE)
    c = backend.clients.get
    c("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    c("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
    for accuracy in accuracies:
        add_model_version(backend, accuracy)
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    c("iam").create_role(RoleName=f"{PREFIX}-inference", AssumeRolePolicyDocument=trust)
    lambda_role = c("iam").create_role(RoleName=f"{PREFIX}-lambda", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    c("lambda").create_function(
        FunctionName=f"{PREFIX}-classify-api",
        Runtime="python3.12",
        Role=lambda_role,
        Handler="classify_api.handler.lambda_handler",
        Code={"ZipFile": _lambda_zip()},
        Publish=True,
        Environment={"Variables": {"ENDPOINT_NAME": f"{PREFIX}-classifier", "LOG_LEVEL": "INFO"}},
    )
    c("lambda").create_alias(FunctionName=f"{PREFIX}-classify-api", Name="live", FunctionVersion="1")
    api = c("apigateway").create_rest_api(name=f"{PREFIX}-api")["id"]
    root = next(r["id"] for r in c("apigateway").get_resources(restApiId=api)["items"] if r["path"] == "/")
    for path, method in (("health", "GET"), ("predict", "POST")):
        res = c("apigateway").create_resource(restApiId=api, parentId=root, pathPart=path)["id"]
        c("apigateway").put_method(restApiId=api, resourceId=res, httpMethod=method, authorizationType="NONE")
        c("apigateway").put_integration(
            restApiId=api,
            resourceId=res,
            httpMethod=method,
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/fn:${{stageVariables.lambdaAlias}}/invocations",
        )
    initial = c("apigateway").create_deployment(
        restApiId=api,
        stageName=STAGE,
        description="Initial deployment by Terraform",
        variables={"lambdaAlias": "live", "release": "none"},
    )["id"]
    c("dynamodb").create_table(
        TableName=f"{PREFIX}-releases",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for name in backend.cfg.alarm_names + backend.cfg.release_alarm_names:  # infra/alarms.tf, state OK
        c("cloudwatch").put_metric_alarm(
            AlarmName=name, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        )  # fmt: skip
        c("cloudwatch").set_alarm_state(AlarmName=name, StateValue="OK", StateReason="quiet")
    push_image(backend, IMAGE)
    keep_metadata_on_update(c("sagemaker"))
    invocations = FunctionInvocations()
    c("lambda").invoke = invocations  # the instance attribute shadows the client's method
    return Stack(backend, api, initial, invocations, EndpointUpdates(c("sagemaker")))


def keep_metadata_on_update(sm: Any) -> None:
    """moto 5.2.5 gap: its UpdateModelPackage replaces CustomerMetadataProperties with the request's (None when
    absent); SageMaker keeps them. The request is given the package's current properties when it has none."""

    def add_current(params: dict, **_: Any) -> None:
        if "CustomerMetadataProperties" not in params:
            current = sm.describe_model_package(ModelPackageName=params["ModelPackageArn"])
            if current.get("CustomerMetadataProperties"):
                params["CustomerMetadataProperties"] = current["CustomerMetadataProperties"]

    sm.meta.events.register("provide-client-params.sagemaker.UpdateModelPackage", add_current)


def push_image(backend: AwsBackend, image: str) -> str:
    """An image in moto's ECR under `image`'s repository and tag (what `make image-push` leaves); its digest."""
    ecr = backend.clients.get("ecr")
    repo, tag = image.split("/", 1)[1].rsplit(":", 1)
    if repo not in [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]:
        ecr.create_repository(repositoryName=repo)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "0" * 64}, "layers": [], "tag": tag,
    })  # fmt: skip
    return ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag=tag)["image"]["imageId"]["imageDigest"]


def approve_all(backend: AwsBackend) -> None:
    for v in backend.list_versions():
        backend.set_approval(v.version, "Approved", "tester", "good enough")


def approved_stack(monkeypatch: Any) -> Iterator[Stack]:
    """A fixture body: the staging stack in moto, model versions 1 (0.95) and 2 (0.97) registered and approved.
    A test module names it: `stack = pytest.fixture(name="stack")(approved_stack)`."""
    aws_env(monkeypatch)
    with mock_aws():
        s = make_stack((0.95, 0.97))
        approve_all(s.backend)
        yield s


def quiet(_: str) -> None:
    """A release's log, unread."""
    return None
