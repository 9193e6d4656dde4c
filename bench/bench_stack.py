"""A local stack serving the model `make bench-train` just trained, for `make bench-serve` when none is up.

bench-train keeps its state folder (build/bench-home) and names it in build/bench-train.json. Here
`mlops up` starts the local stack in that folder on a free API port: with no release yet, it serves the
newest registered version (the one bench-train registered) through the same path a release does (API
front → function version behind its alias → endpoint's model server). `mlops down` stops it when the
benchmark ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.serve_load import free_port

REPO = Path(__file__).resolve().parents[1]
TRAIN_JSON = REPO / "build" / "bench-train.json"


def trained_home(train_json: Path = TRAIN_JSON) -> tuple[Path, str] | None:
    """(state folder, registered version) of bench-train's last run, when it kept one."""
    try:
        data = json.loads(train_json.read_text())
    except (OSError, ValueError):
        return None
    home, version = data.get("state_dir"), data.get("registered_version")
    if not home or not version or not Path(home, "mlflow.db").is_file():
        return None
    return Path(home), str(version)


def mlops(home: Path, env: dict[str, str], *args: str) -> str:
    """Run one `mlops` command in the state folder; its last error line when it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        cwd=REPO,
        env={**os.environ, **env, "MLOPS_HOME": str(home)},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"mlops {' '.join(args)}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


@contextmanager
def trained_stack(home: Path, version: str) -> Iterator[dict[str, str]]:
    """The stack of `home` serving `version` behind a free API port; yields the environment that names it."""
    env = {"MLOPS_HOME": str(home), "API_PORT": str(free_port())}
    print(f"local stack for version {version} of {home} (API port {env['API_PORT']}) ...", flush=True)
    try:
        info = json.loads(mlops(home, env, "up", "--json"))
        if str(info.get("model_version")) != version:
            raise RuntimeError(f"the stack in {home} serves version {info.get('model_version')}, not {version}")
        yield env
    finally:
        try:
            mlops(home, env, "down")
        except RuntimeError as exc:
            print(f"warning: {exc}", file=sys.stderr)
