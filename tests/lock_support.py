"""Read uv.lock and the requirements files generated from it (pins, hashes, the dependency graph)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "uv.lock"
PROJECT = "catdog-mlops"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One requirement of a generated file: exact version and the hashes pip checks."""

    name: str
    version: str
    hashes: tuple[str, ...]


def read_requirements(path: Path) -> dict[str, Pin]:
    """name -> Pin, from a `uv export` file (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^ ;]+)(?: ;[^-]*)?((?:\s*--hash=sha256:[0-9a-f]{64})*)", line)
        assert match, f"{path.name}: not an exact pin with hashes: {line[:120]}"
        name, version, hashes = match.groups()
        pins[normalize(name)] = Pin(normalize(name), version, tuple(re.findall(r"[0-9a-f]{64}", hashes)))
    return pins


def lock_packages() -> dict[str, dict]:
    """name -> the lock's [[package]] table (one version per name in this lock)."""
    packages: dict[str, dict] = {}
    for package in tomllib.loads(LOCK.read_text())["package"]:
        assert package["name"] not in packages, f"{package['name']} is locked at two versions"
        packages[package["name"]] = package
    return packages


def lock_hashes(package: dict) -> set[str]:
    files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
    return {f["hash"].removeprefix("sha256:") for f in files if "hash" in f}


def dependents(packages: dict[str, dict]) -> dict[str, set[str]]:
    """name -> the names of the locked packages that depend on it (extras included)."""
    out: dict[str, set[str]] = {name: set() for name in packages}
    for name, package in packages.items():
        edges = list(package.get("dependencies", []))
        for extra in package.get("optional-dependencies", {}).values():
            edges += extra
        for edge in edges:
            out.setdefault(edge["name"], set()).add(name)
    return out
