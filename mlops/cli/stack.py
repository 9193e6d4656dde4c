"""`mlops up` / `mlops down`: the local stack (API front, function versions, model servers)."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.cli.common import console, fail, print_json
from mlops.stack import bring_up
from pipelines.settings import DEFAULT_THRESHOLD


def register(app: typer.Typer) -> None:
    @app.command()
    def up(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Start the local stack: the API front, the live function version and its model server."""
        from mlops.backends.base import BackendError

        try:
            info = bring_up()
        except BackendError as exc:
            fail(str(exc))
        if as_json:
            print_json(info)
            return
        if info["model_version"] is None:
            console.print(f"API front on {info['api_url']}; no model registered yet: run `make pipeline`")
            return
        label = "live release" if info["mode"] == "release" else "newest registered version (not promoted yet)"
        console.print(f"[green]serving model version {info['model_version']}[/] ({label})")
        console.print(f"  API:      {info['api_url']}/predict   (POST a JPEG or PNG)")
        console.print(f"  web page: {info['api_url']}/")
        console.print("  stop:     make down")

    @app.command()
    def down() -> None:
        """Stop every local stack process."""
        from mlops.backends.local import LocalBackend

        stopped = LocalBackend().stop_all()
        console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def register_demo(app: typer.Typer) -> None:
    @app.command()
    def demo(
        data_dir: Annotated[str | None, typer.Option(envvar="DATA_DIR", help="Folder with train/ and test/")] = None,
        threshold: Annotated[
            float, typer.Option(envvar="ACCURACY_THRESHOLD", help="Accuracy gate")
        ] = DEFAULT_THRESHOLD,
        train_images_per_class: Annotated[int, typer.Option(help="Train on a slice (0 = all)")] = 0,
        eval_images_per_class: Annotated[int, typer.Option(help="Evaluate on a slice (0 = all)")] = 0,
        finetune_epochs: Annotated[int | None, typer.Option(help="Override the fine-tuning epochs")] = None,
        as_json: Annotated[str | None, typer.Option("--json-out", help="Also write the summary here")] = None,
    ) -> None:
        """The whole lifecycle locally: stack, pipeline, approval, promotion, smoke, a rolled-back bad release."""
        import json
        from pathlib import Path

        from mlops.backends.base import BackendError
        from mlops.demo import run_demo
        from mlops.release import PromotionFailed, PromotionRefused
        from pipelines.local_runner import PipelineFailed
        from training.photos import DataUnavailableError, resolve_data_dir

        try:
            root = resolve_data_dir(data_dir)
            summary = run_demo(root, threshold, train_images_per_class, eval_images_per_class, finetune_epochs)
        except (DataUnavailableError, PipelineFailed, PromotionFailed, PromotionRefused, BackendError) as exc:
            fail(str(exc))
        if as_json:
            Path(as_json).write_text(json.dumps(summary, indent=2, default=str))
