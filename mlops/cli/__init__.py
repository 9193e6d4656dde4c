"""The `mlops` command line: the one entry point for the Makefile, the tests and the workflows."""

from __future__ import annotations

import typer

from mlops import cli_aws, cli_cost, cli_data, cli_release, cli_stack, cli_web
from mlops.cli_pipeline import pipeline_app, registry_app

app = typer.Typer(
    help="Cat/dog classifier MLOps: train, register, serve, promote, roll back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(registry_app, name="registry")
cli_aws.register_pipeline(pipeline_app)
cli_aws.register(app)
cli_data.register(app)
cli_stack.register(app)
cli_release.register(app)
cli_stack.register_demo(app)
cli_web.register(app)
cli_cost.register(app)

if __name__ == "__main__":
    app()
