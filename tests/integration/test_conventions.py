"""The conventions a Python user expects: `python -m mlops` is the CLI, and the LICENSE is the one
pyproject.toml declares."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_python_dash_m_mlops_is_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "mlops", "--help"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Usage: mlops" in done.stdout and "promote" in done.stdout
    wrong = subprocess.run([sys.executable, "-m", "mlops", "no-such-command"], cwd=REPO, capture_output=True, text=True)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr


def test_the_license_file_is_the_declared_license() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    text = (REPO / "LICENSE").read_text()
    assert declared == "MIT" and text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
