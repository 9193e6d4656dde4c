"""Build the API function's package reproducibly: pinned wheels for Lambda plus classify_api/, zipped."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

# Lambda runs Amazon Linux on x86_64 with CPython 3.12 (the function's runtime in infra/lambda.tf).
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.12"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
IMAGE_CONTRACT = Path(__file__).resolve().parents[2] / "serving" / "image_contract.py"
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
# Distributions the Lambda Python runtime already provides (pulled in as dependencies, e.g. by
# aws-xray-sdk): left out of the package, which shrinks it from ~18 MB to ~2 MB.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python_dateutil", "six"}


def install_requirements(requirements: Path, target: Path) -> None:
    """pip-install the requirements as Lambda-compatible binary wheels into target."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--only-binary",
        ":all:",
        "--platform",
        PLATFORM,
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    subprocess.run(command, check=True, env=env)


def drop_runtime_provided(target: Path) -> list[str]:
    """Remove the files of distributions the runtime provides (by their RECORD); return their names."""
    dropped = []
    for dist_info in sorted(target.glob("*.dist-info")):
        name = dist_info.name.split("-")[0].lower().replace("-", "_")
        record = dist_info / "RECORD"
        if name not in RUNTIME_PROVIDED or not record.is_file():
            continue
        for line in record.read_text().splitlines():
            relative = line.split(",")[0]
            path = (target / relative).resolve()
            if relative and path.is_relative_to(target.resolve()) and path.is_file():
                path.unlink()
        shutil.rmtree(dist_info, ignore_errors=True)
        dropped.append(name)
    for folder in sorted(target.rglob("*"), reverse=True):  # folders the removals emptied
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return dropped


def iter_files(root: Path) -> Iterable[Path]:
    """Every file under root that belongs in the package, in a stable order."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in SKIPPED_DIRS for part in relative.parts):
            continue
        if path.is_file() and path.suffix not in SKIPPED_SUFFIXES:
            yield path


def write_zip(root: Path, output: Path) -> int:
    """Zip root's files with fixed timestamps and permissions; return the number of entries."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(output.suffix + ".tmp")
    count = 0
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in iter_files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3
            archive.writestr(info, path.read_bytes(), compresslevel=9)
            count += 1
    partial.replace(output)
    return count


def stage(build_dir: Path, requirements: Path | None, package: Path) -> None:
    """Fill build_dir afresh with the requirements' wheels and a copy of the package."""
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    if requirements is not None and requirements.is_file():
        install_requirements(requirements, build_dir)
        dropped = drop_runtime_provided(build_dir)
        if dropped:
            print(f"lambda-zip: left out (in the Lambda runtime): {', '.join(dropped)}", file=sys.stderr)
    else:
        print(f"lambda-zip: no {requirements}, packaging the code alone", file=sys.stderr)
    if package.is_dir():
        shutil.copytree(package, build_dir / package.name, ignore=shutil.ignore_patterns(*SKIPPED_DIRS))
        if IMAGE_CONTRACT.is_file():  # the model server's image contract, the one the function must share
            shutil.copyfile(IMAGE_CONTRACT, build_dir / package.name / IMAGE_CONTRACT.name)
    else:
        print(f"lambda-zip: no {package} yet, the package has no function code", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: stage the package into --build-dir and zip it to --output."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requirements", type=Path, default=Path("lambda/requirements.txt"))
    parser.add_argument("--package", type=Path, default=Path("lambda/classify_api"))
    parser.add_argument("--build-dir", type=Path, default=Path("build/lambda"))
    parser.add_argument("--output", type=Path, default=Path("build/lambda.zip"))
    parser.add_argument("--no-deps", action="store_true", help="package the code only (no pip install)")
    args = parser.parse_args(argv)

    stage(args.build_dir, None if args.no_deps else args.requirements, args.package)
    count = write_zip(args.build_dir, args.output)
    size_kib = args.output.stat().st_size // 1024
    print(f"lambda-zip: wrote {args.output} ({count} files, {size_kib} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
