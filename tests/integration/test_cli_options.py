"""The CLI matches its docs: the commands the README says take --backend take it (and the others do not),
--backend/--stage show their choices in --help, and `registry list` lists either registry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_support import Stack, aws_env, make_stack
from moto import mock_aws
from typer.testing import CliRunner

from mlops.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
BACKEND_CHOICES, STAGE_CHOICES, AWS_STAGE_CHOICES = "<local|aws>", "<staging|production|local>", "<staging|production>"


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "220", **(env or {})})


def readme_groups() -> dict[str, list[str]]:
    """The README's paragraph under the commands table: which commands take --backend, which run on AWS
    only, which take none."""
    text = README.read_text()
    paragraph = text[text.index("`registry list`, `approve`") :].split("\n\n", 1)[0]
    sentences = re.split(r"(?<=[.)])\s+(?=`)", " ".join(paragraph.split()))
    names = [re.findall(r"`([a-z][a-z -|]+?)`", s) for s in sentences[:3]]

    def commands(found: list[str]) -> list[str]:
        out: list[str] = []
        for name in found:
            if name.startswith("--") or name.startswith("MLOPS_") or "=" in name:
                continue
            head, _, alternatives = name.rpartition(" ")
            for alt in alternatives.split("|"):
                out.append(f"{head} {alt}".strip())
        return out

    backend, aws_only, neither = (commands(n) for n in names)
    return {"backend": backend, "aws_only": aws_only, "neither": neither}


def help_of(command: str) -> str:
    result = run(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    return result.output


def test_the_readme_names_every_command_once() -> None:
    groups = readme_groups()
    assert groups["backend"] == [
        "registry list", "approve", "reject", "promote", "smoke", "rollback", "repair", "status",
    ]  # fmt: skip
    aws_only = ["pipeline upsert", "pipeline start", "data upload", "lambda update-code", "web publish"]
    assert groups["aws_only"] == aws_only
    assert groups["neither"] == ["pipeline run", "up", "down", "demo", "pipeline definition", "web build"]


@pytest.mark.parametrize("command", readme_groups()["backend"])
def test_commands_the_readme_says_take_backend_show_its_choices(command: str) -> None:
    text = help_of(command)
    assert re.search(rf"--backend\s+{re.escape(BACKEND_CHOICES)}", text), text
    assert re.search(rf"--stage\s+{re.escape(STAGE_CHOICES)}", text), text


@pytest.mark.parametrize("command", readme_groups()["aws_only"])
def test_aws_only_commands_take_backend_aws_and_an_aws_stage(command: str) -> None:
    text = help_of(command)
    assert re.search(rf"--backend\s+{re.escape(BACKEND_CHOICES)}.*default: aws", text), text
    assert re.search(rf"--stage,--env\s+{re.escape(AWS_STAGE_CHOICES)}", text), text


@pytest.mark.parametrize("command", readme_groups()["neither"])
def test_local_or_offline_commands_take_no_backend(command: str) -> None:
    assert "--backend" not in help_of(command)


def test_a_stage_outside_the_choices_is_a_usage_error_not_a_traceback() -> None:
    result = run("status", "--backend", "aws", "--stage", "prod")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'prod' is not one of 'staging', 'production', 'local'" in " ".join(result.output.split())


def test_qualifying_a_stage_that_does_not_follow_is_refused_before_anything_moves(aws: Stack) -> None:
    """Only staging's releases qualify production: anything else is a one-line refusal, no lock taken."""
    for stage, target in (("staging", "staging"), ("production", "production"), ("staging", "local")):
        result = run("promote", "1", "--backend", "aws", "--stage", stage, "--qualify-for", target)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert f"--qualify-for {target}: {stage} releases qualify" in " ".join(result.output.split())
    assert aws.backend.list_releases() == []


@pytest.fixture
def aws(monkeypatch) -> Iterator[Stack]:
    aws_env(monkeypatch)
    with mock_aws():
        stack = make_stack((0.95, 0.97, None))
        stack.backend.set_approval("1", "Approved", "alice", "looks good")
        stack.backend.set_approval("3", "Rejected", "bob", "no evaluation")
        yield stack


def test_registry_list_on_aws_shows_number_status_accuracy_created_and_who_approved(aws: Stack) -> None:
    result = run("registry", "list", "--backend", "aws", "--stage", "staging", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["version"], r["status"], r["accuracy"], r["approved_by"]) for r in rows] == [
        ("1", "Approved", 0.95, "alice"),
        ("2", "PendingManualApproval", 0.97, ""),
        ("3", "Rejected", None, "bob"),
    ]
    assert all(re.match(r"\d{4}-\d\d-\d\dT", r["created"]) for r in rows)
    assert rows[0]["artifact_uri"].startswith("s3://") and rows[0]["artifact_uri"].endswith("/v1/model.tar.gz")
    table = run("registry", "list", "--backend", "aws").output
    lines = {line.split("│")[1].strip(): line for line in table.splitlines() if line.count("│") > 5}
    assert "Approved" in lines["1"] and "0.9500" in lines["1"] and "alice" in lines["1"]
    assert "PendingManualApproval" in lines["2"] and "0.9700" in lines["2"]
    assert "Rejected" in lines["3"] and "bob" in lines["3"]


def test_registry_list_on_aws_with_nothing_registered_is_empty(monkeypatch) -> None:
    aws_env(monkeypatch)
    with mock_aws():
        result = run("registry", "list", "--backend", "aws", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == [], result.output


def test_registry_list_locally_shows_who_approved(tmp_path: Path, monkeypatch) -> None:
    from mlops.backends.local.registry import LocalRegistry

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLOPS_BACKEND", raising=False)
    registry = LocalRegistry()
    for run_id in ("a", "b"):
        registry.register(run_id, (tmp_path / f"{run_id}.tar.gz").as_uri(), 0.93, "sha")
    registry.set_status("2", "Approved", "carol", "fine")
    result = run("registry", "list", "--json", env={"MLOPS_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["version"], r["status"], r["approved_by"]) for r in rows] == [
        ("1", "PendingManualApproval", ""),
        ("2", "Approved", "carol"),
    ]
