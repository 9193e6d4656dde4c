"""`python -m mlops`: the same CLI as the `mlops` command."""

from mlops.cli import app

app(prog_name="mlops")
