"""Which IAM action an API operation needs and on which resource ARNs: policy_sentry's service database.

policy_sentry ships AWS's Service Authorization Reference as data: every action, the resource types
it is authorized on (with their ARN formats) and its condition keys, with a link to the API
operation it authorizes. An operation maps to the action of the same name, else to the action whose
documentation link names it; OPERATIONS lists the few it words otherwise (Lambda's Invoke).
A resource ARN is the resource type's format
filled in from the request's parameters (or the parameter itself when it is an ARN); a variable the
request does not name leaves the resource as `*`, which only a policy granting `*` allows.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from policy_sentry.shared.iam_data import get_service_prefix_data

# botocore service name → IAM service prefix, where they differ.
PREFIXES = {"sagemaker-runtime": "sagemaker", "monitoring": "cloudwatch", "ecr-public": "ecr-public"}
# Operations whose IAM action is not the action of the same name or the one its API page documents.
# (S3's REST requests are read by iam_s3, which names their actions itself.)
OPERATIONS: dict[tuple[str, str], list[str]] = {
    ("lambda", "Invoke"): ["InvokeFunction"],
    ("cloudfront", "CreateDistributionWithTags"): ["CreateDistribution", "TagResource"],
    # No action of its own: each item is authorized as its own action (iam_conditions.implied).
    ("dynamodb", "TransactWriteItems"): [],
}
# Calls no IAM policy can refuse.
UNAUTHORIZED = {("sts", "GetCallerIdentity")}
# ARN variables that a request names under another parameter (first found wins).
VARIABLES = {
    "BucketName": ["Bucket"],
    "ObjectName": ["Key"],
    "KeyId": ["KeyId", "TargetKeyId"],
    "AliasName": ["AliasName"],
    "LogGroupName": ["logGroupName", "logGroupIdentifier"],
    "TopicName": ["TopicArn", "Name"],
    "FunctionName": ["FunctionName"],
    "AlarmName": ["AlarmName", "AlarmNames", "AlarmNamePrefix"],
    "ModelPackageGroupName": ["ModelPackageGroupName"],
    "ModelPackageName": ["ModelPackageName", "ModelPackageArn"],
    "PipelineName": ["PipelineName"],
    "RepositoryName": ["repositoryName", "repositoryNames"],
    "RoleNameWithPath": ["RoleName"],
    "DistributionId": ["Id", "DistributionId"],
    "RuleName": ["Name", "Rule"],
    "ConnectionName": ["Name"],
    "ApiDestinationName": ["Name"],
    "Name": ["Name"],
    "Id": ["Id"],
}


@cache
def _service(prefix: str) -> dict[str, Any]:
    return get_service_prefix_data(prefix)


@cache
def _documented(prefix: str) -> dict[str, str]:
    """Operation name → the action whose documentation link is that operation's API page."""
    found: dict[str, str] = {}
    for name, privilege in _service(prefix)["privileges"].items():
        page = re.search(r"API_([A-Za-z0-9]+)\.html", privilege.get("api_documentation_link") or "")
        if page:
            found.setdefault(page.group(1), name)
    return found


def prefix_of(service: str) -> str:
    return PREFIXES.get(service, service)


def actions_for(service: str, operation: str) -> list[str]:
    """The IAM actions (without prefix) that `operation` of `service` is authorized as; [] if none."""
    if (service, operation) in UNAUTHORIZED:
        return []
    if (service, operation) in OPERATIONS:
        return OPERATIONS[(service, operation)]
    prefix = prefix_of(service)
    privileges = _service(prefix)["privileges"]
    if operation in privileges:
        return [operation]
    documented = _documented(prefix).get(operation)
    if documented:
        return [documented]
    raise LookupError(f"no IAM action of {prefix} authorizes {operation}")


def _find(params: dict[str, Any], names: list[str]) -> str | None:
    lowered = {k.lower(): v for k, v in params.items()}
    for name in names:
        value = lowered.get(name.lower())
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value:
            return value
    return None


def _fill(template: str, params: dict[str, Any], region: str, account: str) -> str | None:
    filled = template.replace("${Partition}", "aws").replace("${Region}", region).replace("${Account}", account)
    for variable in re.findall(r"\$\{([A-Za-z0-9]+)\}", filled):
        value = _find(params, VARIABLES.get(variable, [variable]))
        if value is None:
            return None
        if value.startswith("arn:"):
            value = value.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if variable.endswith("Name") else value
        filled = filled.replace("${" + variable + "}", value)
    return filled


def _as_arn(params: dict[str, Any], template: str) -> str | None:
    """A parameter that already is an ARN of this resource type (same service, same resource lead)."""
    _, _, service, _, _, resource = template.split(":", 5)
    lead = resource.split("${", 1)[0]
    for value in params.values():
        if lead and isinstance(value, str) and value.startswith("arn:"):
            parts = value.split(":", 5)
            if len(parts) == 6 and parts[2] == service and parts[5].startswith(lead):
                return value
    return None


def resources_for(prefix: str, action: str, params: dict[str, Any], region: str, account: str) -> list[str]:
    """The ARNs `action` is authorized on for this request: one per resource type the request names."""
    service = _service(prefix)
    privilege = service["privileges"][action]
    found: list[str] = []
    for type_name in privilege["resource_types"]:
        if not type_name:
            continue
        template = service["resources"][type_name.rstrip("*")]["arn"]
        arn = _as_arn(params, template) or _fill(template, params, region, account)
        if arn and arn not in found:
            found.append(arn)
    return found or ["*"]
