"""The emulator authorizes like IAM: each call as the role that signs it, on real resource ARNs.

Pure evaluation first (explicit deny, boundaries, conditions, resource patterns), then the running
emulator: a GitHub token for another subject gets no credentials; a role session may do exactly what
its policies name, on the resources they name, within its boundary; a refusal is AWS's AccessDenied
naming the action and the resource.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_emulator import Emulator, iam_catalog, iam_s3
from aws_emulator.iam_policy import Request, condition_holds, decide
from aws_emulator.iam_principals import github_token
from botocore.exceptions import ClientError

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:app"


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str, resource: str = "*", **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_an_explicit_deny_wins_over_any_allow() -> None:
    request = Request("lambda:InvokeFunction", [ARN])
    deny = {"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}
    assert decide(request, {"p": doc(allow("lambda:InvokeFunction", ARN))}).allowed
    refused = decide(request, {"p": doc(allow("lambda:InvokeFunction", ARN)), "q": doc(deny)})
    assert not refused.allowed and "explicit deny in q" in refused.reason


def test_the_boundary_caps_what_identity_policies_allow() -> None:
    request = Request("lambda:InvokeFunction", [ARN])
    identity = {"p": doc(allow("lambda:*"))}
    assert not decide(request, identity, {"b": doc(allow("s3:*"))}).allowed
    assert decide(request, identity, {"b": doc(allow("lambda:InvokeFunction"))}).allowed
    assert not decide(request, {"p": doc(allow("s3:*"))}, {"b": doc(allow("lambda:*"))}).allowed


def test_resource_patterns_are_matched_against_the_real_arn_not_star() -> None:
    policy = {"p": doc(allow("lambda:InvokeFunction", "arn:aws:lambda:eu-west-1:123456789012:function:other-*"))}
    assert not decide(Request("lambda:InvokeFunction", [ARN]), policy).allowed
    assert not decide(Request("lambda:InvokeFunction", ["*"]), policy).allowed
    qualified = {"p": doc(allow("lambda:InvokeFunction", f"{ARN}:*"))}
    assert decide(Request("lambda:InvokeFunction", [f"{ARN}:live"]), qualified).allowed
    assert not decide(Request("lambda:InvokeFunction", [ARN]), qualified).allowed


def test_condition_operators_and_missing_keys() -> None:
    ctx = {"aws:RequestTag/environment": ["staging"], "kms:ResourceAliases": ["alias/a", "alias/b"]}
    assert condition_holds("StringEquals", "aws:RequestTag/environment", ["staging"], ctx)
    assert not condition_holds("StringEquals", "aws:RequestTag/environment", ["production"], ctx)
    assert not condition_holds("StringEquals", "aws:ResourceTag/environment", ["staging"], ctx)  # absent: false
    assert condition_holds("StringEqualsIfExists", "aws:ResourceTag/environment", ["staging"], ctx)
    assert condition_holds("ForAnyValue:StringEquals", "kms:ResourceAliases", ["alias/b"], ctx)
    assert not condition_holds("ForAllValues:StringEquals", "kms:ResourceAliases", ["alias/b"], ctx)
    assert condition_holds("Null", "aws:ResourceTag/environment", ["true"], ctx)
    assert condition_holds("StringLike", "s3:prefix", ["catdog/*"], {"s3:prefix": ["catdog/staging/x"]})
    assert not condition_holds("StringNotEquals", "aws:RequestTag/environment", ["staging"], ctx)


def test_operations_map_to_the_actions_aws_authorizes_them_as() -> None:
    assert iam_catalog.actions_for("lambda", "Invoke") == ["InvokeFunction"]
    assert iam_catalog.actions_for("sagemaker-runtime", "InvokeEndpoint") == ["InvokeEndpoint"]
    assert iam_catalog.actions_for("sagemaker", "ListPipelines") == ["ListPipelines"]
    assert iam_catalog.actions_for("sts", "GetCallerIdentity") == []
    assert iam_catalog.resources_for("sagemaker", "ListPipelines", {}, "eu-west-1", "123456789012") == ["*"]
    endpoint = iam_catalog.resources_for("sagemaker", "DescribeEndpoint", {"EndpointName": "e"}, "eu-west-1", "1")
    assert endpoint == ["arn:aws:sagemaker:eu-west-1:1:endpoint/e"]
    assert iam_s3.classify("GET", "/b", "list-type=2&prefix=p/", {})[:2] == ("ListObjectsV2", ["ListBucket"])
    assert iam_s3.classify("GET", "/b", "encryption", {})[1] == ["GetEncryptionConfiguration"]
    assert iam_s3.classify("HEAD", "/b/k/x.json", "", {})[1] == ["GetObject"]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_EMULATOR_IAM", "enforce")
        yield from _running(tmp_path_factory)


def _running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(Path(tmp_path_factory.mktemp("iam-emulator"))) as running:
        yield running


TRUST_SUBJECT = (
    "repo:example-org/app:environment:staging:job_workflow_ref:example-org/app/.github/workflows/d.yml@refs/heads/main"
)


def _role(emu: Emulator, name: str, policy: dict, boundary: dict | None = None) -> str:
    iam = emu.client("iam")
    provider = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    if provider not in [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]:
        iam.create_open_id_connect_provider(
            Url="https://token.actions.githubusercontent.com",
            ClientIDList=["sts.amazonaws.com"],
            ThumbprintList=["0" * 40],
        )
    cond = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                             "token.actions.githubusercontent.com:sub": TRUST_SUBJECT}}  # fmt: skip
    trust = doc({"Effect": "Allow", "Principal": {"Federated": provider},
                 "Action": "sts:AssumeRoleWithWebIdentity", "Condition": cond})  # fmt: skip
    extra = {}
    if boundary is not None:
        arn = iam.create_policy(PolicyName=f"{name}-boundary", PolicyDocument=json.dumps(boundary))["Policy"]["Arn"]
        extra["PermissionsBoundary"] = arn
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), **extra)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="own", PolicyDocument=json.dumps(policy))
    return role


def _session(emu: Emulator, role: str, subject_context: str = "environment:staging") -> boto3.Session:
    sts = boto3.client("sts", region_name=emu.region, endpoint_url=emu.url, verify=str(emu.tls_files.ca),
                       aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip
    token = github_token("example-org/app", subject_context, "example-org/app/.github/workflows/d.yml@refs/heads/main")
    creds = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="tests", WebIdentityToken=token)[
        "Credentials"
    ]
    return boto3.Session(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], region_name=emu.region)


def test_a_token_for_another_environment_gets_no_credentials(emu: Emulator) -> None:
    role = _role(emu, "gh-subject", doc(allow("s3:ListAllMyBuckets")))
    with pytest.raises(ClientError) as refused:
        _session(emu, role, "environment:production")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "environment:production" in str(refused.value)
    forged = github_token("example-org/app", "environment:staging", "x")[:-4] + "AAAA"
    sts = boto3.client("sts", region_name=emu.region, endpoint_url=emu.url, verify=str(emu.tls_files.ca),
                       aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip
    with pytest.raises(ClientError, match="signature"):
        sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="tests", WebIdentityToken=forged)


def test_a_role_session_does_what_its_policies_name_and_nothing_else(emu: Emulator) -> None:
    admin = emu.client("s3")
    for bucket in ("own-bucket", "other-bucket"):
        admin.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": emu.region})
        admin.put_object(Bucket=bucket, Key="data/x.txt", Body=b"x")
    policy = doc(
        allow("s3:GetObject", "arn:aws:s3:::own-bucket/data/*"),
        allow("s3:ListBucket", "arn:aws:s3:::own-bucket", Condition={"StringLike": {"s3:prefix": ["data/*"]}}),
        allow("s3:PutObject", "arn:aws:s3:::own-bucket/*"),
    )
    boundary = doc(allow("s3:GetObject"), allow("s3:ListBucket"))
    role = _role(emu, "gh-scoped", policy, boundary)
    s3 = _session(emu, role).client("s3", endpoint_url=emu.url, verify=str(emu.tls_files.ca))
    assert s3.get_object(Bucket="own-bucket", Key="data/x.txt")["Body"].read() == b"x"
    assert s3.list_objects_v2(Bucket="own-bucket", Prefix="data/")["KeyCount"] == 1
    for call in (
        lambda: s3.get_object(Bucket="other-bucket", Key="data/x.txt"),  # another resource
        lambda: s3.list_objects_v2(Bucket="own-bucket", Prefix="secret/"),  # the condition
        lambda: s3.put_object(Bucket="own-bucket", Key="data/y.txt", Body=b"y"),  # the boundary
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    sagemaker = _session(emu, role).client("sagemaker", endpoint_url=emu.url, verify=str(emu.tls_files.ca))
    with pytest.raises(ClientError) as refused:
        sagemaker.list_pipelines()
    message = str(refused.value)
    assert "sagemaker:ListPipelines" in message and "assumed-role/gh-scoped" in message, message


def test_a_role_that_registers_pending_versions_cannot_register_an_approved_one(emu: Emulator) -> None:
    """The pipeline role's RegisterPendingVersions statement (infra/bootstrap/execution_roles.tf), attacked
    as code running as that role would: registering a version already Approved, or leaving the status out."""
    group = "attack-models"
    emu.client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    arn = f"arn:aws:sagemaker:{emu.region}:123456789012:model-package"
    pending = {"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}
    policy = doc(allow("sagemaker:CreateModelPackage", [f"{arn}-group/{group}", f"{arn}/{group}/*"], Condition=pending))
    role = _role(emu, "gh-register", policy)
    sm = _session(emu, role).client("sagemaker", endpoint_url=emu.url, verify=str(emu.tls_files.ca))
    spec = {
        "Containers": [
            {"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1", "ModelDataUrl": "s3://b/m.tar.gz"}
        ],
        "SupportedContentTypes": ["image/jpeg"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    registered = sm.create_model_package(
        ModelPackageGroupName=group, InferenceSpecification=spec, ModelApprovalStatus="PendingManualApproval"
    )
    assert registered["ModelPackageArn"].endswith(f"{group}/1")
    for status in ({"ModelApprovalStatus": "Approved"}, {}):
        with pytest.raises(ClientError) as refused:
            sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification=spec, **status)
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"  # SageMaker's JSON protocol
        assert "sagemaker:CreateModelPackage" in str(refused.value)
    listed = emu.client("sagemaker").list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in listed] == ["PendingManualApproval"]  # nothing else registered


def test_only_the_pipeline_role_signs_registrations(emu: Emulator) -> None:
    """The registration key (infra/bootstrap/signing.tf) under the two grants that reach it: the pipeline's
    SignRegistrations (execution_roles.tf) and the release policy's RegistrationKey (stack_access/release.tf),
    both by the key's alias. A deploy role reads the public key and is refused kms:Sign; the pipeline role
    signs with that key and with no other."""
    kms = emu.client("kms")
    key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app-staging-registration-signing", TargetKeyId=key)
    other = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    keys = "arn:aws:kms:eu-west-1:123456789012:key/*"
    aliased = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/app-staging-registration-signing"}}
    signer = _role(emu, "gh-signer", doc(allow("kms:Sign", keys, Condition=aliased)))
    deployer = _role(emu, "gh-deployer", doc(allow(["kms:GetPublicKey", "kms:DescribeKey"], keys, Condition=aliased)))
    body = {"Message": b"hashes", "MessageType": "RAW", "SigningAlgorithm": "ECDSA_SHA_256"}

    def client(role: str) -> Any:
        return _session(emu, role).client("kms", endpoint_url=emu.url, verify=str(emu.tls_files.ca))

    pipeline, deploy = client(signer), client(deployer)
    signature = pipeline.sign(KeyId="alias/app-staging-registration-signing", **body)["Signature"]
    assert kms.verify(KeyId=key, Signature=signature, **body)["SignatureValid"]
    public = deploy.get_public_key(KeyId="alias/app-staging-registration-signing")
    assert public["KeyUsage"] == "SIGN_VERIFY"
    for caller, key_id in ((deploy, "alias/app-staging-registration-signing"), (deploy, key), (pipeline, other)):
        with pytest.raises(ClientError) as refused:
            caller.sign(KeyId=key_id, **body)
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "kms:Sign" in str(refused.value)


def test_a_transaction_is_authorized_item_by_item_as_dynamodb_does(emu: Emulator) -> None:
    """TransactWriteItems has no action of its own: each item needs its own (the release records' writes
    check the lock item with ConditionCheckItem; mlops/backends/aws/records.py)."""
    db = emu.client("dynamodb")
    db.create_table(TableName="txn", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST")  # fmt: skip
    db.put_item(TableName="txn", Item={"pk": {"S": "lock"}, "token": {"S": "t"}})
    table = f"arn:aws:dynamodb:{emu.region}:123456789012:table/txn"
    items = [
        {"ConditionCheck": {"TableName": "txn", "Key": {"pk": {"S": "lock"}}, "ConditionExpression": "#t = :t",
                            "ExpressionAttributeNames": {"#t": "token"},
                            "ExpressionAttributeValues": {":t": {"S": "t"}}}},
        {"Put": {"TableName": "txn", "Item": {"pk": {"S": "record"}}}},
    ]  # fmt: skip
    put_only = _role(emu, "gh-put-only", doc(allow("dynamodb:PutItem", table)))
    session = _session(emu, put_only).client("dynamodb", endpoint_url=emu.url, verify=str(emu.tls_files.ca))
    with pytest.raises(ClientError) as refused:
        session.transact_write_items(TransactItems=items)
    assert "dynamodb:ConditionCheckItem" in str(refused.value)
    assert "Item" not in db.get_item(TableName="txn", Key={"pk": {"S": "record"}})
    both = _role(
        emu, "gh-put-check", doc(allow("dynamodb:PutItem", table), allow("dynamodb:ConditionCheckItem", table))
    )
    session = _session(emu, both).client("dynamodb", endpoint_url=emu.url, verify=str(emu.tls_files.ca))
    session.transact_write_items(TransactItems=items)
    assert "Item" in db.get_item(TableName="txn", Key={"pk": {"S": "record"}})


def test_a_copy_needs_the_sources_key_as_s3_does(emu: Emulator) -> None:
    """CopyObject reads the source as the caller: s3:GetObject on it, and kms:Decrypt (through S3) on the
    key that encrypts it; the copy is then encrypted with the destination's key (kms:GenerateDataKey)."""
    kms, admin = emu.client("kms"), emu.client("s3")
    keys = {}
    for name in ("registry", "production"):
        keys[name] = kms.create_key(Description=name)["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName=f"alias/copy-{name}", TargetKeyId=keys[name])
        admin.create_bucket(Bucket=f"copy-{name}", CreateBucketConfiguration={"LocationConstraint": emu.region})
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": keys[name]}}
        admin.put_bucket_encryption(Bucket=f"copy-{name}", ServerSideEncryptionConfiguration={"Rules": [rule]})
    admin.put_object(Bucket="copy-registry", Key="models/m.tar.gz", Body=b"weights")
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{emu.region}.amazonaws.com"}}
    grants = [
        allow("s3:GetObject", "arn:aws:s3:::copy-registry/models/*"),
        allow("s3:PutObject", "arn:aws:s3:::copy-production/released/*"),
        allow("kms:GenerateDataKey", keys["production"], Condition=via_s3),
    ]
    copy = {"CopySource": {"Bucket": "copy-registry", "Key": "models/m.tar.gz"}, "Bucket": "copy-production"}
    without = _session(emu, _role(emu, "gh-copy-nokey", doc(*grants))).client(
        "s3", endpoint_url=emu.url, verify=str(emu.tls_files.ca)
    )
    with pytest.raises(ClientError) as refused:
        without.copy_object(Key="released/m.tar.gz", **copy)
    assert refused.value.response["Error"]["Code"] == "AccessDenied" and "kms:Decrypt" in str(refused.value)
    grants.append(allow("kms:Decrypt", keys["registry"], Condition=via_s3))
    s3 = _session(emu, _role(emu, "gh-copy", doc(*grants))).client(
        "s3", endpoint_url=emu.url, verify=str(emu.tls_files.ca)
    )
    s3.copy_object(Key="released/m.tar.gz", **copy)
    assert admin.get_object(Bucket="copy-production", Key="released/m.tar.gz")["Body"].read() == b"weights"
