"""actions/checkout for the rehearsal: a clone of HEAD, the shared virtualenv linked in, a current lambda.zip."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

WORKFLOWS = ".github/workflows"


def link_venv(shared: Path, venv: Path, extras: set[str]) -> None:
    """The checkout's .venv: links to the shared virtualenv, with stamp files and a bin/ of its own.

    `make` targets that depend on `venv` find it installed (a stamp per EXTRAS the workflows name);
    `uv` is replaced by a stub that fails, so nothing from the checkout can re-sync the shared
    environment (a sync would repoint its editable install at the checkout)."""
    venv.mkdir()
    for entry in shared.iterdir():
        if entry.name in (".lock", "bin") or entry.name.startswith((".installed", ".uv-")):
            continue
        (venv / entry.name).symlink_to(entry)
    for stamp in [p.name for p in shared.glob(".uv-*")] + [".installed"]:
        (venv / stamp).touch()  # newer than every file of the fresh clone
    for extra in extras - {"all"}:
        (venv / f".installed-{'-'.join(extra.split())}").touch()
    (venv / "bin").mkdir()
    for entry in (shared / "bin").iterdir():
        if entry.name != "uv":
            (venv / "bin" / entry.name).symlink_to(entry)
    stub = venv / "bin" / "uv"
    stub.write_text(
        "#!/bin/sh\necho 'rehearsal: packages are not installed here (the shared .venv is used)' >&2\nexit 3\n"
    )
    stub.chmod(0o755)


def workflow_extras(workspace: Path) -> set[str]:
    """Every EXTRAS value the workflows set (`EXTRAS: x y` or `EXTRAS=x`)."""
    found = set()
    for path in (workspace / WORKFLOWS).glob("*.yml"):
        for match in re.finditer(r"EXTRAS(?::\s*|=)[\"']?([a-z][a-z \-]*[a-z])", path.read_text()):
            found.add(match.group(1).strip())
    return found


def prepare_workspace(repo: Path, workspace: Path) -> str:
    """actions/checkout: a clone of the repository's HEAD, with the shared .venv linked in; returns the SHA."""
    if workspace.exists():
        shutil.rmtree(workspace)
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(repo), str(workspace)], check=True)
    link_venv(repo / ".venv", workspace / ".venv", workflow_extras(workspace))
    lambda_zip = repo / "build" / "lambda.zip"  # reuse what `make lambda-zip` built when it is current
    sources = [p for d in ("lambda", "serving") for p in (repo / d).rglob("*") if p.is_file()]
    sources.append(repo / "infra" / "tools" / "lambda_zip.py")
    if lambda_zip.is_file() and all(p.stat().st_mtime <= lambda_zip.stat().st_mtime for p in sources):
        (workspace / "build").mkdir(exist_ok=True)
        shutil.copyfile(lambda_zip, workspace / "build" / "lambda.zip")  # newer than the fresh clone
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workspace, capture_output=True, text=True, check=True)
    return sha.stdout.strip()
