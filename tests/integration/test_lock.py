"""uv.lock is the one source of pins: it matches pyproject.toml, hashes every file, and the requirements files
generated from it (Lambda, serving image, training jobs) have not drifted."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from lock_support import PROJECT, REPO, dependents, lock_hashes, lock_packages, normalize, read_requirements

sys.path.insert(0, str(REPO / "infra" / "tools"))
import lock_requirements as tool

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def uv() -> str:
    return tool.uv_binary()


def declared_pins() -> dict[str, str]:
    """Every `name==version` of pyproject.toml: the dependencies and each extra (self-references skipped)."""
    project = PYPROJECT["project"]
    pins = {}
    for spec in [*project["dependencies"], *(d for deps in project["optional-dependencies"].values() for d in deps)]:
        if spec.startswith(PROJECT):
            continue
        name, sep, version = re.sub(r"\[.*?\]", "", spec).partition("==")
        assert sep and re.fullmatch(r"[0-9][0-9a-z.]*", version), f"pyproject.toml: not an exact pin: {spec}"
        pins[normalize(name)] = version
    return pins


def test_the_lock_matches_pyproject_offline() -> None:
    out = subprocess.run([uv(), "lock", "--check", "--offline"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_every_declared_pin_is_the_locked_version() -> None:
    locked = lock_packages()
    for name, version in declared_pins().items():
        assert locked[name]["version"] == version, f"pyproject.toml pins {name}=={version}, uv.lock has another"


def test_every_locked_file_has_a_sha256() -> None:
    for name, package in lock_packages().items():
        if name == PROJECT:
            continue
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        assert files, f"{name}: no file in the lock"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", f.get("hash", "")) for f in files), name
        assert package["source"] == {"registry": "https://pypi.org/simple"}, f"{name} comes from {package['source']}"


def test_no_hand_kept_copy_of_the_pins() -> None:
    assert not (REPO / "constraints.txt").exists()
    makefile = (REPO / "Makefile").read_text()
    assert "constraints.txt" not in makefile and "uv.lock" in makefile


@pytest.mark.parametrize("target", tool.TARGETS, ids=lambda t: t.path)
def test_generated_requirements_have_not_drifted(target) -> None:
    path = REPO / target.path
    assert path.read_text() == tool.render(target), f"{target.path} differs from uv.lock: run `make requirements`"
    locked = lock_packages()
    for name, pin in read_requirements(path).items():
        assert pin.version == locked[name]["version"], name
        assert pin.hashes and set(pin.hashes) <= lock_hashes(locked[name]), f"{name}: hashes not from the lock"


def test_drift_is_reported(tmp_path: Path) -> None:
    """A hand edit of a generated file (here: a version bumped by hand) is caught, with a diff naming the file."""
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    for target in tool.TARGETS:
        (tmp_path / target.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / target.path, tmp_path / target.path)
    assert tool.drift(tmp_path) == []
    serving = tmp_path / "serving" / "requirements.txt"
    serving.write_text(serving.read_text().replace("numpy==2.4.6", "numpy==2.4.7"))
    (problem,) = tool.drift(tmp_path)
    assert "serving/requirements.txt" in problem and "-numpy==2.4.7" in problem and "+numpy==2.4.6" in problem
    out = subprocess.run(
        [sys.executable, str(REPO / "infra" / "tools" / "lock_requirements.py"), "--check"], capture_output=True
    )
    assert out.returncode == 0, out.stderr  # the repository itself is in step


def test_training_requirements_leave_torch_to_the_image() -> None:
    pins = read_requirements(REPO / "training" / "requirements.txt")
    assert {"onnx", "onnxscript", "onnxruntime", "mlflow", "tqdm", "matplotlib"} <= set(pins)
    assert not {"torch", "torchvision", "triton"} & set(pins)
    assert not [name for name in pins if name.startswith(("nvidia-", "cuda-"))]
    assert not {"typer", "rich", "boto3"} & set(pins)  # the control plane is not in the job


def test_cpu_torch_install_skips_exactly_the_cuda_stack(tmp_path: Path) -> None:
    """`make venv TORCH_INDEX=...` leaves out torch, torchvision and what only they need, then installs the
    locked torch and torchvision versions from that index."""
    index = "https://download.pytorch.org/whl/cpu"
    out = subprocess.run(
        ["make", "-n", "venv", f"VENV={tmp_path / 'venv'}", f"TORCH_INDEX={index}", "EXTRAS=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    skipped = set(re.findall(r"--no-install-package (\S+)", out))
    locked = lock_packages()
    stack = {n for n in locked if n.startswith(("nvidia-", "cuda-")) or n == "triton"} | {"torch", "torchvision"}
    assert skipped == stack
    needed_by = dependents(locked)
    for name in stack - {"torch", "torchvision"}:
        assert needed_by[name] <= stack, f"{name} is needed by {needed_by[name] - stack}: it must not be skipped"
    torch, vision = locked["torch"]["version"], locked["torchvision"]["version"]
    pins = f"torch=={torch} torchvision=={vision}"
    assert re.search(rf"--no-deps --compile-bytecode --index-url {re.escape(index)} {pins}\n", out)
    assert (torch, vision) == ("2.15.0", "0.29.2")
