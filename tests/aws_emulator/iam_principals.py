"""Who signs a request: the administrator, or a role session STS issued, and the policies of that role.

Sessions come from two places, as on AWS: AssumeRoleWithWebIdentity with a GitHub OIDC token
(`github_token` mints one the way GitHub's issuer shapes it, signed with a key only this process
holds; STS accepts only such tokens, and only when the role's trust policy allows the token's
`aud` and `sub` for the federated principal of an OIDC provider that exists in IAM), and a service
assuming an execution role (`service_session`: the trust policy must name the service).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aws_emulator import iam_policy

ACCOUNT = "123456789012"
ADMIN_KEYS = {"testing", "FOOBARKEY"}  # the emulator's default credentials: the administrator
GITHUB_ISSUER = "token.actions.githubusercontent.com"
_SIGNING_KEY = secrets.token_bytes(32)


@dataclass(frozen=True)
class Principal:
    arn: str  # arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION
    role_name: str
    account: str = ACCOUNT


def _iam() -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[ACCOUNT]["aws"]


def _sts() -> Any:
    from moto.sts.models import sts_backends

    return sts_backends[ACCOUNT]["aws"]


def principal_for_key(access_key: str, token: str) -> Principal | None:
    for session in reversed(_sts().assumed_roles):
        if session.access_key_id == access_key:
            if token and token != session.session_token:
                return None
            name = session.role_arn.split("/")[-1]
            return Principal(f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session.session_name}", name)
    return None


def _document(policy: Any) -> str:
    version = next(v for v in policy.versions if v.is_default)
    return version.document


def role_documents(principal: Principal) -> tuple[dict[str, str], dict[str, str] | None]:
    """The role's identity policies (inline and attached) and its permissions boundary (None: none)."""
    iam = _iam()
    role = iam.get_role(principal.role_name)
    identity = {f"{principal.role_name} inline {name}": doc for name, doc in role.policies.items()}
    for arn, policy in role.managed_policies.items():
        identity[arn] = _document(policy)
    boundary = None
    if role.permissions_boundary_arn:
        boundary = {role.permissions_boundary_arn: _document(iam.get_policy(role.permissions_boundary_arn))}
    return identity, boundary


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def github_token(repository: str, context: str, workflow_ref: str, audience: str = "sts.amazonaws.com") -> str:
    """A token as GitHub's OIDC issuer shapes it for a job, with the subject template the guide sets
    (repo, context, job_workflow_ref): `repo:OWNER/REPO:<context>:job_workflow_ref:<ref>`."""
    now = int(time.time())
    claims = {"iss": f"https://{GITHUB_ISSUER}", "aud": audience, "iat": now, "exp": now + 3600,
              "sub": f"repo:{repository}:{context}:job_workflow_ref:{workflow_ref}",
              "repository": repository, "job_workflow_ref": workflow_ref}  # fmt: skip
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = _b64(hmac.new(_SIGNING_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{signature}"


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a token this issuer signed and that has not expired; ValueError otherwise."""
    try:
        head, body, signature = token.split(".")
    except ValueError as exc:
        raise ValueError("not a JWT") from exc
    expected = _b64(hmac.new(_SIGNING_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise ValueError("the token's signature is not the issuer's")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if claims.get("exp", 0) < time.time():
        raise ValueError("the token has expired")
    return claims


def trust_allows(role_name: str, action: str, principal: dict[str, str], context: dict[str, list[str]]) -> bool:
    """Does the role's trust policy allow `principal` ({"Federated": arn} or {"Service": name}) the action?"""
    role = _iam().get_role(role_name)
    document = role.assume_role_policy_document
    request = iam_policy.Request(action, ["*"], context)
    allowed = False
    for statement in iam_policy.statements(document):
        named = statement.get("Principal") or {}
        kind, value = next(iter(principal.items()))
        if value not in iam_policy._list(named.get(kind, [])):
            continue
        if not iam_policy.statement_applies({k: v for k, v in statement.items() if k != "Principal"}, request, "*"):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed


def check_web_identity(role_arn: str, token: str) -> None:
    """STS's checks before AssumeRoleWithWebIdentity issues credentials; ValueError names what failed."""
    claims = token_claims(token)
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB_ISSUER}"
    if provider not in _iam().open_id_providers:
        raise ValueError(f"no OIDC provider {provider} in IAM")
    context = {f"{GITHUB_ISSUER}:aud": [claims["aud"]], f"{GITHUB_ISSUER}:sub": [claims["sub"]]}
    name = role_arn.rsplit("/", 1)[-1]
    if not trust_allows(name, "sts:AssumeRoleWithWebIdentity", {"Federated": provider}, context):
        raise ValueError(f"Not authorized to perform sts:AssumeRoleWithWebIdentity (sub {claims['sub']})")


def service_session(role_arn: str, service: str, session: str) -> dict[str, str]:
    """Credentials of `service` (e.g. sagemaker.amazonaws.com) in the role, if its trust policy allows it."""
    import os

    name = role_arn.rsplit("/", 1)[-1]
    context = {"aws:SourceAccount": [ACCOUNT]}
    try:
        trusted = trust_allows(name, "sts:AssumeRole", {"Service": service}, context)
    except Exception:  # no such role
        trusted = False
    if not trusted:
        if os.environ.get("AWS_EMULATOR_IAM", "audit") != "enforce":  # audit: the administrator stands in
            return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": ""}
        raise PermissionError(f"{service} may not assume {role_arn}: its trust policy does not name the service")
    assumed = _sts().assume_role(
        region_name="eu-west-1", role_session_name=session, role_arn=role_arn, policy="", duration=3600, external_id=""
    )
    return {"AWS_ACCESS_KEY_ID": assumed.access_key_id, "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
            "AWS_SESSION_TOKEN": assumed.session_token}  # fmt: skip
