"""Shared CLI plumbing: consoles, one-line failures, JSON output, and the --backend/--stage options."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from mlops.backends.base import Backend

# Soft wrap: a line (a path, a URL, a reason) is never broken by inserted newlines, whatever the terminal's width,
# so it can be copied whole and read by a script; the terminal wraps what it must.
console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Exit non-zero with a one-line reason (never a traceback)."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


class BackendName(StrEnum):
    local = "local"
    aws = "aws"


class StageName(StrEnum):
    staging = "staging"
    production = "production"
    local = "local"


class AwsStageName(StrEnum):
    staging = "staging"
    production = "production"


# Typer shows an enum's members as the option's choices in --help.
BackendOpt = Annotated[BackendName, typer.Option("--backend", envvar="MLOPS_BACKEND", help="Where to run")]
StageOpt = Annotated[
    StageName | None,
    typer.Option("--stage", envvar="MLOPS_STAGE", help="aws: staging (default) or production; local: local"),
]
# Commands that exist only on AWS (pipeline upsert/start, lambda update-code, web publish).
AwsBackendOpt = Annotated[
    BackendName, typer.Option("--backend", envvar="MLOPS_BACKEND", help="aws: this command runs on AWS only")
]
AwsStageOpt = Annotated[AwsStageName, typer.Option("--stage", "--env", envvar="MLOPS_STAGE", help="The AWS stage")]


def open_backend(name: BackendName | str, stage: StageName | str | None) -> Backend:
    """The backend for --backend/--stage; a one-line failure when it cannot be opened."""
    from mlops.backends.base import BackendError
    from mlops.backends.factory import get_backend

    try:
        return get_backend(getattr(name, "value", name), getattr(stage, "value", stage))
    except BackendError as exc:
        fail(str(exc))
