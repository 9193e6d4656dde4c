"""The Lambda package builder: reproducible zips, no caches, runtime-provided libraries left out."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "infra" / "tools"))

import lambda_zip  # noqa: E402


def make_package(root: Path) -> Path:
    package = root / "classify_api"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Package."""\n')
    (package / "handler.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    (package / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"\0")
    return package


def build(tmp: Path, package: Path, name: str) -> Path:
    output = tmp / f"{name}.zip"
    lambda_zip.main(["--no-deps", "--package", str(package), "--build-dir", str(tmp / name), "--output", str(output)])
    return output


def test_zip_is_reproducible_and_clean(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    first = build(tmp_path, package, "one")
    (package / "handler.py").touch()  # a newer mtime must not change the archive
    second = build(tmp_path, package, "two")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert (
            names
            == sorted(names)
            == ["classify_api/__init__.py", "classify_api/handler.py", "classify_api/image_contract.py"]
        )
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert (info.external_attr >> 16) & 0o777 == 0o644


def test_runtime_provided_distributions_are_dropped(tmp_path: Path) -> None:
    target = tmp_path / "target"
    for dist, files in {
        "botocore-1.0": ["botocore/__init__.py", "botocore/data/x.json"],
        "wrapt-2.0": ["wrapt/__init__.py"],
    }.items():
        info = target / f"{dist}.dist-info"
        info.mkdir(parents=True)
        for relative in files:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).write_text("x")
        (info / "RECORD").write_text("".join(f"{relative},,\n" for relative in files))
    assert lambda_zip.drop_runtime_provided(target) == ["botocore"]
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "wrapt-2.0.dist-info/RECORD",
        "wrapt/__init__.py",
    ]


def test_missing_package_still_builds(tmp_path: Path) -> None:
    output = build(tmp_path, tmp_path / "absent", "empty")
    with zipfile.ZipFile(output) as archive:
        assert archive.namelist() == []
