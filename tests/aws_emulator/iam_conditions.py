"""What IAM knows about a request besides its action: resource ARNs, condition keys, implied checks.

- resource ARNs the catalog cannot fill from parameters alone (Lambda qualifiers, API Gateway paths,
  KMS aliases resolved to their key, CloudWatch Logs group ARNs);
- condition keys: aws:SecureTransport, aws:PrincipalArn, aws:RequestTag/* and aws:TagKeys from the
  request, aws:ResourceTag/* from the resource (KMS keys, API Gateway APIs, usage plans and keys,
  CloudFront distributions), s3:prefix, kms:ResourceAliases, cloudwatch:namespace,
  sagemaker:ModelApprovalStatus;
- the checks AWS makes on the caller's behalf: each item of a DynamoDB TransactWriteItems as its own
  action on its table; iam:PassRole (with iam:PassedToService) for every
  role ARN a request hands to a service, and kms:Decrypt / kms:GenerateDataKey with kms:ViaService
  when S3 reads or writes an object encrypted with a KMS key;
- resource-based policies: bucket policies and key policies.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from aws_emulator import iam_catalog
from aws_emulator.iam_principals import ACCOUNT, Principal

REGION = "eu-west-1"
SERVICE_PRINCIPALS = {"sagemaker": "sagemaker.amazonaws.com", "lambda": "lambda.amazonaws.com",
                      "events": "events.amazonaws.com", "apigateway": "apigateway.amazonaws.com"}  # fmt: skip
# TransactWriteItems: each item is authorized as the action it performs.
TRANSACT_ACTIONS = {"ConditionCheck": "ConditionCheckItem", "Put": "PutItem", "Update": "UpdateItem",
                    "Delete": "DeleteItem"}  # fmt: skip
ROLE_PARAM = re.compile(r"(^|[a-z])(Role|RoleArn|ExecutionRoleArn)$")


def _backend(name: str) -> Any:
    from moto.backends import get_backend

    backend = get_backend(name)[ACCOUNT]  # type: ignore[call-overload]
    return backend["global"] if name in ("cloudfront", "s3") else backend[REGION]


def _kms_key_arn(key_id: str) -> str | None:
    try:
        raw = _backend("kms").any_id_to_key_id(key_id)
    except Exception:
        return None
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{raw}" if raw else None


def resources(prefix: str, action: str, operation: str, params: dict[str, Any], principal: Principal) -> list[str]:
    if prefix == "apigateway":
        return [f"arn:aws:apigateway:{REGION}::{params['__path__']}"]
    if prefix == "lambda" and params.get("FunctionName"):
        name = str(params["FunctionName"])
        if not name.startswith("arn:"):
            name = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        qualifier = params.get("Qualifier")
        if qualifier and name.count(":") == 6:
            name += f":{qualifier}"
        if operation in ("CreateAlias", "UpdateAlias", "DeleteAlias", "GetAlias", "PublishVersion", "ListAliases"):
            name = ":".join(name.split(":")[:7])
        return [name]
    if prefix == "kms" and (params.get("KeyId") or params.get("TargetKeyId")):
        found = [arn for arn in [_kms_key_arn(str(params.get("KeyId") or params.get("TargetKeyId")))] if arn]
        if params.get("AliasName"):
            found.append(f"arn:aws:kms:{REGION}:{ACCOUNT}:{params['AliasName']}")
        return found or ["*"]
    if prefix == "logs":
        group = params.get("logGroupName") or params.get("logGroupIdentifier")
        if group:
            return [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{str(group).split(':log-group:')[-1]}:*"]
    if prefix == "sagemaker" and operation == "ListModelPackages" and params.get("ModelPackageGroupName"):
        group = str(params["ModelPackageGroupName"]).rsplit("/", 1)[-1]  # a group's versions, by name or ARN
        return [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/*"]
    if prefix == "wafv2" and params.get("WebACLArn"):
        return [str(params["WebACLArn"])]
    if prefix == "wafv2" and operation == "GetWebACLForResource":
        acl = _backend("wafv2").get_web_acl_for_resource(str(params.get("ResourceArn")))
        return [acl.arn] if acl is not None else ["*"]
    named = next(
        (v for k, v in params.items() if k.lower() in ("resourcearn", "resource") and str(v).startswith("arn:")), None
    )
    if named and (action.endswith(("TagsForResource", "TagResource", "Tags")) or prefix in ("wafv2", "sns")):
        return [str(named)]
    if prefix == "wafv2" and params.get("Name"):
        scope = "global" if params.get("Scope") == "CLOUDFRONT" else "regional"
        kind = {"ManagedRuleGroup": "managedruleset"}.get(operation, "webacl")
        return [f"arn:aws:wafv2:{REGION}:{ACCOUNT}:{scope}/{kind}/{params['Name']}/{params.get('Id') or '*'}"]
    if prefix == "cloudwatch" and isinstance(params.get("AlarmNames"), list) and params["AlarmNames"]:
        return [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}" for name in params["AlarmNames"]]
    return iam_catalog.resources_for(prefix, action, params, REGION, ACCOUNT)


def request_tags(params: dict[str, Any]) -> dict[str, str]:
    """Tags a request sets, in any of the shapes services use (map, Key/Value, TagKey/TagValue, nested)."""
    found: dict[str, str] = {}

    def visit(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if key.lower() in ("tags", "taglist") and all(isinstance(v, str) for v in node.values()):
                found.update(node)
                return
            pair = _pair(node)
            if pair and key.lower() in ("tags", "taglist", "items", ""):
                found[pair[0]] = pair[1]
                return
            for k, v in node.items():
                visit(v, k)
        elif isinstance(node, list):
            for item in node:
                pair = _pair(item) if key.lower() in ("tags", "taglist", "items") else None
                if pair:
                    found[pair[0]] = pair[1]
                else:
                    visit(item, key)

    visit({k: v for k, v in params.items() if not k.startswith("__")})
    return found


def _pair(node: Any) -> tuple[str, str] | None:
    if not isinstance(node, dict):
        return None
    for k, v in (("Key", "Value"), ("TagKey", "TagValue"), ("key", "value")):
        if k in node and isinstance(node.get(k), str):
            return node[k], str(node.get(v, ""))
    return None


def resource_tags(arn: str) -> dict[str, str] | None:
    """The tags of an existing resource (None: not a resource whose tags the emulator reads)."""
    try:
        if ":kms:" in arn and ":key/" in arn:
            tags = _backend("kms").list_resource_tags(arn.rsplit("/", 1)[-1])["Tags"]
            return {t["TagKey"]: t["TagValue"] for t in tags}
        if arn.startswith("arn:aws:cloudfront::"):
            return {t["Key"]: t["Value"] for t in _backend("cloudfront").list_tags_for_resource(arn)["Tags"]}
        if ":apigateway:" in arn:
            return _apigateway_tags(arn.split("::", 1)[1])
    except Exception:
        return {}
    return None


def _apigateway_tags(path: str) -> dict[str, str]:
    backend = _backend("apigateway")
    if path.startswith("/tags/"):
        return _apigateway_tags(unquote(path[len("/tags/") :]).split("::", 1)[-1])
    parts = path.strip("/").split("/")
    if len(parts) >= 2:
        kind, ident = parts[0], parts[1]
        table = {"restapis": backend.apis, "usageplans": backend.usage_plans, "apikeys": backend.keys}.get(kind, {})
        item = table.get(ident)
        if item is not None:
            tags = item.get("tags") if isinstance(item, dict) else getattr(item, "tags", None)
            return dict(tags or {})
    return {}


def context(prefix: str, action: str, operation: str, params: dict[str, Any], principal: Principal,
            secure: bool, arns: list[str]) -> dict[str, list[str]]:  # fmt: skip
    found: dict[str, list[str]] = {"aws:SecureTransport": [str(secure).lower()], "aws:PrincipalArn": [principal.arn],
                                   "aws:PrincipalAccount": [ACCOUNT]}  # fmt: skip
    tags = request_tags(params)
    if tags:
        found["aws:TagKeys"] = list(tags)
        found.update({f"aws:RequestTag/{k}": [v] for k, v in tags.items()})
    for arn in arns:
        for key, value in (resource_tags(arn) or {}).items():
            found[f"aws:ResourceTag/{key}"] = [value]
        if prefix == "kms" and ":key/" in arn:
            aliases = _backend("kms").list_aliases(arn.rsplit("/", 1)[-1])
            found["kms:ResourceAliases"] = [a.alias_name for a in aliases]
    if prefix == "s3" and "Prefix" in params:
        found["s3:prefix"] = [str(params.get("Prefix") or "")]
    if prefix == "cloudwatch" and params.get("Namespace"):
        found["cloudwatch:namespace"] = [str(params["Namespace"])]
    if prefix == "sagemaker" and params.get("ModelApprovalStatus"):  # Create/UpdateModelPackage
        found["sagemaker:ModelApprovalStatus"] = [str(params["ModelApprovalStatus"])]
    return found


def _role_arns(node: Any, key: str = "") -> list[str]:
    if isinstance(node, dict):
        return [arn for k, v in node.items() for arn in _role_arns(v, k)]
    if isinstance(node, list):
        return [arn for item in node for arn in _role_arns(item, key)]
    if isinstance(node, str) and ROLE_PARAM.search(key) and node.startswith("arn:aws:iam::") and ":role/" in node:
        return [node]
    return []


def _object_key_arn(bucket: str, key: str, writing: bool) -> str | None:
    s3 = _backend("s3")
    try:
        if not writing:
            obj = s3.get_object(bucket, key)
            return (
                _kms_key_arn(obj.kms_key_id)
                if obj is not None and obj.encryption == "aws:kms" and obj.kms_key_id
                else None
            )
        rule = (s3.get_bucket(bucket).encryption or {}).get("Rule", {})
        default = rule.get("ApplyServerSideEncryptionByDefault", {}) if isinstance(rule, dict) else {}
        if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
            return _kms_key_arn(default["KMSMasterKeyID"])
    except Exception:
        return None
    return None


def implied(service: str, operation: str, params: dict[str, Any], principal: Principal,
            secure: bool) -> list[tuple[str, list[str], dict[str, list[str]]]]:  # fmt: skip
    """The checks a service makes for the caller while it carries out the call."""
    checks: list[tuple[str, list[str], dict[str, list[str]]]] = []
    passed_to = SERVICE_PRINCIPALS.get(iam_catalog.prefix_of(service))
    if passed_to and not operation.startswith(("Describe", "Get", "List")):
        for role in dict.fromkeys(_role_arns({k: v for k, v in params.items() if not k.startswith("__")})):
            checks.append(
                ("iam:PassRole", [role], {"iam:PassedToService": [passed_to], "aws:PrincipalArn": [principal.arn]})
            )
    if service == "dynamodb" and operation == "TransactWriteItems":
        for item in params.get("TransactItems") or []:
            for kind, body in item.items():
                table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{body.get('TableName', '')}"
                checks.append((f"dynamodb:{TRANSACT_ACTIONS[kind]}", [table], {"aws:PrincipalArn": [principal.arn]}))
    objects: list[tuple[str, str, bool]] = []  # (bucket, key, written) of each object the call reads or writes
    if service == "s3" and params.get("CopySourceBucket"):
        source = f"arn:aws:s3:::{params['CopySourceBucket']}/{params['CopySourceKey']}"
        checks.append(("s3:GetObject", [source], {"aws:PrincipalArn": [principal.arn]}))
        objects.append((str(params["CopySourceBucket"]), str(params["CopySourceKey"]), False))  # S3 decrypts it
    if service == "s3" and params.get("Bucket") and params.get("Key"):
        writing = operation in ("PutObject", "CreateMultipartUpload", "CopyObject")
        if writing or operation == "GetObject":
            objects.append((str(params["Bucket"]), str(params["Key"]), writing))
    for bucket, key, writing in objects:
        key_arn = _object_key_arn(bucket, key, writing)
        if key_arn:
            aliases = [a.alias_name for a in _backend("kms").list_aliases(key_arn.rsplit("/", 1)[-1])]
            ctx = {"kms:ViaService": [f"s3.{REGION}.amazonaws.com"], "kms:ResourceAliases": aliases,
                   "kms:CallerAccount": [ACCOUNT], "aws:PrincipalArn": [principal.arn]}  # fmt: skip
            checks.append(("kms:GenerateDataKey" if writing else "kms:Decrypt", [key_arn], ctx))
    return checks


def resource_policies(arns: list[str]) -> dict[str, dict[str, str]]:
    """The bucket policy of each S3 ARN's bucket (explicit denies there apply to every caller)."""
    found: dict[str, dict[str, str]] = {}
    for arn in arns:
        if arn.startswith("arn:aws:s3:::"):
            bucket = arn[len("arn:aws:s3:::") :].split("/", 1)[0]
            try:
                policy = _backend("s3").get_bucket(bucket).policy
            except Exception:
                policy = None
            if policy:
                found[arn] = {f"bucket policy of {bucket}": json.loads(policy)}
    return found
