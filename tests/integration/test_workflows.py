"""The GitHub workflows: triggers, environments, permissions, concurrency, pinned actions, make/mlops steps."""

from __future__ import annotations

import re
import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
NAMES = ("ci", "deploy", "promote", "retrain")
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+#\s+v(?P<version>\d+\.\d+\.\d+)\s*$")
# The first release of each action whose action.yml says `runs: using: node24` (read from the tags of the
# action's own repository); GitHub's runners no longer run Node 20 actions. Every action a workflow uses
# must be listed here, at this release or a later one.
NODE24_FIRST = {
    "actions/checkout": (5, 0, 0),
    "actions/setup-python": (6, 0, 0),
    "hashicorp/setup-terraform": (4, 0, 0),
    "aws-actions/configure-aws-credentials": (6, 0, 0),
    "actions/upload-artifact": (6, 0, 0),
}
STAGES = ("staging", "production")
# What changes a deployed environment; `mlops pipeline start` (retrain.yml) only starts a training run and
# `mlops status` only reads.
CHANGES_STAGE = re.compile(
    r"^(?:make (?:infra-apply|image-push) ENV=(?P<env>\w+)"
    r"|mlops (?:promote|rollback|repair|lambda update-code|web publish|pipeline upsert)\b.*?--stage (?P<stage>\w+))"
)
# Plain shell a step may run besides make and mlops: publishing PATH entries and summaries.
TRIVIAL = re.compile(r'^echo "[^"]*" >> "\$(GITHUB_PATH|GITHUB_STEP_SUMMARY)"$')


@cache
def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())


def triggers(name: str) -> dict[str, Any]:
    data = workflow(name)
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` key as True
    return on if isinstance(on, dict) else {key: None for key in on}


def jobs(name: str) -> dict[str, dict[str, Any]]:
    return workflow(name)["jobs"]


def steps(name: str) -> list[dict[str, Any]]:
    return [step for job in jobs(name).values() for step in job["steps"]]


def run_commands(name: str) -> list[str]:
    return [line.strip() for step in steps(name) if "run" in step for line in step["run"].strip().splitlines()]


def test_only_the_four_workflows_exist() -> None:
    assert sorted(path.stem for path in WORKFLOWS.glob("*.y*ml")) == sorted(NAMES)


def test_triggers() -> None:
    ci = triggers("ci")
    assert set(ci) == {"pull_request", "push"}
    assert ci["push"]["branches"] == ["main"]

    deploy = triggers("deploy")  # only a finished CI run starts it: see test_staging_deploys_only_what_ci_passed
    assert set(deploy) == {"workflow_run"}
    ci_name = workflow("ci")["name"]
    assert deploy["workflow_run"] == {"workflows": [ci_name], "types": ["completed"], "branches": ["main"]}

    promote = triggers("promote")
    assert set(promote) == {"workflow_dispatch", "repository_dispatch"}
    assert promote["workflow_dispatch"]["inputs"]["model_version"]["required"] is True
    assert promote["repository_dispatch"]["types"] == ["model-approved"]

    retrain = triggers("retrain")
    assert set(retrain) == {"schedule", "workflow_dispatch"}
    (cron,) = [entry["cron"] for entry in retrain["schedule"]]
    assert len(cron.split()) == 5 and cron.split()[4] != "*"  # weekly


def test_environments() -> None:
    assert [job.get("environment") for job in jobs("deploy").values()] == ["staging"]
    assert [job.get("environment") for job in jobs("promote").values()] == ["production"]
    for name in ("ci", "retrain"):
        assert all("environment" not in job for job in jobs(name).values())


def test_permissions_are_minimal() -> None:
    assert workflow("ci")["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in jobs("ci").values())
    for name in ("deploy", "promote", "retrain"):
        assert workflow(name)["permissions"] == {}
        for job in jobs(name).values():
            assert job["permissions"] == {"contents": "read", "id-token": "write"}


def test_aws_credentials_come_from_oidc() -> None:
    roles = {"deploy": "STAGING", "promote": "PRODUCTION"}
    for name in ("deploy", "promote", "retrain"):
        (step,) = [s for s in steps(name) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        variable = f"AWS_DEPLOY_{roles[name]}_ROLE_ARN" if name in roles else "AWS_RETRAIN_ROLE_ARN"
        assert step["with"]["role-to-assume"] == f"${{{{ vars.{variable} }}}}"
        assert step["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
        assert not {"aws-access-key-id", "aws-secret-access-key"} & set(step["with"])
    assert not any("configure-aws-credentials" in s.get("uses", "") for s in steps("ci"))


def test_staging_deploys_only_what_ci_passed() -> None:
    """The deploy job runs for a successful CI run of a push to main in this repository, on main's newest
    commit, and checks out that commit; a pull request's CI (or a fork's branch named main) deploys nothing."""
    (job,) = jobs("deploy").values()
    terms = {" ".join(term.split()) for term in job["if"].split("&&")}
    assert terms == {
        "github.event.workflow_run.conclusion == 'success'",
        "github.event.workflow_run.event == 'push'",
        "github.event.workflow_run.head_branch == 'main'",
        "github.event.workflow_run.head_repository.full_name == github.repository",
        "github.event.workflow_run.head_sha == github.sha",
    }
    (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}"
    assert job["steps"].index(checkout) == 0
    # GITHUB_SHA (what `mlops pipeline upsert` and the image tag name) is that commit: the condition says so.
    assert job["env"]["IMAGE_TAG"] == "${{ github.sha }}"


def concurrency_groups(name: str) -> dict[str, dict[str, Any]]:
    """group -> its settings, for the workflow's own concurrency and every job's."""
    blocks = [workflow(name).get("concurrency"), *(job.get("concurrency") for job in jobs(name).values())]
    return {block["group"]: block for block in blocks if block}


def changed_stages(name: str) -> set[str]:
    found = (CHANGES_STAGE.match(command) for command in run_commands(name))
    return {m["env"] or m["stage"] for m in found if m}


def test_one_concurrency_group_per_environment_shared_by_every_workflow_that_changes_it() -> None:
    assert changed_stages("deploy") == {"staging"}
    assert changed_stages("promote") == {"staging", "production"}
    assert changed_stages("ci") == changed_stages("retrain") == set()
    for name in NAMES:
        groups = concurrency_groups(name)
        for stage in changed_stages(name):
            assert groups.get(f"deploy-{stage}", {}).get("cancel-in-progress") is False, (name, stage)
        for group in groups:  # the one name per environment: no other group speaks of a stage
            assert not any(stage in group for stage in STAGES) or group in {f"deploy-{s}" for s in STAGES}, group
    # On deploy.yml's job, not its run: a run its condition skips never enters (nor empties) the group.
    assert "concurrency" not in workflow("deploy")
    assert workflow("retrain")["concurrency"]["cancel-in-progress"] is False
    assert "concurrency" in workflow("ci")


def pins(name: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """(action, commit, version) of every `uses:` line; fails on one not pinned with a version comment."""
    found = []
    for line in (WORKFLOWS / f"{name}.yml").read_text().splitlines():
        if match := USES.match(line):
            pinned, comment = PINNED.match(match["ref"]), VERSION_COMMENT.match(match["comment"])
            assert pinned and comment, f"{name}.yml: not pinned by commit with a # vX.Y.Z comment: {line.strip()}"
            found.append((pinned["action"], pinned["sha"], tuple(map(int, comment["version"].split(".")))))
    return found


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_pinned_by_commit_to_a_node24_release(name: str) -> None:
    found = pins(name)
    assert len(found) == sum("uses" in step for step in steps(name)) > 0
    for action, _, version in found:
        assert action in NODE24_FIRST, f"{action}: add the first release that runs on Node 24 to NODE24_FIRST"
        assert version >= NODE24_FIRST[action], f"{action} v{'.'.join(map(str, version))} runs on Node 20"
    assert any(
        step.get("uses", "").startswith("actions/setup-python@") and str(step["with"]["python-version"]) == "3.11"
        for step in steps(name)
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_run_step_is_make_or_mlops(name: str) -> None:
    for command in run_commands(name):
        words = shlex.split(command.removeprefix("exec "))
        assert words[0] in {"make", "mlops"} or TRIVIAL.match(command), command
    assert "make venv" in run_commands(name)


def test_a_cancelled_release_gets_the_signal_and_a_repair() -> None:
    """On cancel, GitHub signals the step's process and kills its tree seconds later: `mlops promote` must
    be that process (exec), and a step that runs on cancel or failure repairs each stage it releases."""
    for workflow in ("deploy", "promote"):
        all_steps = steps(workflow)
        releases = [s for s in all_steps if "mlops promote" in s.get("run", "")]
        assert releases, workflow
        for step in releases:
            assert step["run"].strip().startswith("exec mlops promote"), step["run"]
            stage = step["run"].split("--stage")[1].split()[0]
            repairs = [
                s
                for s in all_steps[all_steps.index(step) + 1 :]
                if s.get("run", "").strip() == f"exec mlops repair --backend aws --stage {stage}"
            ]
            assert repairs and repairs[0]["if"] == "cancelled() || failure()", (workflow, stage)


def test_the_release_commands() -> None:
    assert run_commands("deploy") == [
        "make venv",
        'echo "$GITHUB_WORKSPACE/.venv/bin" >> "$GITHUB_PATH"',
        "make lambda-zip",
        "make infra-apply ENV=staging",
        "make image-push ENV=staging",
        'mlops pipeline upsert --backend aws --stage staging --image-tag "$IMAGE_TAG"',
        "mlops lambda update-code --backend aws --stage staging --zip build/lambda.zip",
        "mlops web publish --backend aws --stage staging",
        "exec mlops promote --backend aws --stage staging",
        "exec mlops repair --backend aws --stage staging",
        'mlops status --backend aws --stage staging --markdown >> "$GITHUB_STEP_SUMMARY"',
    ]
    promote = run_commands("promote")
    approve, to_staging, to_production = (
        promote.index(c)
        for c in (
            'mlops approve "$VERSION" --backend aws --by "$GITHUB_ACTOR" --reason "$REASON"',
            'exec mlops promote "$VERSION" --backend aws --stage staging --qualify-for production',
            'exec mlops promote "$VERSION" --backend aws --stage production',
        )
    )
    assert approve < to_staging < to_production < promote.index("mlops web publish --backend aws --stage production")
    assert promote[-4:-2] == [f"exec mlops repair --backend aws --stage {stage}" for stage in ("staging", "production")]
    assert promote[-2:] == [
        f'mlops status --backend aws --stage {stage} --markdown >> "$GITHUB_STEP_SUMMARY"'
        for stage in ("staging", "production")
    ]
    version = jobs("promote")["promote"]["env"]["VERSION"]
    assert "inputs.model_version" in version and "github.event.client_payload.model_version" in version
    assert run_commands("retrain")[-1] == (
        'mlops pipeline start --backend aws --stage staging --wait --summary "$GITHUB_STEP_SUMMARY"'
    )
    assert run_commands("ci") == [
        "make venv",
        "make lint",
        "make actionlint",
        "make infra-check",
        "make pytest",
    ]


def test_ci_keeps_the_test_report_and_the_rehearsal_state_even_when_a_step_fails() -> None:
    uploads = {
        step["with"]["name"]: step
        for step in steps("ci")
        if step.get("uses", "").startswith("actions/upload-artifact@")
    }
    assert set(uploads) == {"pytest-report", "rehearsal"}
    assert all(step["if"] == "always()" for step in uploads.values())
    assert uploads["pytest-report"]["with"]["path"] == "build/reports/pytest.xml"
    assert set(uploads["rehearsal"]["with"]["path"].split()) == {"build/rehearsal/*.json", "build/rehearsal/logs/"}
    makefile = (REPO / "Makefile").read_text()
    assert "--junitxml=build/reports/pytest.xml" in makefile.split("\npytest:", 1)[1].split("\n\n", 1)[0]
    # make pytest runs the rehearsal (into build/rehearsal, where the upload reads it) as one of its tests.
    flow = (REPO / "tests" / "e2e" / "test_rehearsal_flow.py").read_text()
    assert '"-m", "rehearsal"' in flow and 'REPO / "build" / "rehearsal"' in flow
    (test_job,) = [job for job in jobs("ci").values()]
    names = [step.get("uses", step.get("run", "")) for step in test_job["steps"]]
    assert all(
        index > names.index("make pytest")
        for index, step in enumerate(test_job["steps"])
        if step.get("uses", "").startswith("actions/upload-artifact@")
    )


def test_each_action_is_pinned_to_one_release_everywhere() -> None:
    releases: dict[str, set[tuple[str, tuple[int, ...]]]] = {}
    for name in NAMES:
        for action, sha, version in pins(name):
            releases.setdefault(action, set()).add((sha, version))
    assert {action: len(found) for action, found in releases.items()} == dict.fromkeys(releases, 1), releases


def test_dependabot_keeps_the_actions_and_the_uv_lock_current() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"github-actions", "uv"}
    assert (REPO / "uv.lock").is_file()
    for update in updates.values():
        assert update["directory"] == "/" and update["schedule"]["interval"] in {"daily", "weekly"}


def make_targets() -> set[str]:
    targets = set()
    for name in NAMES:
        for command in run_commands(name):
            words = shlex.split(command)
            if words[0] == "make":
                targets.update(word for word in words[1:] if "=" not in word and not word.startswith("-"))
    return targets


def test_every_make_target_a_workflow_calls_exists() -> None:
    missing = []
    for target in sorted(make_targets()):
        result = subprocess.run(
            ["make", "-n", target, "ENV=staging"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            missing.append(f"{target}: {result.stderr.strip()[-300:]}")
    assert not missing, "make targets the workflows call but the Makefile lacks:\n" + "\n".join(missing)
