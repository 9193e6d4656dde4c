"""The emulator's gap fillers, one behaviour each, through boto3 over TLS as the product calls them."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator

import pytest
from aws_emulator import Emulator, context
from botocore.exceptions import ClientError
from emulator_support import TRUST, create_function, function_zip, put_model, wait_until
from serving_fixtures import photos, shared_artifact

pytestmark = pytest.mark.slow

TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::tls-only-bucket", "arn:aws:s3:::tls-only-bucket/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator(tmp_path_factory.mktemp("emulator")).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def test_tls_only_bucket_policy_lets_https_through_and_denies_http(emu: Emulator) -> None:
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="tls-only-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_policy(Bucket="tls-only-bucket", Policy=json.dumps(TLS_ONLY))
    s3.put_object(Bucket="tls-only-bucket", Key="a.txt", Body=b"over TLS")
    assert s3.get_object(Bucket="tls-only-bucket", Key="a.txt")["Body"].read() == b"over TLS"
    # The same policy, evaluated for a plain-HTTP request of the emulator, denies.
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import s3_backends

    bucket = s3_backends[context.emulator().client("sts").get_caller_identity()["Account"]]["global"].get_bucket(
        "tls-only-bucket"
    )
    context.request.active, context.request.secure = True, False
    try:
        assert bucket.get_permission("s3:PutObject", "arn:aws:s3:::tls-only-bucket/a.txt") == PermissionResult.DENIED
        context.request.secure = True
        assert bucket.get_permission("s3:PutObject", "arn:aws:s3:::tls-only-bucket/a.txt") == PermissionResult.NEUTRAL
    finally:
        context.request.active = context.request.secure = False


def test_model_registry_deletes_and_approvals_keep_metadata(emu: Emulator) -> None:
    sm = emu.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="empty-group")
    sm.delete_model_package_group(ModelPackageGroupName="empty-group")
    names = [g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]]
    assert "empty-group" not in names
    sm.create_model_package_group(ModelPackageGroupName="used-group")
    arn = sm.create_model_package(
        ModelPackageGroupName="used-group",
        InferenceSpecification={
            "Containers": [{"Image": "img:1", "ModelDataUrl": "s3://b/k.tar.gz"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"git_sha": "abc", "smoke_set": "s3://b/smoke"},
    )["ModelPackageArn"]
    with pytest.raises(ClientError) as err:
        sm.delete_model_package_group(ModelPackageGroupName="used-group")
    assert err.value.response["Error"]["Code"] == "ConflictException"
    # An approval keeps what the registration recorded (moto would drop the whole map).
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="ok")
    props = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    assert props == {"git_sha": "abc", "smoke_set": "s3://b/smoke"}
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["git_sha"])
    assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {
        "smoke_set": "s3://b/smoke"
    }
    # The versions deleted first, the group goes.
    sm.delete_model_package(ModelPackageName=arn)
    with pytest.raises(ClientError):
        sm.describe_model_package(ModelPackageName=arn)
    sm.delete_model_package_group(ModelPackageGroupName="used-group")
    assert not sm.list_model_package_groups()["ModelPackageGroupSummaryList"]


def test_lambda_invoke_runs_each_version_with_its_own_environment(emu: Emulator) -> None:
    fn = emu.client("lambda")
    create_function(emu, "versions-fn", "first")
    first = fn.publish_version(FunctionName="versions-fn")["Version"]
    fn.update_function_configuration(FunctionName="versions-fn", Environment={"Variables": {"RELEASE": "second"}})
    second = fn.publish_version(FunctionName="versions-fn")["Version"]
    fn.create_alias(FunctionName="versions-fn", Name="live", FunctionVersion=first)

    def call(qualifier: str, event: dict) -> tuple[dict, str]:
        resp = fn.invoke(FunctionName="versions-fn", Qualifier=qualifier, Payload=json.dumps(event).encode())
        return json.loads(resp["Payload"].read()), resp.get("FunctionError", "")

    body = json.loads(call(first, {})[0]["body"])
    assert (body["release"], body["version"]) == ("first", first)
    assert json.loads(call(second, {})[0]["body"])["release"] == "second"
    assert json.loads(call("live", {})[0]["body"])["release"] == "first"
    payload, error = call(second, {"fail": True})
    assert error == "Unhandled"
    assert payload["errorType"] == "RuntimeError" and "asked to fail" in payload["errorMessage"]


LOGGING_HANDLER = """
import json

def handler(event, context):
    print(json.dumps({"message": "shadow pair", "n": event.get("n")}), flush=True)
    print("another line", flush=True)
    return {"statusCode": 200, "body": ""}
"""


def test_what_a_function_writes_reaches_its_log_group(emu: Emulator) -> None:
    role = emu.client("iam").create_role(RoleName="logging-fn-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    fn, logs = emu.client("lambda"), emu.client("logs")
    fn.create_function(FunctionName="logging-fn", Runtime="python3.12", Role=role, Handler="app.handler",
                       Code={"ZipFile": function_zip(LOGGING_HANDLER)}, Timeout=10)  # fmt: skip
    version = fn.publish_version(FunctionName="logging-fn")["Version"]
    for n in (1, 2):
        fn.invoke(FunctionName="logging-fn", Qualifier=version, Payload=json.dumps({"n": n}).encode())
    events = logs.filter_log_events(logGroupName="/aws/lambda/logging-fn", filterPattern='"shadow pair"')["events"]
    assert [json.loads(e["message"])["n"] for e in events] == [1, 2]
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/logging-fn")["logStreams"]
    assert streams and all(f"[{version}]" in s["logStreamName"] for s in streams)
    everything = logs.filter_log_events(logGroupName="/aws/lambda/logging-fn")["events"]
    assert sum(e["message"] == "another line" for e in everything) == 2


@pytest.fixture(scope="module")
def models(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two endpoint configs on a real (small) model and one on an archive no server can load."""
    artifact = shared_artifact(tmp_path_factory)
    s3, sm = emu.client("s3"), emu.client("sagemaker")
    s3.create_bucket(Bucket="model-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    broken = io.BytesIO()
    with tarfile.open(fileobj=broken, mode="w:gz") as tar:
        info = tarfile.TarInfo("metadata.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    broken_path = tmp_path_factory.mktemp("broken") / "model.tar.gz"
    broken_path.write_bytes(broken.getvalue())
    sources = {"blue": artifact, "green": artifact, "broken": broken_path}
    for name, path in sources.items():
        uri = put_model(emu, "model-bucket", f"{name}/model.tar.gz", path)
        sm.create_model(
            ModelName=f"m-{name}",
            PrimaryContainer={"Image": "img:1", "ModelDataUrl": uri},
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        )
        sm.create_endpoint_config(
            EndpointConfigName=f"c-{name}",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"m-{name}",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
                }
            ],
        )
    return {name: f"c-{name}" for name in sources}


def _settled(sm, name: str):
    return lambda: (
        (d := sm.describe_endpoint(EndpointName=name))["EndpointStatus"] not in ("Creating", "Updating", "RollingBack")
        and d
    )


def _classify(emu: Emulator, name: str) -> dict:
    runtime = emu.client("sagemaker-runtime")
    body = photos("cat", count=1)[0].read_bytes()
    resp = runtime.invoke_endpoint(EndpointName=name, ContentType="image/jpeg", Body=body)
    return json.loads(resp["Body"].read())


def test_endpoint_blue_green_update_and_failed_update(emu: Emulator, models: dict[str, str]) -> None:
    sm = emu.client("sagemaker")
    sm.create_endpoint(EndpointName="bg", EndpointConfigName=models["blue"])
    assert sm.describe_endpoint(EndpointName="bg")["EndpointStatus"] == "Creating"
    desc = wait_until(_settled(sm, "bg"), what="endpoint created")
    assert (desc["EndpointStatus"], desc["EndpointConfigName"]) == ("InService", models["blue"])
    assert _classify(emu, "bg")["label"] == "cat"

    sm.update_endpoint(EndpointName="bg", EndpointConfigName=models["green"])
    assert sm.describe_endpoint(EndpointName="bg")["EndpointStatus"] == "Updating"
    with pytest.raises(ClientError, match="in-progress"):
        sm.update_endpoint(EndpointName="bg", EndpointConfigName=models["blue"])
    desc = wait_until(_settled(sm, "bg"), what="endpoint updated")
    assert (desc["EndpointStatus"], desc["EndpointConfigName"]) == ("InService", models["green"])

    sm.update_endpoint(EndpointName="bg", EndpointConfigName=models["broken"])
    desc = wait_until(_settled(sm, "bg"), what="failed update settled")
    assert (desc["EndpointStatus"], desc["EndpointConfigName"]) == ("InService", models["green"])
    assert "did not start" in desc["FailureReason"]
    assert _classify(emu, "bg")["label"] == "cat"


def test_endpoint_update_rolls_back_when_an_alarm_fires_during_the_bake(emu: Emulator, models: dict[str, str]) -> None:
    sm, cw = emu.client("sagemaker"), emu.client("cloudwatch")
    sm.create_endpoint(EndpointName="baked", EndpointConfigName=models["blue"])
    wait_until(_settled(sm, "baked"), what="endpoint created")
    cw.put_metric_alarm(
        AlarmName="baked-5xx", MetricName="Invocation5XXErrors", Namespace="AWS/SageMaker", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="ignore",  # no data: CloudWatch keeps the state set here
    )  # fmt: skip
    cw.set_alarm_state(AlarmName="baked-5xx", StateValue="ALARM", StateReason="test")
    sm.update_endpoint(
        EndpointName="baked",
        EndpointConfigName=models["green"],
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "baked-5xx"}]},
        },
    )
    desc = wait_until(_settled(sm, "baked"), what="rollback settled")
    assert (desc["EndpointStatus"], desc["EndpointConfigName"]) == ("InService", models["blue"])
    assert "baked-5xx" in desc["FailureReason"]


def test_endpoint_whose_model_cannot_start_ends_failed(emu: Emulator, models: dict[str, str]) -> None:
    sm = emu.client("sagemaker")
    sm.create_endpoint(EndpointName="never", EndpointConfigName=models["broken"])
    desc = wait_until(_settled(sm, "never"), what="creation settled")
    assert desc["EndpointStatus"] == "Failed" and desc["FailureReason"]
    with pytest.raises(ClientError):
        emu.client("sagemaker-runtime").invoke_endpoint(EndpointName="never", ContentType="image/jpeg", Body=b"x")


def _swapped(archive: bytes) -> bytes:
    """The same model with its labels the other way round (a cat is then answered `dog`)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as source, tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name.endswith("metadata.json") and data is not None:
                meta = json.loads(data)
                data = json.dumps({**meta, "labels": list(reversed(meta["labels"]))}).encode()
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def test_a_model_replaced_behind_the_same_url_is_read_again_by_the_next_fleet(
    emu: Emulator, models: dict[str, str]
) -> None:
    s3, sm = emu.client("s3"), emu.client("sagemaker")
    original = s3.get_object(Bucket="model-bucket", Key="blue/model.tar.gz")["Body"].read()
    s3.put_object(Bucket="model-bucket", Key="same-url/model.tar.gz", Body=original)
    sm.create_model(ModelName="m-same-url", PrimaryContainer={"Image": "img:1",
                    "ModelDataUrl": "s3://model-bucket/same-url/model.tar.gz"},
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/sm")  # fmt: skip
    variant = {"VariantName": "AllTraffic", "ModelName": "m-same-url", "ServerlessConfig": {"MemorySizeInMB": 2048,
               "MaxConcurrency": 2}}  # fmt: skip
    for config in ("c-same-1", "c-same-2"):
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="read-again", EndpointConfigName="c-same-1")
    wait_until(_settled(sm, "read-again"), what="endpoint created")
    assert _classify(emu, "read-again")["label"] == "cat"
    # The object behind the URL changes: the endpoint keeps what its fleet read ...
    s3.put_object(Bucket="model-bucket", Key="same-url/model.tar.gz", Body=_swapped(original))
    assert _classify(emu, "read-again")["label"] == "cat"
    # ... and the next fleet (same model, a new config) reads the new bytes.
    sm.update_endpoint(EndpointName="read-again", EndpointConfigName="c-same-2")
    desc = wait_until(_settled(sm, "read-again"), what="endpoint updated")
    assert (desc["EndpointStatus"], desc["EndpointConfigName"]) == ("InService", "c-same-2")
    assert _classify(emu, "read-again")["label"] == "dog"


def test_a_retried_attempt_of_an_answered_call_gets_the_same_answer_and_runs_once(emu: Emulator) -> None:
    """The fault: an SDK sends a create, the emulator answers it, the answer is lost on the way back and the SDK
    sends the same invocation again (twice seen under load: EntityAlreadyExists, ConflictException)."""
    iam = emu.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    attempts: list[int] = []

    def lose_the_first_answer(attempts_made: int, **_: object) -> float | None:
        attempts.append(attempts_made)
        return 0.0 if attempts_made == 1 else None  # a number: retry at once, as after a reset connection

    def handler(**kwargs: object) -> float | None:
        return lose_the_first_answer(int(kwargs["attempts"]))  # type: ignore[call-overload]

    iam.meta.events.register_first("needs-retry.iam.CreateRole", handler)
    try:
        made = iam.create_role(RoleName="answered-once", AssumeRolePolicyDocument=trust)
    finally:
        iam.meta.events.unregister("needs-retry.iam.CreateRole", handler)
    assert attempts[:2] == [1, 2]
    assert made["Role"]["RoleName"] == "answered-once"
    log = [json.loads(line) for line in (emu.workdir / "requests.jsonl").read_text().splitlines()]
    retried = [r for r in log if r["action"] == "CreateRole" and "attempt=2" in r["attempt"]]
    assert retried and retried[-1]["status"] == "200" and retried[-1].get("replayed") is True
    # A first attempt of a new invocation that finds a duplicate still gets the service's error.
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName="answered-once", AssumeRolePolicyDocument=trust)
