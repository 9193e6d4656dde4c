"""The `mlops` command line: the one entry point for the Makefile, the tests and the workflows.

One module per command group (aws, cost, data, pipeline, release, stack, web), with the shared options in
common.py; the console script `mlops` and `python -m mlops` run `app`."""

from __future__ import annotations

import typer

from mlops.cli import aws, cost, data, release, stack, web
from mlops.cli.pipeline import pipeline_app, registry_app

app = typer.Typer(
    help="Cat/dog classifier MLOps: train, register, serve, promote, roll back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(registry_app, name="registry")
aws.register_pipeline(pipeline_app)
aws.register(app)
data.register(app)
stack.register(app)
release.register(app)
stack.register_demo(app)
web.register(app)
cost.register(app)
