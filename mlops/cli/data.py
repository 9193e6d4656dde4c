"""`mlops data upload`: the training and test photos to where the SageMaker pipeline reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlops.cli.common import AwsBackendOpt, AwsStageName, AwsStageOpt, BackendName, console, fail

data_app = typer.Typer(help="The training and test photos.", no_args_is_help=True)
BAD_FOLDER = 2  # the exit code of a folder that is not a data set (nothing was read from AWS or sent)


def s3_client(region: str, workers: int) -> Any:
    """The backend's retry and timeout settings, with a connection per upload thread."""
    import boto3
    from botocore.config import Config

    from mlops.backends.aws.config import BOTO_CONFIG

    return boto3.client("s3", region_name=region, config=BOTO_CONFIG.merge(Config(max_pool_connections=workers)))


@data_app.command("upload")
def upload(
    backend: AwsBackendOpt = BackendName.aws,
    stage: AwsStageOpt = AwsStageName.staging,
    data_dir: Annotated[
        Path | None, typer.Option(envvar="DATA_DIR", help="Folder with train/{cat,dog} and test/{cat,dog}")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Parallel uploads")] = 16,
    dry_run: Annotated[bool, typer.Option(help="Compare and say what would change; send nothing")] = False,
) -> None:
    """Upload the photos the pipeline trains and evaluates on (only what changed), then their manifest."""
    from mlops import data_upload
    from mlops.cli import aws as cli_aws
    from training.data_manifest import DataManifestError, build_manifest, layout_photos

    if backend != BackendName.aws:
        fail("`mlops data upload` works on AWS only: pass --backend aws (locally the pipeline reads DATA_DIR)")
    if data_dir is None:
        fail("no photos: pass --data-dir or set DATA_DIR to a folder with train/{cat,dog} and test/{cat,dog}", 2)
    try:
        files = layout_photos(data_dir)
        local = build_manifest(files)
    except (DataManifestError, OSError) as exc:
        fail(f"{exc}; nothing was uploaded", BAD_FOLDER)
    splits = {s: sum(1 for rel in local if rel.startswith(f"{s}/")) for s in ("train", "test")}
    console.print(f"{len(local)} photos in {data_dir} (train {splits['train']}, test {splits['test']})")
    cfg = cli_aws._config(stage)
    try:
        uri = cli_aws._settings(cfg, "unknown").input_data_uri
        outcome = data_upload.sync(
            s3_client(cfg.region, workers),
            uri,
            files,
            local,
            workers,
            dry_run,
            on_plan=lambda plan: console.print(
                f"{uri}: {len(plan.upload)} to upload, {len(plan.delete)} to delete, {plan.unchanged} unchanged"
            ),
        )
    except DataManifestError as exc:
        fail(f"{exc}; the manifest was not written", 1)
    except cli_aws._aws_errors() as exc:
        fail(f"data upload failed: {exc}; the manifest was not written: run it again (only what is missing is sent)")
    if not outcome.changed:
        console.print(f"[green]up to date[/]: {uri} (manifest sha256 {outcome.manifest_sha256})")
    elif dry_run:
        console.print(f"dry run: nothing sent; the new manifest's sha256 would be {outcome.manifest_sha256}")
    else:
        console.print(
            f"[green]uploaded[/] {outcome.uploaded}, deleted {outcome.deleted}, unchanged {outcome.unchanged} in "
            f"{outcome.seconds} s; {uri}/manifest.json written last (sha256 {outcome.manifest_sha256})"
        )


def register(app: typer.Typer) -> None:
    """Add the `data` sub-app (upload)."""
    app.add_typer(data_app, name="data")
