"""`python -m rehearsal --breakages`: the strict rehearsal breaking a release on purpose, one breakage after
another in one emulated account (tests/e2e/test_rehearsal_iam.py, test_rehearsal_breakage.py).

Bootstrap and staging are applied once. Each breakage is a segment of the results, between the records
`breakage NAME: begin` and `breakage NAME: end`: an action taken out of one role's policy (the bootstrap
stack re-applied without it) or a fault imported by every process the steps start (tests/rehearsal/faults),
then the workflow that must fail, then everything put back (the bootstrap re-applied with the grant). A
breakage at `apply` runs deploy.yml before staging exists; one at `promote` releases a freshly registered
version (the same model again: a version rolled back with this code is not retried on its own).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rehearsal.scenario import doc_line
from rehearsal.workspace import remove_grant

BOOTSTRAP = "### 3. The bootstrap stack, with administrator credentials (once)"


@dataclass(frozen=True)
class Breakage:
    name: str
    at: str  # "apply": the first staging apply; "promote": deploy.yml's release of a new version
    remove_grant: str = ""  # FILE:SID:ACTION taken out of infra/bootstrap
    faults: str = ""  # modules imported by every process the steps start (tests/rehearsal/faults)


BREAKAGES = (
    Breakage("no_create_table", "apply", remove_grant="modules/stack_access/apply.tf:Tables:dynamodb:CreateTable"),
    Breakage(
        "no_invoke_endpoint", "promote", remove_grant="execution_roles.tf:InvokeEndpoint:sagemaker:InvokeEndpoint"
    ),
    Breakage("no_model_read", "promote", remove_grant="execution_roles.tf:ReadModelArtifacts:s3:GetObject"),
    Breakage("alias_not_moved", "promote", faults="alias_not_moved"),
)


def _git(flow: Any, *args: str) -> None:
    who = {"GIT_AUTHOR_NAME": "rehearsal", "GIT_AUTHOR_EMAIL": "rehearsal@example.org", "PATH": "/usr/bin:/bin"}
    who.update(GIT_COMMITTER_NAME=who["GIT_AUTHOR_NAME"], GIT_COMMITTER_EMAIL=who["GIT_AUTHOR_EMAIL"])
    subprocess.run(["git", *args], cwd=flow.ws, check=True, env=who, capture_output=True)


def _bootstrap(flow: Any) -> bool:
    return bool(flow.doc_step("Bootstrap stack", BOOTSTRAP, {"TF_CLI_ARGS_apply": "-auto-approve"}))


@contextlib.contextmanager
def broken(flow: Any, breakage: Breakage) -> Iterator[None]:
    """The segment of one breakage: in place inside, put back on the way out."""
    runner = flow.runner
    what = [f"without {breakage.remove_grant}"] if breakage.remove_grant else []
    what += [f"with the fault {breakage.faults}"] if breakage.faults else []
    runner.record(f"breakage {breakage.name}: begin", "rehearsal", True, 0.0, "; ".join(what))
    try:
        if breakage.remove_grant:
            runner.echo(f"rehearsing with {remove_grant(flow.ws, breakage.remove_grant)}")
            _bootstrap(flow)
        runner.base_env["REHEARSAL_FAULTS"] = breakage.faults
        yield
    finally:
        runner.base_env["REHEARSAL_FAULTS"] = ""
        runner.record(f"breakage {breakage.name}: end", "rehearsal", True, 0.0)
        if breakage.remove_grant:
            _git(flow, "revert", "--no-edit", "HEAD")
            _bootstrap(flow)  # the grant back


def run(flow: Any, names: list[str]) -> None:
    chosen = [b for b in BREAKAGES if not names or b.name in names]
    f, ws = flow, flow.ws
    f.doc_step("Create the state bucket", "### 1. The state bucket")
    _bootstrap(f)
    for breakage in (b for b in chosen if b.at == "apply"):
        with broken(f, breakage):
            f.workflow("deploy.yml")  # its Terraform apply of staging fails
    f.workflow("deploy.yml")  # staging applied; nothing approved yet
    f.doc_step("Upload the training photos", "## The training photos", {"DATA_DIR": f.photo_subset()})
    f.runner.action("Register version 1 (prebuilt model)", "rehearsal", f.prebuilt_version)
    approve = doc_line(ws, "mlops approve N")
    version = 1
    for breakage in (b for b in chosen if b.at == "promote"):
        if version > 1:
            f.runner.action(f"Register version {version}", "rehearsal", f.second_good_candidate)
        f.shell(f"Approve version {version}", approve, f"mlops approve {version} --backend aws --by rehearsal")
        with broken(f, breakage):
            f.workflow("deploy.yml")
            f.serving("staging", str(version))
        version += 1
