"""The project's own IAM checks, for what field tools cannot see: who can escalate, who may change
production, who may assume the production role, what the retrain role can do, who may register or
approve a version, who may change the approval trigger's dispatch path, where production's endpoint
reads its model from.

Each check returns (role, source, finding, detail) rows; no rows means the property holds.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

CHANGE_LEVELS = {"Write", "Permissions management", "Tagging"}
GITHUB = "token.actions.githubusercontent.com"
# What the boundary must deny (IAM writes, hence also its own removal and replacement).
BOUNDARY_DENIES = (
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
)
# Writes that change no resource (telemetry, cryptographic use of a key), and AWS-owned resources.
NO_RESOURCE_WRITES = {
    "cloudwatch:putmetricdata",
    "xray:puttracesegments",
    "xray:puttelemetryrecords",
    "kms:decrypt",
    "kms:encrypt",
    "kms:generatedatakey",
}
AWS_OWNED = re.compile(r":wafv2:[^:]+:[^:]*:regional/managedruleset/")
# Resources of the environment that owns the registry whose names carry no environment: the one
# training pipeline, the jobs it starts (pipelines-*) and their log groups.
REGISTRY_OWNED = re.compile(
    r"pipeline/[a-z0-9-]+-training\b|job/pipelines-\*|/aws/sagemaker/(TrainingJobs|ProcessingJobs)"
)
ENV_KEYS = ("aws:resourcetag/environment", "aws:requesttag/environment")
# Roles assumed by services may start jobs (the pipeline passes itself to its own jobs).
APPROVAL_ACTIONS = {"sagemaker:updatemodelpackage"}
# The approval trigger's dispatch path (EventBridge sends the GitHub token to the API destination's URL):
# the bootstrap stack's alone; no role a workflow can act as may change it.
DISPATCH_ACTIONS = {
    f"events:{a}"
    for a in ("putrule", "deleterule", "puttargets", "removetargets", "createapidestination", "updateapidestination",
              "deleteapidestination", "createconnection", "updateconnection", "deleteconnection")
}  # fmt: skip
# Registering a version: only as PendingManualApproval (a condition on the request), for every role.
REGISTER_ACTIONS = {"sagemaker:createmodelpackage"}
PENDING_ONLY = {"PendingManualApproval"}
RETRAIN_CHANGES = {"sagemaker:startpipelineexecution"}
# What an endpoint's container reads (its model, and the key that decrypts it): production's serves only
# production's own copies, which no staging role nor the pipeline can write.
SERVING_READS = {"s3:getobject", "kms:decrypt"}


@dataclass
class Role:
    name: str
    trust: dict[str, Any]
    boundary: str
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)

    def statements(self, effect: str = "Allow") -> Iterator[dict[str, Any]]:
        for doc in self.policies.values():
            for st in _list(doc.get("Statement")):
                if st.get("Effect") == effect:
                    yield st

    @property
    def federated(self) -> bool:
        return any(
            GITHUB in str(p) for st in _list(self.trust.get("Statement")) for p in _list(st.get("Principal", {}))
        )


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.values()) if "Federated" in value or "Service" in value or "AWS" in value else [value]
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=1)
def _catalog() -> dict[str, str]:
    """Every known action (lower case) and its access level, from policy_sentry's database."""
    from policy_sentry.querying.actions import get_action_data
    from policy_sentry.querying.all import get_all_actions

    levels: dict[str, str] = {}
    for action in get_all_actions():
        service, name = action.split(":", 1)
        for row in (get_action_data(service, name) or {}).get(service, []):
            levels[row["action"].lower()] = row["access_level"]
    return levels


def expand(patterns: list[str]) -> set[str]:
    catalog = _catalog()
    out: set[str] = set()
    for pattern in patterns:
        low = pattern.lower()
        matched = {a for a in catalog if fnmatch.fnmatchcase(a, low)} if "*" in low or "?" in low else {low}
        out |= matched
    return out


def changes(statement: dict[str, Any]) -> set[str]:
    """The actions of an Allow statement that change something (Write, Permissions, Tagging)."""
    catalog = _catalog()
    if "NotAction" in statement:
        excluded = expand(_list(statement["NotAction"]))
        return {a for a, level in catalog.items() if level in CHANGE_LEVELS and a not in excluded}
    return {a for a in expand(_list(statement.get("Action"))) if catalog.get(a, "Write") in CHANGE_LEVELS}


def _condition_values(statement: dict[str, Any], keys: tuple[str, ...]) -> set[str] | None:
    found: set[str] | None = None
    for operator, pairs in (statement.get("Condition") or {}).items():
        if not operator.startswith(("StringEquals", "ForAnyValue:StringEquals", "ForAllValues:StringEquals")):
            continue
        if operator.endswith("IfExists"):
            continue
        for key, values in pairs.items():
            if key.lower() in keys:
                found = (found or set()) | set(_list(values))
    return found


def environments(statement: dict[str, Any], project: str, registry: str = "staging") -> set[str]:
    """The environments whose resources a statement reaches; {"*"} when it is not scoped to one."""
    envs: set[str] = set()
    tagged = _condition_values(statement, ENV_KEYS)
    aliases = _condition_values(statement, ("kms:resourcealiases",))
    if aliases is not None:
        tagged = (tagged or set()) | {a.split(f"alias/{project}-", 1)[-1] for a in aliases}
    if "NotResource" in statement:
        return {"*"}
    for resource in _list(statement.get("Resource")):
        named = re.search(rf"{project}[-/](staging|production)\b", resource)
        if named:
            envs.add(named.group(1))
        elif AWS_OWNED.search(resource):
            continue
        elif REGISTRY_OWNED.search(resource):
            envs.add(registry)
        elif tagged is not None:
            envs |= tagged
        else:
            envs.add("*")
    return envs


def _pattern_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def own_checks(roles: dict[str, Role], boundary: dict[str, Any], repository: str, branch: str) -> list[tuple]:
    project = next(iter(roles)).split("-", 1)[0] if roles else "catdog"
    production_role = f"{project}-github-deploy-production"
    retrain_role = f"{project}-github-retrain"
    promote_subject = (
        f"repo:{repository}:environment:production:job_workflow_ref:"
        f"{repository}/.github/workflows/promote.yml@refs/heads/{branch}"
    )
    rows: list[tuple] = []
    denied = [
        p for st in _list(boundary.get("Statement")) if st.get("Effect") == "Deny" for p in _list(st.get("Action"))
    ]
    for action in BOUNDARY_DENIES:
        if not any(_pattern_matches(p, action) for p in denied):
            rows.append(("(boundary)", "boundary", "does-not-deny", action))
    boundary_arn = next((r.boundary for r in roles.values() if r.boundary.endswith(f"policy/{project}-boundary")), "")

    reachable = _reachable(roles, project)
    for role in roles.values():
        if role.boundary != boundary_arn or not boundary_arn:
            rows.append((role.name, "boundary", "missing-boundary", role.boundary or "none"))
        rows.extend((role.name, *row) for row in _trust_rows(role, production_role, promote_subject))
        for st in role.statements():
            writes = changes(st)
            iam_writes = sorted(a for a in writes if a.startswith("iam:") and a != "iam:passrole")
            if iam_writes:
                rows.append((role.name, "escalation", "iam-write", ", ".join(iam_writes[:6])))
            sts = sorted(a for a in expand(_list(st.get("Action"))) if a.startswith("sts:assumerole"))
            if sts:
                rows.append((role.name, "escalation", "assumes-other-roles", ", ".join(sts)))
            if "iam:passrole" in writes or "iam:passrole" in expand(_list(st.get("Action"))):
                rows.extend((role.name, "escalation", *r) for r in _passrole_rows(st, role, roles, project))
            reach = environments(st, project)
            effective = {a for a in writes if a not in NO_RESOURCE_WRITES and a != "iam:passrole"}
            if (
                role.name in reachable
                and effective
                and reach & {"*", "production"}
                and not _is_production(role.name, project)
            ):
                where = ",".join(sorted(reach))
                rows.append((role.name, "production", "changes-production", f"{st.get('Sid', '?')} ({where})"))
            if effective & APPROVAL_ACTIONS and role.name != production_role:
                rows.append((role.name, "gate", "approves-versions", st.get("Sid", "?")))
            if role.name in reachable and effective & DISPATCH_ACTIONS:
                found = ", ".join(sorted(effective & DISPATCH_ACTIONS))[:200]
                rows.append((role.name, "gate", "changes-dispatch", found))
            if (
                effective & REGISTER_ACTIONS
                and _condition_values(st, ("sagemaker:modelapprovalstatus",)) != PENDING_ONLY
            ):
                rows.append((role.name, "gate", "registers-approved", st.get("Sid", "?")))
            reads = expand(_list(st.get("Action"))) & SERVING_READS
            if role.name == f"{project}-production-inference" and reads and reach != {"production"}:
                rows.append(
                    (
                        role.name,
                        "production",
                        "serves-from-elsewhere",
                        f"{st.get('Sid', '?')} ({','.join(sorted(reach))})",
                    )
                )
            if role.name == retrain_role and effective - RETRAIN_CHANGES:
                rows.append((role.name, "retrain", "can-deploy", ", ".join(sorted(effective - RETRAIN_CHANGES))[:200]))
    return rows


def _passable(st: dict[str, Any], roles: dict[str, Role]) -> set[str]:
    if "iam:passrole" not in expand(_list(st.get("Action"))):
        return set()
    return {
        r.name
        for resource in _list(st.get("Resource"))
        for r in roles.values()
        if fnmatch.fnmatchcase(f"role/{r.name}", resource.split(":", 5)[-1])
    }


def _reachable(roles: dict[str, Role], project: str) -> set[str]:
    """Roles a workflow can act as: the GitHub roles and every role they can pass, transitively."""
    seen = {r.name for r in roles.values() if r.federated}
    frontier = list(seen)
    while frontier:
        role = roles[frontier.pop()]
        for st in role.statements():
            for name in _passable(st, roles) - seen:
                seen.add(name)
                frontier.append(name)
    return seen


def _is_production(name: str, project: str) -> bool:
    return name in (f"{project}-github-deploy-production",) or name.startswith(f"{project}-production-")


def _trust_rows(role: Role, production_role: str, promote_subject: str) -> Iterator[tuple[str, str, str]]:
    if not role.federated:
        return
    statements = _list(role.trust.get("Statement"))
    if len(statements) != 1:
        yield ("trust", "several-statements", str(len(statements)))
        return
    condition = statements[0].get("Condition") or {}
    equals = condition.get("StringEquals", {})
    if set(condition) != {"StringEquals"} or set(equals) != {f"{GITHUB}:aud", f"{GITHUB}:sub"}:
        yield ("trust", "aud-and-sub-not-pinned", ",".join(sorted(condition)))
        return
    subjects = _list(equals[f"{GITHUB}:sub"])
    if _list(equals[f"{GITHUB}:aud"]) != ["sts.amazonaws.com"]:
        yield ("trust", "audience", str(equals[f"{GITHUB}:aud"]))
    if len(subjects) != 1 or any(c in s for s in subjects for c in "*?"):
        yield ("trust", "several-subjects", ", ".join(subjects))
    if role.name == production_role and subjects != [promote_subject]:
        yield ("trust", "production-not-gated", ", ".join(subjects))
    if role.name != production_role and any(":environment:production" in s for s in subjects):
        yield ("trust", "production-subject-elsewhere", ", ".join(subjects))


def _passrole_rows(st: dict[str, Any], role: Role, roles: dict[str, Role], project: str) -> Iterator[tuple]:
    passed_to = (st.get("Condition") or {}).get("StringEquals", {}).get("iam:PassedToService")
    resources = _list(st.get("Resource"))
    if not passed_to:
        yield ("passrole-any-service", st.get("Sid", "?"))
    for resource in resources:
        targets = [r for r in roles.values() if fnmatch.fnmatchcase(f"role/{r.name}", resource.split(":", 5)[-1])]
        if "*" in resource or not targets:
            yield ("passrole-wildcard", resource)
        for target in targets:
            if target.federated:
                yield ("passrole-github-role", target.name)
            if _is_production(target.name, project) and not _is_production(role.name, project):
                yield ("passrole-production-role", target.name)
