"""Write (or check) the requirements files that are generated from uv.lock: Lambda, serving image, training jobs."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Target:
    """One generated file: the closure of an extra, less what its runtime already provides."""

    path: str
    extra: str
    purpose: str
    # Packages the runtime provides (with whatever only they need): left out of the file.
    provided: tuple[str, ...] = ()


TARGETS = (
    Target("lambda/requirements.txt", "lambda", "The API function's packages (infra/tools/lambda_zip.py)"),
    Target("serving/requirements.txt", "serve", "The model server's image (serving/Dockerfile)"),
    Target(
        "training/requirements.txt",
        "train",
        "The SageMaker training and evaluation jobs, on top of the PyTorch image (torch, torchvision)",
        provided=("torch", "torchvision"),
    ),
)


def uv_binary() -> str:
    """The uv beside this interpreter (the Makefile installs it into the virtualenv), else on PATH."""
    found = os.environ.get("UV") or shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        raise SystemExit("uv is not installed: run `make venv`")
    return found


def _names(deps: list[str]) -> list[str]:
    return [re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0] for dep in deps]


def base_dependencies(root: Path, extra: str = "") -> list[str]:
    """The names of the project's own (control-plane) dependencies: not part of a generated file, unless
    its extra names them too (the jobs need cryptography as the control plane does)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    named = set(_names(project.get("optional-dependencies", {}).get(extra, [])))
    return [name for name in _names(project["dependencies"]) if name not in named]


def render(target: Target, root: Path = REPO) -> str:
    """The file's text: a header, then `uv export` of the extra from the lock, with hashes."""
    prune = [*base_dependencies(root, target.extra), *target.provided]
    command = [uv_binary(), "export", "--frozen", "--offline", "--no-header", "--no-emit-project", "--no-dev"]
    command += ["--extra", target.extra, *(arg for name in prune for arg in ("--prune", name))]
    out = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"uv export failed for {target.path}: {out.stderr.strip()}")
    header = (
        f"# {target.purpose}.\n"
        f"# Generated from uv.lock by `make requirements` (the `{target.extra}` extra"
        + (f", without {', '.join(target.provided)}" if target.provided else "")
        + "): do not edit.\n"
    )
    return header + out.stdout


def drift(root: Path = REPO) -> list[str]:
    """A unified diff per generated file that differs from what the lock gives (empty: all in step)."""
    problems = []
    for target in TARGETS:
        path = root / target.path
        current = path.read_text() if path.is_file() else ""
        wanted = render(target, root)
        if current != wanted:
            diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), target.path, "uv.lock", lineterm="")
            problems.append("\n".join(list(diff)[:40]))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: --check reports drift (exit 1); otherwise the files are rewritten."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a file differs from the lock")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("requirements files differ from uv.lock: run `make requirements`", file=sys.stderr)
        return 1 if problems else 0
    for target in TARGETS:
        (REPO / target.path).write_text(render(target))
        print(f"wrote {target.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
