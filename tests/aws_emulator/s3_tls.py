"""aws:SecureTransport in S3 bucket policies: true exactly when the request came over TLS.

S3 evaluates a bucket policy's conditions against the request context; `aws:SecureTransport` is
"true" for HTTPS requests and "false" for plain HTTP, so the usual TLS-only statement (Deny
everything when aws:SecureTransport is false) denies HTTP and lets HTTPS through. moto 5.2.5 only
evaluates StringEquals and treats any other operator as matching, so that Deny matched every
request. Here `Bool` compares case-insensitively against the request's value, and a `Bool` on a key
the request does not carry does not match (as in IAM).
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam import access_control, policy_conditions

from aws_emulator import context


def _bool(expected: Any, actual: str) -> bool:
    values = expected if isinstance(expected, list) else [expected]
    return str(actual).lower() in {str(v).lower() for v in values}


_original_verify = policy_conditions.TrustCondition.verify_condition


def verify_condition(self: Any, actual_values: list[str]) -> bool:
    if self._condition == "Bool" and len(actual_values) < len(self._expected_value_source):
        return False  # a key the request does not carry: the condition does not match
    return _original_verify(self, actual_values)


def get_permission(self: Any, action: str, resource: str) -> Any:
    """Replaces FakeBucket.get_permission: the policy is evaluated with the request's transport.

    A statement whose condition does not match does not apply (moto answered DENIED for it)."""
    result = access_control.PermissionResult
    if self.policy is None:
        return result.NEUTRAL
    values = {"aws:SecureTransport": "true" if context.is_secure() else "false"}
    statements = json.loads(self.policy.decode())["Statement"]
    permitted = False
    for raw in statements if isinstance(statements, list) else [statements]:
        statement = access_control.IAMPolicyStatement(raw)
        if raw.get("Condition") and not statement._check_conditions(values):
            continue
        verdict = statement.is_action_permitted(action, resource, incoming_condition_values=values)
        if verdict == result.DENIED:
            return verdict
        permitted = permitted or verdict == result.PERMITTED
    return result.PERMITTED if permitted else result.NEUTRAL


def install() -> None:
    from moto.s3.models import FakeBucket

    policy_conditions.CONDITION_OPERATIONS["Bool"] = _bool
    from aws_emulator.patches import emulated

    policy_conditions.TrustCondition.verify_condition = emulated(verify_condition, _original_verify)  # type: ignore[method-assign]
    FakeBucket.get_permission = emulated(get_permission, FakeBucket.get_permission)  # type: ignore[method-assign]
