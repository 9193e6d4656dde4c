"""Static properties of infra/: layout, variables files, backends, and the emulator switch kept narrow."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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
    "web",
    "variables",
    "outputs",
    "versions",
    "providers",
    "waf",
]
# Where `var.emulator` may appear: only to leave out what the emulator cannot manage or read back.
EMULATOR_USES = {
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


def test_environment_stacks_create_no_iam() -> None:
    """Roles, policies and the OIDC provider live only in the bootstrap stack."""
    for path in INFRA.glob("*.tf"):
        assert not re.search(r'resource "aws_iam_', path.read_text()), path.name
    assert 'data "aws_iam_role" "function"' in tf("iam.tf")


def test_github_roles_trust_one_workflow_each() -> None:
    roles = (INFRA / "bootstrap" / "github_roles.tf").read_text()
    for context, workflow in [
        ("environment:staging", "deploy.yml"),
        ("environment:production", "promote.yml"),
        ("ref:refs/heads/${var.github_branch}", "retrain.yml"),
    ]:
        assert re.search(rf'context\s+= "{re.escape(context)}"\n\s+workflow\s+= "{re.escape(workflow)}"', roles)
    assert 'test     = "StringEquals"\n      variable = "${local.github_oidc}:aud"' in roles
    assert 'test     = "StringEquals"\n      variable = "${local.github_oidc}:sub"' in roles
    trust = roles[roles.index('data "aws_iam_policy_document" "github_trust"') :].split("\n}\n", 1)[0]
    assert "StringLike" not in trust
    bootstrap = "".join(p.read_text() for p in (INFRA / "bootstrap").glob("*.tf"))
    assert bootstrap.count("permissions_boundary = local.boundary_arn") == 3  # GitHub, execution, API Gateway logs


def test_dispatch_token_never_reaches_terraform_or_the_workflows() -> None:
    assert "github_dispatch_token" not in tf("variables.tf")
    assert 'value = "Bearer set-out-of-band"' in tf("bootstrap/approval_trigger.tf")
    for workflow in (REPO / ".github" / "workflows").glob("*.yml"):
        assert "GH_DISPATCH_TOKEN" not in workflow.read_text(), workflow.name


def _waf_local(name: str) -> str:
    match = re.search(rf"^\s*{name}\s*=\s*(.+)$", tf("waf.tf"), re.M)
    assert match, name
    return match.group(1).strip()


def test_one_payload_limit_end_to_end() -> None:
    """The web ACL answers 413 exactly above the limit, and the function's limit is the same number."""
    limit = int(_waf_local("max_body_bytes"))
    assert limit == int(4.4 * 1024 * 1024)
    # The base64 form plus 64 KiB of event (headers twice, request context) fits Lambda's 6 MB.
    assert (limit + 2) // 3 * 4 + 64 * 1024 <= 6 * 1024 * 1024
    pattern = re.compile(json.loads(_waf_local("body_over_limit_regex")))
    for value in [0, 1, 999, limit - 1, limit, 4_000_000, 4_613_700]:
        assert not pattern.match(str(value)), value
    for value in [limit + 1, limit + 9, 4_613_800, 4_620_000, 4_700_000, 5_000_000, 9_999_999, 10**7, 10**12]:
        assert pattern.match(str(value)), value
    assert not pattern.match(f"00{limit}") and pattern.match(f"00{limit + 1}")
    assert '"request body too large: the limit is ${local.max_body_bytes} bytes (4.4 MiB)"' in tf("waf.tf")
    assert "response_code            = 413" in tf("waf.tf")


def test_release_images_are_never_expired() -> None:
    ecr = tf("ecr.tf")
    first = re.search(r"rulePriority = 1\n.*?selection = \{(.*?)\}", ecr, re.S)
    assert first and 'tagPrefixList = ["release-"]' in first.group(1)
    assert ecr.index('tagStatus   = "any"') > ecr.index('tagPrefixList = ["release-"]')


def test_approval_trigger_is_off_by_default_and_the_bootstraps() -> None:
    """The dispatch path (rule, target, API destination, connection) belongs to the bootstrap stack: the
    staging deploy role could otherwise point the API destination, and the GitHub token, anywhere."""
    variables = tf("bootstrap/variables.tf")
    assert re.search(r'variable "enable_approval_trigger" \{[^}]*default\s+= false', variables)
    trigger = tf("bootstrap/approval_trigger.tf")
    assert len(re.findall(r"count\s+= var\.enable_approval_trigger \? 1 : 0", trigger)) == 4
    stacks = [p for p in INFRA.glob("*.tf")] + list((INFRA / "bootstrap" / "modules").rglob("*.tf"))
    assert not [p.name for p in stacks if "aws_cloudwatch_event" in p.read_text() or '"events:' in p.read_text()]


def test_workflows_assume_their_own_role_after_installing() -> None:
    """Each job assumes the role made for it, and only once its dependencies are installed."""
    roles = {
        "deploy.yml": "AWS_DEPLOY_STAGING_ROLE_ARN",
        "promote.yml": "AWS_DEPLOY_PRODUCTION_ROLE_ARN",
        "retrain.yml": "AWS_RETRAIN_ROLE_ARN",
    }
    for name, variable in roles.items():
        text = (REPO / ".github" / "workflows" / name).read_text()
        assert re.findall(r"role-to-assume: \$\{\{ vars\.(\w+) \}\}", text) == [variable], name
        assert text.index("run: make venv") < text.index("aws-actions/configure-aws-credentials"), name
        assert "secrets." not in text, name
    assert "configure-aws-credentials" not in (REPO / ".github" / "workflows" / "ci.yml").read_text()


def test_the_web_acl_limit_is_the_image_contracts() -> None:
    from serving.image_contract import MAX_IMAGE_BYTES

    assert f"max_body_bytes = {MAX_IMAGE_BYTES}" in tf("waf.tf")


def test_widened_release_permissions_reach_only_what_a_release_needs() -> None:
    """Three grants added for releases, each pinned to the one thing it is for:
    - release roles read the candidate's smoke set: GetObject on the registry bucket's evaluation/
      prefix only (not code/), and Decrypt only through S3 with the registry's key;
    - release roles read the candidate's model.tar.gz, to copy it into their own environment's bucket:
      GetObject on models/ only, never a write there; they write and read back (to check its content
      SHA-256 against the registered one before CreateModel) only released/ of their own bucket;
    - the API function may invoke its environment's classifier and the canary's candidate endpoint,
      and no other endpoint."""
    release = (INFRA / "bootstrap" / "modules" / "stack_access" / "release.tf").read_text()
    smoke = release.split('sid       = "ReadSmokeSets"', 1)[1].split("statement {", 1)[0]
    assert 'actions   = ["s3:GetObject"]' in smoke
    assert 'artifacts-${var.account_id}/evaluation/*"]' in smoke and "*/*" not in smoke
    models = release.split('sid       = "ReadRegisteredModels"', 1)[1].split("statement {", 1)[0]
    assert 'actions   = ["s3:GetObject"]' in models
    assert 'artifacts-${var.account_id}/models/*"]' in models and "*/*" not in models
    kept = release.split('sid       = "KeepReleasedModels"', 1)[1].split("statement {", 1)[0]
    assert '"${local.arn}:s3:::${local.prefix}-artifacts-${var.account_id}/released/*"' in kept
    assert "registry_prefix" not in kept and "*/*" not in kept
    decrypt = release.split('sid       = "DecryptSmokeSetsThroughS3"', 1)[1].split("statement {", 1)[0]
    assert 'actions   = ["kms:Decrypt"]' in decrypt
    assert '"kms:ViaService"' in decrypt and '["alias/${local.registry_prefix}"]' in decrypt
    roles = (INFRA / "bootstrap" / "execution_roles.tf").read_text()
    endpoints = [line for line in roles.splitlines() if ":endpoint/" in line]
    assert endpoints and all(
        line.count(":endpoint/") == 2 and line.rstrip().endswith('-classifier-candidate"]') for line in endpoints
    ), endpoints


def test_shadow_records_are_read_from_the_functions_own_log_group_only() -> None:
    """One grant widened for shadow testing: promotion reads the live function's `shadow pair` records
    (mlops/backends/aws/shadow.py) with logs:FilterLogEvents, on the API function's log group and no
    other; the function itself gains nothing (it mirrors to the candidate endpoint it may already invoke)."""
    from mlops.backends.aws.config import AwsConfig
    from mlops.backends.aws.shadow import log_group

    release = (INFRA / "bootstrap" / "modules" / "stack_access" / "release.tf").read_text()
    shadow = release.split('sid       = "ReadShadowRecords"', 1)[1].split("statement {", 1)[0]
    assert 'actions   = ["logs:FilterLogEvents"]' in shadow
    resources = re.search(r"resources = \[(.*)\]", shadow).group(1)
    assert resources == '"${local.arn}:logs:${local.regional}:log-group:/aws/lambda/${local.prefix}-classify-api:*"'
    assert release.count('"logs:') == 1  # no other logs action for releases
    # the log group the grant names is the one Terraform creates for the function, and the one read
    assert 'name              = "/aws/lambda/${local.function_name}"' in tf("logs.tf")
    assert re.search(r'function_name\s*=\s*"\$\{local\.prefix\}-classify-api"', tf("locals.tf"))
    cfg = AwsConfig.from_env("staging", {"MLOPS_INFRA_OUTPUTS_DIR": "/nonexistent"})
    assert log_group(cfg) == "/aws/lambda/catdog-staging-classify-api"


def test_release_roles_invoke_only_published_versions_of_the_api_function() -> None:
    """One grant widened because every promotion needs it (mlops/backends/aws/front.py invokes each new
    version before the alias moves): lambda:InvokeFunction on the API function's qualified ARNs only,
    so a release role cannot invoke $LATEST by its unqualified ARN, nor any other function."""
    assert "self.fn.invoke(" in (REPO / "mlops" / "backends" / "aws" / "front.py").read_text()
    release = (INFRA / "bootstrap" / "modules" / "stack_access" / "release.tf").read_text()
    warm = release.split('sid       = "WarmNewVersions"', 1)[1].split("statement {", 1)[0]
    assert 'actions   = ["lambda:InvokeFunction"]' in warm
    resources = re.search(r"resources = \[(.*)\]", warm).group(1)
    assert resources == '"${local.arn}:lambda:${local.regional}:function:${local.prefix}-classify-api:*"'
    assert release.count('"lambda:InvokeFunction"') == 1


def test_apply_roles_describe_only_dynamodbs_aws_managed_key() -> None:
    """One grant widened for `terraform apply` (found by the strict rehearsal): the provider describes
    the AWS managed key alias/aws/dynamodb while reading a table encrypted by default. DescribeKey
    only, and only on the key with that alias; every other key stays reachable by its environment tag."""
    apply = (INFRA / "bootstrap" / "modules" / "stack_access" / "apply.tf").read_text()
    grant = apply.split('sid       = "DescribeDynamoDbManagedKey"', 1)[1].split("statement {", 1)[0]
    assert 'actions   = ["kms:DescribeKey"]' in grant
    assert '"kms:ResourceAliases"' in grant and 'values   = ["alias/aws/dynamodb"]' in grant
    assert "ForAnyValue:StringEquals" in grant


def test_terraform_lists_workspaces_inside_the_environments_state_folder() -> None:
    """The roles may list the state bucket under `catdog/<env>/` only; `terraform init` lists the
    workspace prefix (env:/ by default), so every backend configuration puts it inside that folder."""
    infra_mk = (REPO / "mk" / "infra.mk").read_text()
    assert "TF_WORKSPACE_PREFIX ?= catdog/$(ENV)/workspaces" in infra_mk
    assert "-backend-config=workspace_key_prefix=$(TF_WORKSPACE_PREFIX)" in infra_mk
    for env in ("staging", "production"):
        example = (INFRA / "backends" / f"{env}.s3.tfbackend.example").read_text()
        assert f'workspace_key_prefix = "catdog/{env}/workspaces"' in example
    apply = (INFRA / "bootstrap" / "modules" / "stack_access" / "apply.tf").read_text()
    assert 'values   = ["${var.project}/${var.environment}/*"]' in apply
