"""Who may sign registrations: kms:Sign is the pipeline role's alone, in identity policies and in the
registration key's own policy (infra/bootstrap/signing.tf). A signature is what makes a registered
version promotable, so any other signer could register hashes of a model the pipeline never evaluated.

Each check returns (role, source, finding, detail) rows, as iam_rules.own_checks does.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from iam_rules import Role, _list, expand

SIGN = "kms:sign"


def _allows_sign(statement: dict[str, Any]) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        return SIGN not in expand(_list(statement["NotAction"]))
    return any(fnmatch.fnmatchcase(SIGN, str(a).lower()) for a in _list(statement.get("Action")))


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*" or "NotPrincipal" in statement:
        return ["*"]
    return [str(p) for p in _list((principal or {}).get("AWS") if isinstance(principal, dict) else principal)]


def signing_checks(roles: dict[str, Role], key_policies: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """A finding for every role but the pipeline's allowed kms:Sign, and for a key policy letting another sign."""
    pipelines = {name for name in roles if name.endswith("-pipeline")}
    rows: list[tuple[str, ...]] = []
    for role in roles.values():
        if role.name in pipelines:
            continue
        for statement in role.statements():
            if _allows_sign(statement):
                rows.append((role.name, "gate", "signs-registrations", statement.get("Sid", "?")))
    for policy in key_policies:
        for statement in _list(policy.get("Statement")):
            if not _allows_sign(statement):
                continue
            others = [p for p in _principals(statement) if p.rsplit("/", 1)[-1] not in pipelines]
            if others:
                rows.append(("(signing key)", "gate", "key-lets-others-sign", ", ".join(others)[:200]))
    return rows


def signing_key_policies(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The policies of the plan's signing keys (KeyUsage SIGN_VERIFY), which must be known at plan time."""
    found = []
    for res in resources:
        values = res.get("values", {})
        if res["type"] == "aws_kms_key" and values.get("key_usage") == "SIGN_VERIFY":
            if not isinstance(values.get("policy"), str) or not values["policy"]:
                raise ValueError("the signing key's policy is not known at plan time: build it from names")
            found.append(json.loads(values["policy"]))
    return found
