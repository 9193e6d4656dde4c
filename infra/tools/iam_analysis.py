"""Analyse the IAM roles a Terraform plan creates: field tools plus the project's own checks.

Run with the IAM tools' virtualenv (`make iam-tools`: cloudsplaining, parliament, policy_sentry):
    python infra/tools/iam_analysis.py PLAN.json [--json]
PLAN.json is `terraform show -json` of a plan of infra/bootstrap. Prints the findings table and
exits 1 when it is not empty. cloudsplaining and parliament see actions without resource
constraints and malformed statements; the project's checks (iam_rules.py) see what they cannot:
escalation through IAM writes or PassRole, who may change production, who may assume what, and who
may sign registrations (iam_signing.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from iam_rules import Role, own_checks
from iam_signing import signing_checks, signing_key_policies

# cloudsplaining risk categories that are findings; the others describe what a deploy role is for
# (it modifies infrastructure and writes resource policies of its own environment's resources).
FINDING_CATEGORIES = ("PrivilegeEscalation", "CredentialsExposure", "ServiceWildcard")
INFO_CATEGORIES = ("ResourceExposure", "DataExfiltration", "InfrastructureModification")
MANAGED_POLICY_CHARS = 6144
INLINE_POLICY_CHARS = 10240
# Actions that exist only without resource constraints and that a role needs as such: an ECR
# registry token (the pulls and pushes themselves are limited to the project's repository).
CLOUDSPLAINING_EXCLUSIONS = {"exclude-actions": ["ecr:GetAuthorizationToken"]}
# parliament issues that are findings: malformed or invalid statements. Its MEDIUM and LOW issues
# are counted, not failed on: they come from its action database lagging behind AWS (condition keys
# such as kms:ResourceAliases, newer actions, GitHub as a federation source) and from actions that
# need two resources granted in two statements (kms:CreateAlias on the alias and on the key).
PARLIAMENT_SEVERITIES = ("CRITICAL", "HIGH")


def _resources(module: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(module.get("resources", []))
    for child in module.get("child_modules", []):
        found.extend(_resources(child))
    return found


def _document(value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or not value:
        raise ValueError("a policy is not known at plan time: build it from names, not computed attributes")
    return json.loads(value)


def roles_from_plan(plan: dict[str, Any]) -> tuple[dict[str, Role], dict[str, dict[str, Any]]]:
    """The roles (trust, boundary, identity policies) and the managed policies by ARN, from a plan."""
    resources = _resources(plan["planned_values"]["root_module"])
    roles: dict[str, Role] = {}
    policies: dict[str, dict[str, Any]] = {}
    by_name: dict[str, dict[str, Any]] = {}
    for res in resources:
        values = res.get("values", {})
        if res["type"] == "aws_iam_role":
            roles[values["name"]] = Role(
                name=values["name"],
                trust=_document(values["assume_role_policy"]),
                boundary=values.get("permissions_boundary") or "",
            )
        elif res["type"] == "aws_iam_policy":
            by_name[values["name"]] = _document(values["policy"])
    for name, doc in by_name.items():
        policies[name] = doc
    for res in resources:
        values = res.get("values", {})
        if res["type"] == "aws_iam_role_policy":
            roles[values["role"]].policies[f"inline:{values['name']}"] = _document(values["policy"])
        elif res["type"] == "aws_iam_role_policy_attachment":
            name = values["policy_arn"].rsplit("/", 1)[-1]
            if values["policy_arn"].startswith("arn:aws:iam::aws:policy/"):
                raise ValueError(f"{values['role']}: AWS managed policy {name} (write a scoped policy instead)")
            roles[values["role"]].policies[name] = policies[name]
    return roles, policies


def _items(category: Any) -> list[Any]:
    """A cloudsplaining category's findings: {"severity", "description", "findings": [...]} or a list."""
    if isinstance(category, dict):
        return list(category.get("findings") or [])
    return list(category or [])


def cloudsplaining_findings(role: Role) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    from cloudsplaining.command.scan_policy_file import scan_policy

    findings, info = [], dict.fromkeys(INFO_CATEGORIES, 0)
    for name, doc in role.policies.items():
        result = scan_policy(doc, exclusions_config=CLOUDSPLAINING_EXCLUSIONS)
        for category in FINDING_CATEGORIES:
            for item in _items(result.get(category)):
                detail = item if isinstance(item, str) else json.dumps(item, sort_keys=True)
                findings.append(("cloudsplaining", category, f"{name}: {detail}"))
        for category in INFO_CATEGORIES:
            info[category] += len(_items(result.get(category)))
    return findings, info


def parliament_findings(role: Role, info: dict[str, int]) -> list[tuple[str, str, str]]:
    """parliament on the identity policies (trust policies are the project's checks' business)."""
    from parliament import analyze_policy_string, enhance_finding

    found = []
    for name, doc in role.policies.items():
        for raw in analyze_policy_string(json.dumps(doc), ignore_private_auditors=True).findings:
            finding = enhance_finding(raw)
            severity = str(finding.severity).upper()
            if severity in PARLIAMENT_SEVERITIES:
                found.append(("parliament", finding.issue, f"{name}: {finding.detail}"))
            else:
                info[f"parliament {severity or 'INFO'}"] = info.get(f"parliament {severity or 'INFO'}", 0) + 1
    return found


def analyse(plan: dict[str, Any], repository: str, branch: str) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    roles, policies = roles_from_plan(plan)
    boundary = policies.get(next((n for n in policies if n.endswith("-boundary")), ""), {})
    rows: list[tuple[str, ...]] = list(own_checks(roles, boundary, repository, branch))
    rows += signing_checks(roles, signing_key_policies(_resources(plan["planned_values"]["root_module"])))
    # AWS quotas (characters without whitespace): an apply would fail on real AWS, not on an emulator.
    for name, doc in policies.items():
        if len(json.dumps(doc, separators=(",", ":"))) > MANAGED_POLICY_CHARS:
            rows.append(("(policy)", "quota", "managed-policy-too-large", name))
    for role in roles.values():
        inline = [d for n, d in role.policies.items() if n.startswith("inline:")]
        if sum(len(json.dumps(d, separators=(",", ":"))) for d in inline) > INLINE_POLICY_CHARS:
            rows.append((role.name, "quota", "inline-policies-too-large", str(len(inline))))
    summary: dict[str, Any] = {"roles": sorted(roles), "info": {}}
    for role in roles.values():
        tool_rows, info = cloudsplaining_findings(role)
        rows.extend((role.name, *f) for f in tool_rows + parliament_findings(role, info))
        summary["info"][role.name] = info
    return rows, summary


def table(rows: list[tuple[str, ...]]) -> str:
    header = ("role", "source", "finding", "detail")
    widths = [max([len(header[i])] + [len(r[i][:90]) for r in rows]) for i in range(4)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "-+-".join("-" * w for w in widths)]
    out += [" | ".join(c[:90].ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path, nargs="+", help="terraform show -json of a plan of infra/bootstrap")
    parser.add_argument("--repository", default="example-org/catdog-mlops", help="OWNER/REPO the roles trust")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--json", action="store_true", help="print the findings and summary as JSON")
    args = parser.parse_args(argv)
    results, failed = [], False
    for path in args.plan:
        try:
            rows, summary = analyse(json.loads(path.read_text()), args.repository, args.branch)
        except (OSError, ValueError, KeyError) as exc:
            print(f"iam analysis of {path}: {exc}", file=sys.stderr)
            return 2
        failed = failed or bool(rows)
        results.append({"plan": str(path), "findings": [list(r) for r in rows], **summary})
        if not args.json:
            print(f"IAM analysis of {path.name}: {len(summary['roles'])} roles, {len(rows)} findings")
            print(table(rows))
            totals: dict[str, int] = {}
            for counts in summary["info"].values():
                for key, count in counts.items():
                    totals[key] = totals.get(key, 0) + count
            print("not findings (what deploy roles are for; tool database gaps):", json.dumps(totals))
    if args.json:
        print(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
