"""aws-actions/configure-aws-credentials in the rehearsal: GitHub's OIDC token for the job, exchanged at STS.

The token is shaped as GitHub's issuer shapes it for this job (the repository, the job's
environment or, without one, its ref, and the workflow file on main: the subject template the
deployment guide sets), and STS answers only if the role's trust policy accepts it. The job's
steps then run with the role session's credentials and nothing else: before this step a job has no
AWS credentials at all, as on GitHub.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_emulator.iam_principals import github_token

from rehearsal.workflows import Job, Step, substitute

CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def job_subject_context(job: Job, ref: str) -> str:
    return f"environment:{job.environment}" if job.environment else f"ref:{ref}"


def assume(emu: Any, job: Job, step: Step, context: dict) -> dict[str, str]:
    """The environment variables the action exports: the session's credentials and the region."""
    github = context["github"]
    repository, ref = github["repository"], github.get("ref", "refs/heads/main")
    role = substitute(step.with_.get("role-to-assume", ""), context)
    if not role:
        raise ValueError(f"{step.where}: configure-aws-credentials without role-to-assume")
    workflow_ref = f"{repository}/{job.workflow}@{ref}"
    token = github_token(repository, job_subject_context(job, ref), workflow_ref)
    sts = boto3.client("sts", region_name=emu.region, endpoint_url=emu.url, verify=str(emu.tls_files.ca),
                       aws_access_key_id="unused", aws_secret_access_key="unused")  # fmt: skip
    session = substitute(step.with_.get("role-session-name", "GitHubActions"), context)
    answer = sts.assume_role_with_web_identity(
        RoleArn=role, RoleSessionName=session, WebIdentityToken=token, DurationSeconds=3600
    )["Credentials"]
    region = substitute(step.with_.get("aws-region", ""), context) or emu.region
    keys = {
        "AWS_ACCESS_KEY_ID": "AccessKeyId",
        "AWS_SECRET_ACCESS_KEY": "SecretAccessKey",
        "AWS_SESSION_TOKEN": "SessionToken",
    }
    return {**{name: answer[field] for name, field in keys.items()}, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
