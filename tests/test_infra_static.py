"""Static properties of infra/: layout, variables files, backends, and the emulator switch kept narrow."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "infra"
CONCERNS = [
    "s3",
    "ecr",
    "iam",
    "lambda",
    "apigw",
    "alarms",
    "dynamodb",
    "sagemaker",
    "events",
    "web",
    "variables",
    "outputs",
    "versions",
    "providers",
]
# Where `var.emulator` may appear: only to leave out what the emulator cannot manage or read back.
EMULATOR_USES = {
    "sagemaker.tf": 1,  # the model package group (the emulator cannot delete one)
    "web.tf": 1,  # the CloudFront distribution (origin access control and defaults not read back)
    "apigw.tf": 1,  # binary media types (ignored on create)
    "lambda.tf": 1,  # logging_config (not read back)
}


def tf(name: str) -> str:
    return (INFRA / name).read_text()


def test_files_by_concern() -> None:
    for concern in CONCERNS:
        assert (INFRA / f"{concern}.tf").is_file(), concern
    for env in ("staging", "production"):
        assert f'environment       = "{env}"' in (INFRA / "env" / f"{env}.tfvars").read_text()
        backend = (INFRA / "backends" / f"{env}.s3.tfbackend.example").read_text()
        assert f'key          = "catdog/{env}/terraform.tfstate"' in backend
        assert "use_lockfile = true" in backend


def test_partial_s3_backend_and_provider_pins() -> None:
    versions = tf("versions.tf")
    assert 'backend "s3" {}' in versions
    assert 'version = "~> 5.100"' in versions
    assert 'required_version = ">= 1.5.0"' in versions


def test_emulator_switch_only_leaves_things_out() -> None:
    uses = {path.name: path.read_text().count("var.emulator") for path in INFRA.glob("*.tf")}
    assert {name: count for name, count in uses.items() if count and name != "variables.tf"} == EMULATOR_USES
    for path in INFRA.glob("*.tf"):
        for line in path.read_text().splitlines():
            if "var.emulator" in line:
                assert re.search(r"(count|for_each|binary_media_types)\s*=", line), f"{path.name}: {line}"


def test_release_owned_attributes_are_ignored() -> None:
    assert "ignore_changes = [function_version, routing_config, description]" in tf("lambda.tf")
    assert "ignore_changes = [deployment_id, variables, description]" in tf("apigw.tf")
    assert re.search(r"ignore_changes = \[\s*filename, source_code_hash", tf("lambda.tf"))


def test_deploy_role_trust_is_limited_to_the_repository() -> None:
    iam = tf("iam.tf")
    assert '"repo:${var.github_repository}:environment:${env}"' in iam
    assert '"repo:${var.github_repository}:ref:refs/heads/${branch}"' in iam
    assert 'variable = "${local.github_oidc}:aud"' in iam
    assert "token.actions.githubusercontent.com" in tf("locals.tf")


def test_approval_trigger_is_off_by_default() -> None:
    variables = tf("variables.tf")
    assert re.search(r'variable "enable_approval_trigger" \{[^}]*default\s+= false', variables)
    assert len(re.findall(r"count\s+= local\.approval_trigger \? 1 : 0", tf("events.tf"))) == 7
