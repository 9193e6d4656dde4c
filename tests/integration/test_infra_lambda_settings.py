"""Terraform manages the function's settings without undoing a release (infra/lambda.tf, against moto).

After a release has put its code and its three variables (RELEASE_VARIABLES) in $LATEST, a plan is
empty; a changed setting reaches the function at the next apply, and the release's code and variables
stay as the release left them.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import boto3
import pytest
from test_infra_moto import emulator_env, lambda_zip, moto_url, prepare, terraform  # noqa: F401

from mlops.backends.aws.front import RELEASE_VARIABLES

pytestmark = pytest.mark.slow

PREFIX = "catdog-staging"
FUNCTION = f"{PREFIX}-classify-api"
VAR_FILES = ["-var-file=env/staging.tfvars", "-var-file=emulator.tfvars.json"]
# Applies and plans look at the function and its alias only, with what they depend on (the rest of the
# stack is test_infra_moto's and the rehearsal's): seconds instead of minutes.
FUNCTION_ONLY = ["-target=aws_lambda_function.api", "-target=aws_lambda_alias.live"]


def client(service: str, url: str):
    return boto3.client(
        service, endpoint_url=url, region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def bootstrap_roles(url: str) -> None:
    """The roles the staging stack looks up, as the bootstrap stack would create them."""
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    for role in ("function", "inference", "pipeline"):
        client("iam", url).create_role(RoleName=f"{PREFIX}-{role}", AssumeRolePolicyDocument=trust)


def release(url: str) -> tuple[dict[str, str], str]:
    """What `mlops lambda update-code` and `mlops promote` leave in $LATEST; its variables and CodeSha256."""
    fn = client("lambda", url)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("classify_api/handler.py", "def lambda_handler(event, context):\n    return {'released': 1}\n")
    code = fn.update_function_code(FunctionName=FUNCTION, ZipFile=buf.getvalue())["CodeSha256"]
    variables = fn.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    owned = dict(zip(RELEASE_VARIABLES, ("r20261207-1", "7", f"{PREFIX}-classifier-candidate"), strict=True))
    fn.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": {**variables, **owned}})
    fn.publish_version(FunctionName=FUNCTION, CodeSha256=code)
    return owned, code


def plan_is_empty(work: Path, *args: str) -> bool:
    code = terraform(work, emulator_env(), "plan", "-detailed-exitcode", "-input=false", "-no-color", *args, ok=(0, 2))
    return code == 0


def test_a_setting_reaches_the_function_and_a_release_is_kept(moto_url: str, tmp_path: Path) -> None:  # noqa: F811
    env = emulator_env()
    bootstrap_roles(moto_url)
    staging = prepare(tmp_path, "staging", moto_url, lambda_zip(tmp_path), {})
    terraform(staging, env, "apply", "-auto-approve", "-input=false", "-no-color", *VAR_FILES, *FUNCTION_ONLY)
    # No destroy: the moto server is this module's own and stops with it (destroying is test_infra_moto's).
    owned, code = release(moto_url)
    assert plan_is_empty(staging, *VAR_FILES, *FUNCTION_ONLY), "Terraform would undo what the release wrote"

    changed = [*VAR_FILES, *FUNCTION_ONLY, "-var=prediction_log_ttl_days=31"]
    terraform(staging, env, "apply", "-auto-approve", "-input=false", "-no-color", *changed)
    conf = client("lambda", moto_url).get_function_configuration(FunctionName=FUNCTION)
    variables = conf["Environment"]["Variables"]
    assert variables["PREDICTION_TTL_DAYS"] == "31", "a changed setting does not reach the function"
    assert {name: variables.get(name) for name in RELEASE_VARIABLES} == owned and conf["CodeSha256"] == code
    assert plan_is_empty(staging, *changed)
