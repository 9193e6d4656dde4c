"""`python -m rehearsal --breakages`: the strict rehearsal breaking a release on purpose, one breakage after
another in one emulated account (tests/e2e/test_rehearsal_iam.py, test_rehearsal_breakage.py).

Bootstrap and staging are applied once. Each breakage is a segment of the results, between the records
`breakage NAME: begin` and `breakage NAME: end`: an action taken out of one statement (by its Sid) of
the roles' policies that the bootstrap stack created, as the bootstrap re-applied without it would leave
them, or a fault imported by every process the steps start (tests/rehearsal/faults); then the workflow
that must fail; then the policies put back. A breakage at `apply` runs deploy.yml before staging exists;
one at `promote` releases a freshly registered version (the same model again: a version rolled back with
this code is not retried on its own), leaving out the deploy steps that the first run of this commit
already did (the Terraform apply, the image, the pipeline, the web page).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote

from rehearsal.cancel import Cancel
from rehearsal.scenario import BOOTSTRAP, SAME_COMMIT, doc_line

DONE_ONCE = (*SAME_COMMIT, "Build and push the serving image", "Create or update the SageMaker pipeline",
             "Publish the web page")  # fmt: skip


@dataclass(frozen=True)
class Breakage:
    name: str
    at: str  # "apply": the first staging apply; "promote": deploy.yml's release of a new version
    remove_grant: str = ""  # SID:ACTION taken out of the roles' policies (infra/bootstrap)
    faults: str = ""  # modules imported by every process the steps start (tests/rehearsal/faults)
    cancel_at: str = ""  # the job is cancelled (rehearsal.cancel) when its promotion prints this line


BREAKAGES = (
    # The stack looks up its execution roles while it plans: without iam:GetRole the apply fails before it
    # creates anything (a grant an apply needs later fails as surely, after minutes of creating the rest).
    Breakage("no_role_read", "apply", remove_grant="ReadOwnRoles:iam:GetRole"),
    Breakage("no_invoke_endpoint", "promote", remove_grant="InvokeEndpoint:sagemaker:InvokeEndpoint"),
    Breakage("no_model_read", "promote", remove_grant="ReadReleasedModels:s3:GetObject"),
    # Cancelled once the candidate serves (the smoke tests start): the promotion gets SIGINT itself and
    # rolls back, the job's repair step runs, and the good release before it serves again.
    Breakage("cancelled_promotion", "promote", cancel_at="smoke-testing"),
    Breakage("alias_not_moved", "promote", faults="alias_not_moved"),
)


def _doc(raw: Any) -> dict[str, Any]:
    return json.loads(unquote(raw)) if isinstance(raw, str) else dict(raw)


def _without(doc: dict[str, Any], sid: str, action: str) -> dict[str, Any] | None:
    """The policy document without `action` in its statement `sid` (None: it grants no such thing)."""
    statements = doc.get("Statement", [])
    out, changed = [], False
    for st in [statements] if isinstance(statements, dict) else statements:
        actions = [st.get("Action")] if isinstance(st.get("Action"), str) else list(st.get("Action") or [])
        if st.get("Sid") == sid and action in actions:
            changed, rest = True, [a for a in actions if a != action]
            if not rest:
                continue  # it was the statement's only action: the statement goes
            st = {**st, "Action": rest}
        out.append(st)
    return {**doc, "Statement": out} if changed else None


def take_out(iam: Any, sid: str, action: str) -> list[Callable[[], Any]]:
    """Take `action` out of statement `sid` of every role policy granting it; returns what puts each back."""
    undo: list[Callable[[], Any]] = []
    edited: set[str] = set()
    for role in iam.list_roles(MaxItems=1000)["Roles"]:
        name = role["RoleName"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            before = _doc(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
            after = _without(before, sid, action)
            if after is not None:
                iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(after))
                undo.append(
                    partial(iam.put_role_policy, RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(before))
                )
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            arn = attached["PolicyArn"]
            if arn in edited:
                continue
            default = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            before = _doc(iam.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"])
            after = _without(before, sid, action)
            if after is not None:
                edited.add(arn)
                made = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(after), SetAsDefault=True)
                undo.append(partial(iam.set_default_policy_version, PolicyArn=arn, VersionId=default))
                undo.append(
                    partial(iam.delete_policy_version, PolicyArn=arn, VersionId=made["PolicyVersion"]["VersionId"])
                )
    if not undo:
        raise ValueError(f"no role's policy grants {action} in a statement {sid}")
    return undo


@contextlib.contextmanager
def broken(flow: Any, breakage: Breakage) -> Iterator[None]:
    """The segment of one breakage: in place inside, put back on the way out."""
    runner = flow.runner
    what = [f"without {breakage.remove_grant}"] if breakage.remove_grant else []
    what += [f"with the fault {breakage.faults}"] if breakage.faults else []
    what += [f"cancelled at {breakage.cancel_at!r}"] if breakage.cancel_at else []
    runner.record(f"breakage {breakage.name}: begin", "rehearsal", True, 0.0, "; ".join(what))
    undo: list[Callable[[], Any]] = []
    try:
        if breakage.remove_grant:
            sid, action = breakage.remove_grant.split(":", 1)
            undo = take_out(flow.emu.client("iam"), sid, action)
        runner.base_env["REHEARSAL_FAULTS"] = breakage.faults
        if breakage.cancel_at:  # a killed holder's lease is waited out for its TTL: 120 s on AWS, scaled here
            runner.base_env["LOCK_TTL_SECONDS"] = "30"
        yield
    finally:
        runner.base_env["REHEARSAL_FAULTS"] = ""
        runner.base_env.pop("LOCK_TTL_SECONDS", None)
        for step in undo:
            step()
        runner.record(f"breakage {breakage.name}: end", "rehearsal", True, 0.0)


def run(flow: Any, names: list[str]) -> None:
    chosen = [b for b in BREAKAGES if not names or b.name in names]
    f, ws = flow, flow.ws
    f.doc_step("Create the state bucket", "### 1. The state bucket")
    f.doc_step("Bootstrap stack", BOOTSTRAP, {"TF_CLI_ARGS_apply": "-auto-approve"})
    for breakage in (b for b in chosen if b.at == "apply"):
        with broken(f, breakage):
            f.workflow("deploy.yml")  # its Terraform apply of staging fails
    f.workflow("deploy.yml")  # staging applied; nothing approved yet
    f.doc_step("Upload the training photos", "## The training photos", {"DATA_DIR": f.photo_subset()})
    f.runner.action("Register version 1 (prebuilt model)", "rehearsal", f.prebuilt_version)
    approve = doc_line(ws, "mlops approve N")
    version = 1
    for breakage in (b for b in chosen if b.at == "promote"):
        if breakage.cancel_at:  # a good release first, for the cancelled one to come back to
            _register_and_approve(f, version, approve)
            f.workflow("deploy.yml", skip=DONE_ONCE)
            f.serving("staging", str(version))
            version += 1
        _register_and_approve(f, version, approve)
        with broken(f, breakage):
            cancel = Cancel("Promote", breakage.cancel_at) if breakage.cancel_at else None
            f.workflow("deploy.yml", skip=DONE_ONCE, cancel=cancel)
            if not cancel:
                f.serving("staging", str(version))
        if cancel:
            f.serving("staging", str(version - 1))  # the release before, serving again
        version += 1


def _register_and_approve(f: Any, version: int, approve: str) -> None:
    """Version 1 is registered before the breakages; each later one is the same good model again."""
    if version > 1:
        f.runner.action(f"Register version {version}", "rehearsal", f.second_good_candidate)
    f.shell(f"Approve version {version}", approve, f"mlops approve {version} --backend aws --by rehearsal")
