"""`mlops pipeline upsert|start` and `mlops lambda update-code`: the AWS side of the workflows."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlops.cli.common import AwsBackendOpt, AwsStageName, AwsStageOpt, BackendName, console, fail

if TYPE_CHECKING:
    from pipelines.settings import PipelineSettings

lambda_app = typer.Typer(help="The API function's code on AWS.", no_args_is_help=True)

GitShaOpt = Annotated[str, typer.Option(envvar="GITHUB_SHA", help="Commit the code bundle and run belong to")]
MAX_ZIP_BYTES = 50 * 1024 * 1024  # the direct-upload limit of UpdateFunctionCode


def _config(stage: str) -> Any:
    """The aws backend's settings for the stage (environment, build/infra/<stage>.json, naming)."""
    from mlops.backends.aws.config import AwsConfig
    from mlops.backends.base import BackendError

    try:
        return AwsConfig.from_env(stage)
    except BackendError as exc:
        fail(str(exc))


def _require_aws(backend: BackendName, command: str) -> None:
    if backend != BackendName.aws:
        fail(f"`mlops {command}` works on AWS only: pass --backend aws (locally: `mlops pipeline run`)")


def _client(service: str, region: str) -> Any:
    """A boto3 client with the backend's retry and timeout settings (tests replace this function)."""
    import boto3

    from mlops.backends.aws.config import BOTO_CONFIG

    return boto3.client(service, region_name=region, config=BOTO_CONFIG)


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError

    from mlops.backends.base import BackendError

    return (ClientError, BotoCoreError, WaiterError, BackendError, ValueError, OSError, TimeoutError)


def _settings(cfg: Any, git_sha: str, offline: bool = False) -> PipelineSettings:
    """PipelineSettings for the stage: the Terraform outputs' bucket and SageMaker role when known."""
    from pipelines.settings import PipelineSettings

    role, partition, account = cfg.role_arn, "aws", os.environ.get("AWS_ACCOUNT_ID", "")
    if role:
        partition, account = role.split(":")[1], account or role.split(":")[4]
    if not account and not offline:
        arn = _client("sts", cfg.region).get_caller_identity()["Arn"]
        partition, account = arn.split(":")[1], arn.split(":")[4]
    account = account or PipelineSettings().account_id
    return PipelineSettings(
        region=cfg.region,
        environment=cfg.stage,
        account_id=account,
        role_arn=role or f"arn:{partition}:iam::{account}:role/{cfg.prefix}-pipeline",
        bucket=cfg.artifact_bucket,
        git_sha=git_sha,
    )


def register_pipeline(pipeline_app: typer.Typer) -> None:
    """Add `upsert` and `start` to the `pipeline` sub-app."""

    @pipeline_app.command("upsert")
    def upsert(
        backend: AwsBackendOpt = BackendName.aws,
        stage: AwsStageOpt = AwsStageName.staging,
        git_sha: GitShaOpt = "unknown",
        image_tag: Annotated[
            str | None, typer.Option(envvar="IMAGE_TAG", help="Serving image tag (the commit; default --git-sha)")
        ] = None,
        dry_run: Annotated[bool, typer.Option(help="Build the code bundle and show the targets; no AWS call")] = False,
        bundle: Annotated[Path | None, typer.Option(help="Keep the code bundle at this path")] = None,
    ) -> None:
        """Upload the code bundle and evaluate.sh, then create or update the SageMaker pipeline."""
        from mlops import aws_pipeline
        from mlops.config import REPO_ROOT

        _require_aws(backend, "pipeline upsert")
        if image_tag and git_sha not in ("unknown", image_tag):
            fail(f"--image-tag {image_tag} differs from --git-sha {git_sha}: images are tagged with the commit")
        cfg = _config(stage)
        try:
            settings = _settings(cfg, image_tag or git_sha, offline=dry_run)
            with tempfile.TemporaryDirectory() as tmp:
                path = aws_pipeline.build_code_bundle(REPO_ROOT, bundle or Path(tmp) / "sourcedir.tar.gz")
                console.print(f"code bundle {path.name}: {path.stat().st_size} bytes")
                if dry_run:
                    console.print(f"would upload to {settings.code_bundle_uri} and {settings.evaluate_script_uri}")
                    return
                s3 = _client("s3", cfg.region)
                aws_pipeline.upload(s3, path, settings.code_bundle_uri)
                aws_pipeline.upload(s3, REPO_ROOT / "pipelines" / "evaluate.sh", settings.evaluate_script_uri)
            console.print(f"uploaded {settings.code_bundle_uri}")
            import boto3

            from pipelines.sagemaker_pipeline import upsert as sagemaker_upsert

            arn = sagemaker_upsert(settings, boto3.Session(region_name=cfg.region))
        except _aws_errors() as exc:
            fail(f"pipeline upsert failed: {exc}")
        console.print(f"[green]pipeline upserted[/]: {arn}")

    @pipeline_app.command("start")
    def start(
        backend: AwsBackendOpt = BackendName.aws,
        stage: AwsStageOpt = AwsStageName.staging,
        git_sha: Annotated[str | None, typer.Option(envvar="GITHUB_SHA", help="GitSha parameter")] = None,
        threshold: Annotated[float | None, typer.Option(help="AccuracyThreshold parameter")] = None,
        param: Annotated[list[str] | None, typer.Option(help="Another parameter, NAME=VALUE (repeatable)")] = None,
        wait: Annotated[bool, typer.Option(help="Wait for the execution to end; fail when it fails")] = False,
        summary: Annotated[Path | None, typer.Option(help="Append a Markdown summary here (job summary)")] = None,
        poll_seconds: Annotated[
            float, typer.Option(envvar="PIPELINE_POLL_SECONDS", help="Seconds between status polls")
        ] = 30.0,
        timeout_minutes: Annotated[float, typer.Option(help="Give up waiting after this long")] = 240.0,
    ) -> None:
        """Start an execution of the training pipeline; with --wait, report the gate and the new version."""
        from mlops import aws_pipeline
        from pipelines.settings import PipelineSettings

        _require_aws(backend, "pipeline start")
        parameters: dict[str, str] = {}
        for item in param or []:
            name, sep, value = item.partition("=")
            if not sep or not name:
                fail(f"--param {item!r}: expected NAME=VALUE")
            parameters[name] = value
        for name, given in (("GitSha", git_sha), ("AccuracyThreshold", threshold)):
            if given is not None:
                parameters[name] = str(given)
        try:  # the gate cannot be lowered, nor the registration status or the photos set: execution_parameters
            parameters, threshold, notice = aws_pipeline.execution_parameters(parameters)
        except ValueError as exc:
            fail(str(exc))
        if notice:
            console.print(notice)
        cfg = _config(stage)
        try:
            sm = _client("sagemaker", cfg.region)
            arn = aws_pipeline.start_execution(
                sm, PipelineSettings(environment=stage).pipeline_name, parameters, f"{stage} {git_sha or ''}".strip()
            )
            console.print(f"started {arn}")
            if not wait:
                if summary:
                    _append(summary, f"### Training pipeline ({stage}): started\n\n`{arn}`\n")
                return
            desc = aws_pipeline.wait_execution(
                sm, arn, poll_seconds, timeout_minutes * 60, on_status=lambda s: console.print(f"  status: {s}")
            )
            outcome = aws_pipeline.collect_outcome(sm, _client("s3", cfg.region), desc, threshold)
        except _aws_errors() as exc:
            fail(f"pipeline start failed: {exc}")
        if summary:
            _append(summary, aws_pipeline.summary_markdown(outcome, stage))
        _report(outcome)


def _report(outcome: Any) -> None:
    if outcome.status == "Succeeded":
        registered = f"registered model version {outcome.model_version}" if outcome.model_version else "succeeded"
        accuracy = f" (test accuracy {outcome.accuracy:.4f})" if outcome.accuracy is not None else ""
        console.print(f"[green]pipeline {registered}[/]{accuracy}")
        return
    if outcome.gate == "failed":
        accuracy = f"{outcome.accuracy:.4f}" if outcome.accuracy is not None else "unknown"
        threshold = f"{outcome.threshold:.4f}" if outcome.threshold is not None else "the threshold"
        fail(f"accuracy gate failed: test accuracy {accuracy} is below {threshold}; nothing was registered")
    fail(f"pipeline execution {outcome.status}: {outcome.failure_reason or 'no reason given'}")


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text + "\n")


@lambda_app.command("update-code")
def update_code(
    zip_path: Annotated[Path, typer.Option("--zip", help="The Lambda package (make lambda-zip)")] = Path(
        "build/lambda.zip"
    ),
    stage: AwsStageOpt = AwsStageName.staging,
    backend: AwsBackendOpt = BackendName.aws,
) -> None:
    """Replace the function's code ($LATEST) under the stage's release lock; promotion publishes a version
    and moves the alias."""
    from mlops.backends.aws import AwsBackend
    from mlops.backends.base import LockBusyError
    from mlops.cli.release import _who

    _require_aws(backend, "lambda update-code")
    if not zip_path.is_file():
        fail(f"{zip_path} not found: build it with `make lambda-zip`")
    data = zip_path.read_bytes()
    if len(data) > MAX_ZIP_BYTES:
        fail(f"{zip_path} is {len(data) // 2**20} MiB, over the 50 MiB direct-upload limit")
    name = _config(stage).function_name
    try:
        sha, changed = AwsBackend(stage.value).update_function_code(data, f"lambda update-code by {_who(None)}")
    except LockBusyError as exc:
        fail(f"{exc}: the code of function {name} was not changed")
    except _aws_errors() as exc:
        fail(f"updating the code of the {stage.value} function failed: {exc}")
    if not changed:
        console.print(f"function {name} already has this code (sha256 {sha})")
        return
    console.print(f"function {name} code updated (sha256 {sha}); `mlops promote --backend aws` publishes it")


def register(app: typer.Typer) -> None:
    """Add the `lambda` sub-app (update-code)."""
    app.add_typer(lambda_app, name="lambda")
