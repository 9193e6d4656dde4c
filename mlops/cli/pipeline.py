"""`mlops pipeline …` and `mlops registry …`: build, run, upsert and start the training pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mlops.cli.common import BackendName, BackendOpt, StageOpt, console, err, fail, open_backend, print_json
from pipelines.settings import DEFAULT_THRESHOLD, PENDING, THRESHOLD_FLOOR

if TYPE_CHECKING:
    from pipelines.local_runner import RunResult, Workspace

pipeline_app = typer.Typer(
    help="The training pipeline: definition, local run, SageMaker upsert/start.", no_args_is_help=True
)
registry_app = typer.Typer(help="The model registry.", no_args_is_help=True)


def local_workspace() -> Workspace:
    """The local pipeline runner's workspace: the state folder, the MLflow store and registry."""
    from mlops import config
    from mlops.backends.local.registry import LocalRegistry
    from pipelines.local_runner import Workspace

    return Workspace(
        state_dir=config.state_dir(),
        tracking_uri=config.tracking_uri(),
        artifact_root=config.artifact_root(),
        code_root=config.REPO_ROOT,
        register=lambda *args: LocalRegistry().register(*args),
    )


@pipeline_app.command("definition")
def definition(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
    git_sha: Annotated[str, typer.Option(help="Commit recorded in the pipeline's GitSha parameter")] = "unknown",
    environment: Annotated[str, typer.Option("--env", help="staging or production")] = "staging",
) -> None:
    """Write the SageMaker Pipeline definition JSON (offline, byte-identical, checked against botocore)."""
    from pipelines.sagemaker_pipeline import checked_definition_json
    from pipelines.settings import PipelineSettings

    try:
        text = checked_definition_json(PipelineSettings(git_sha=git_sha, environment=environment))
    except ValueError as exc:
        fail(str(exc))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        console.print(f"wrote {output}")
    else:
        typer.echo(text, nl=False)


@pipeline_app.command("run")
def run(
    data_dir: Annotated[str | None, typer.Option(envvar="DATA_DIR", help="Folder with train/ and test/")] = None,
    threshold: Annotated[
        float,
        typer.Option(envvar="ACCURACY_THRESHOLD", help=f"Accuracy gate (raised to {THRESHOLD_FLOOR:.2f} when lower)"),
    ] = DEFAULT_THRESHOLD,
    max_images_per_class: Annotated[int, typer.Option(help="Train on a slice (0 = all)")] = 0,
    eval_images_per_class: Annotated[int, typer.Option(help="Evaluate on a slice (0 = all test photos)")] = 0,
    finetune_epochs: Annotated[int | None, typer.Option(help="Override the fine-tuning epochs")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Run train → evaluate → gate → register on this machine."""
    import time

    from pipelines.local_runner import PipelineFailed, run_pipeline
    from training.photos import DataUnavailableError, resolve_data_dir

    try:
        root = resolve_data_dir(data_dir)
    except DataUnavailableError as exc:
        fail(str(exc))
    hp: dict[str, str] = {}
    if max_images_per_class:
        hp["max-images-per-class"] = str(max_images_per_class)
    if finetune_epochs is not None:
        hp["finetune-epochs"] = str(finetune_epochs)
    started = time.perf_counter()
    try:
        result = run_pipeline(
            root,
            threshold,
            hp,
            eval_images_per_class,
            on_stage=lambda s: None if as_json else console.print(f"[cyan]▶ {s}[/]"),
            workspace=local_workspace(),
            on_notice=lambda line: err.print(line, soft_wrap=True),
        )
    except PipelineFailed as exc:
        fail(str(exc))
    summary = {
        "version": result.version,
        "accuracy": result.accuracy,
        "threshold": result.threshold,
        "status": PENDING,
        "run_id": result.run_id,
        "artifact": str(result.artifact),
        "seconds": round(time.perf_counter() - started, 1),
        **evaluation_report(result),
    }
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"[green]registered version {result.version}[/] (test accuracy {result.accuracy:.4f} ≥ "
            f"{result.threshold:.2f}, {PENDING}) in {summary['seconds']} s"
        )
        for key in ("reliability_plot", "contact_sheet"):
            if key in summary:
                console.print(f"{key.replace('_', ' ')}: {summary[key]}")


def evaluation_report(result: RunResult) -> dict[str, Any]:
    """Calibration and the paths of the evaluation's reliability plot and contact sheet (training/report.py)."""
    report = result.evaluation.get("report")
    if not report or result.evaluation_dir is None:
        return {}
    return {
        "expected_calibration_error": report["expected_calibration_error"],
        "reliability_plot": str(result.evaluation_dir / report["reliability_plot"]),
        "contact_sheet": str(result.evaluation_dir / report["contact_sheet"]),
    }


@registry_app.command("list")
def registry_list(
    backend: BackendOpt = BackendName.local,
    stage: StageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the registered model versions: number, status, accuracy, created, who approved (or rejected), and
    the SHA-256 of the data manifest the version was trained and evaluated on, and its model's content SHA-256."""
    from mlops.backends.base import BackendError

    try:
        versions = open_backend(backend, stage).list_versions()
    except BackendError as exc:
        fail(str(exc))
    keys = ("version", "status", "accuracy", "created", "approved_by", "artifact_uri", "data_manifest_sha256",
            "model_sha256")  # fmt: skip
    rows = [{k: v.to_dict()[k] for k in keys} for v in versions]
    if as_json:
        print_json(rows)
        return
    table = Table("version", "status", "accuracy", "created", "approved by", "data", "model", "artifact")
    for r in rows:
        table.add_row(
            r["version"],
            r["status"],
            f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-",
            r["created"],
            r["approved_by"] or "-",
            r["data_manifest_sha256"][:12] or "-",
            r["model_sha256"][:12] or "-",
            r["artifact_uri"],
        )
    console.print(table)
