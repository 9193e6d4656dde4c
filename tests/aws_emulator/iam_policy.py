"""IAM's policy evaluation for one request: statements, wildcards, condition operators, boundaries.

The documented logic (IAM User Guide, "Policy evaluation logic"), for a principal of the same
account: an explicit Deny in any policy that applies ends it; otherwise the request needs an
Allow from an identity policy (or from the resource's own policy naming the principal) and, when
the role has a permissions boundary, an Allow from the boundary as well. Condition operators: the
String*, Arn*, Bool, Null and Numeric families, their IfExists forms and the ForAnyValue/ForAllValues
set qualifiers; a key absent from the request context makes a condition false (IfExists: true).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass
class Request:
    """What one authorization decides: the action, each resource ARN it touches, the context keys."""

    action: str  # service:Action
    resources: list[str]
    context: dict[str, list[str]] = field(default_factory=dict)
    principal: str = ""  # the caller's ARN (for resource policies)


@dataclass
class Decision:
    allowed: bool
    resource: str = ""  # the resource the decision failed on
    reason: str = ""  # "explicit deny in <policy>" or "no allow in <where>"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, case: bool) -> re.Pattern[str]:
    regex = re.escape(pattern).replace("\\*", ".*").replace("\\?", ".")
    return re.compile(f"^{regex}$", re.DOTALL if case else re.IGNORECASE | re.DOTALL)


def matches(pattern: str, value: str, case: bool = True) -> bool:
    return bool(_wildcard(pattern, case).match(value))


def _values_equal(op: str, want: str, got: str) -> bool:
    if op.startswith("StringEqualsIgnoreCase"):
        return want.lower() == got.lower()
    if op.startswith("StringEquals"):
        return want == got
    if op.startswith(("StringLike", "ArnLike", "ArnEquals")):
        return matches(want, got)
    if op.startswith("Bool"):
        return want.lower() == got.lower()
    if op.startswith("Numeric"):
        a, b = float(got), float(want)
        base = op.removesuffix("IfExists")
        return {
            "NumericEquals": a == b,
            "NumericLessThan": a < b,
            "NumericLessThanEquals": a <= b,
            "NumericGreaterThan": a > b,
            "NumericGreaterThanEquals": a >= b,
        }[base]
    raise ValueError(f"condition operator {op} is not emulated")


def condition_holds(op: str, key: str, wanted: list[str], context: dict[str, list[str]]) -> bool:
    present = {k.lower(): v for k, v in context.items()}
    got = present.get(key.lower())
    if op == "Null":
        return (got is None) == (str(wanted[0]).lower() == "true")
    qualifier, _, base = op.rpartition(":")
    negated = base.startswith(("StringNot", "ArnNot", "NumericNot"))
    positive = base.replace("Not", "", 1) if negated else base
    if got is None:
        return base.endswith("IfExists") or (qualifier == "ForAllValues")
    wanted = [str(w) for w in wanted]

    def one(value: str) -> bool:
        hit = any(_values_equal(positive, w, value) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAnyValue":
        return any(one(v) for v in got)
    if qualifier == "ForAllValues":
        return all(one(v) for v in got)
    return any(one(v) for v in got)


def _conditions_hold(statement: dict, context: dict[str, list[str]]) -> bool:
    for op, block in (statement.get("Condition") or {}).items():
        for key, wanted in block.items():
            if not condition_holds(op, key, _list(wanted), context):
                return False
    return True


def _principal_matches(statement: dict, principal: str) -> bool:
    spec = statement.get("Principal")
    if spec is None:
        return True
    if spec == "*":
        return True
    for kind, names in spec.items():
        for name in _list(names):
            if kind == "AWS" and (name == "*" or name == principal or _account_root(name, principal)):
                return True
    return False


def _account_root(name: str, principal: str) -> bool:
    account = principal.split(":")[4] if principal.count(":") >= 5 else ""
    return name in (account, f"arn:aws:iam::{account}:root")


def statement_applies(statement: dict, request: Request, resource: str, with_principal: bool = False) -> bool:
    if "Action" in statement:
        if not any(matches(a, request.action, case=False) for a in _list(statement["Action"])):
            return False
    elif "NotAction" in statement and any(
        matches(a, request.action, case=False) for a in _list(statement["NotAction"])
    ):
        return False
    if "Resource" in statement:
        if not any(matches(r, resource) for r in _list(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(matches(r, resource) for r in _list(statement["NotResource"])):
        return False
    if with_principal and not _principal_matches(statement, request.principal):
        return False
    return _conditions_hold(statement, request.context)


def statements(document: str | dict) -> list[dict]:
    doc = json.loads(document) if isinstance(document, str) else document
    return [s for s in _list(doc.get("Statement", [])) if isinstance(s, dict)]


def effect(
    documents: dict[str, str | dict], request: Request, resource: str, with_principal: bool = False
) -> tuple[str, str]:
    """("Deny", name) on an explicit deny, ("Allow", name) on an allow, ("", "") when nothing applies."""
    allowed = ""
    for name, document in documents.items():
        for statement in statements(document):
            if statement_applies(statement, request, resource, with_principal):
                if statement.get("Effect") == "Deny":
                    return "Deny", name
                allowed = allowed or name
    return ("Allow", allowed) if allowed else ("", "")


def decide(
    request: Request,
    identity: dict[str, str | dict],
    boundary: dict[str, str | dict] | None = None,
    resource_policies: dict[str, dict[str, str | dict]] | None = None,
) -> Decision:
    """Every resource of the request must be allowed (IAM authorizes each resource an operation names)."""
    for resource in request.resources or ["*"]:
        own = (resource_policies or {}).get(resource, {})
        found = [effect(identity, request, resource), effect(boundary or {}, request, resource)]
        found.append(effect(own, request, resource, with_principal=True))
        denied = next((name for verdict, name in found if verdict == "Deny"), None)
        if denied:
            return Decision(False, resource, f"explicit deny in {denied}")
        by_identity, by_resource = found[0][0] == "Allow", found[2][0] == "Allow"
        if not (by_identity or by_resource):
            return Decision(False, resource, "no identity-based policy allows it")
        if boundary is not None and by_identity and not by_resource and found[1][0] != "Allow":
            return Decision(False, resource, "the permissions boundary does not allow it")
    return Decision(True)
