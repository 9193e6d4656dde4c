"""Training and processing jobs of a pipeline step, carried out by the project's own code.

SageMaker runs a training job in a container: it downloads each S3 input channel to
/opt/ml/input/data/<channel>, unpacks the code bundle (`sagemaker_submit_directory`) and runs
`sagemaker_program` with the other hyperparameters as `--name value` arguments, the SM_* variables
and the job's Environment; it then packs /opt/ml/model into <S3OutputPath>/<job>/output/model.tar.gz.
A processing job downloads every ProcessingInput to its LocalPath, runs the ContainerEntrypoint and
uploads each ProcessingOutput's LocalPath to its S3Uri.

Stand-ins (no Docker): the container's file system is a folder per job (paths under /opt/ml/ are
rewritten into it, in the entry point's arguments and in a shell entry script); the image's Python
is this virtualenv, which already holds what the bundle's requirements.txt pins, so `pip` on the
job's PATH reports that and installs nothing; what the image would download at run time (the
pretrained weights) comes from `container_env` (e.g. PRETRAINED_WEIGHTS).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from aws_emulator.processes import base_env, python

OPT = "/opt/ml/"


def download(s3: Any, uri: str, dest: Path) -> None:
    """An object into dest/<its name>, or every object under a prefix into dest/<relative path>."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        (dest / key.rsplit("/", 1)[-1]).write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return
    except s3.exceptions.ClientError:
        pass
    prefix = key.rstrip("/") + "/"
    found = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = dest / item["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            found += 1
    if not found:
        raise RuntimeError(f"ClientError: no data found at {uri}")


def upload_folder(s3: Any, folder: Path, uri: str) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.put_object(
            Bucket=bucket, Key=f"{key.rstrip('/')}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes()
        )


def _shim_bin(root: Path) -> Path:
    """pip (the image already has the packages) and python (the image's interpreter) for the job."""
    shim = root / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "pip").write_text("#!/bin/sh\necho 'pip: requirements are preinstalled in this image'\n")
    (shim / "python").write_text(f'#!/bin/sh\nexec "{python()}" "$@"\n')
    for name in ("pip", "python"):
        (shim / name).chmod(0o755)
    return shim


def _run(args: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float) -> None:
    with log.open("ab") as out:
        result = subprocess.run(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"AlgorithmError: exit code {result.returncode}: {' | '.join(tail)[-600:]}")


def run_training(s3: Any, name: str, args: dict, root: Path, container_env: dict[str, str]) -> str:
    """Carry out CreateTrainingJob `args`; returns S3ModelArtifacts."""
    hp = {k: json.loads(v) if v.startswith('"') else v for k, v in args.get("HyperParameters", {}).items()}
    code = root / "code"
    download(s3, hp["sagemaker_submit_directory"], root / "bundle")
    bundle = next((root / "bundle").iterdir())
    code.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bundle) as tar:
        tar.extractall(code, filter="data")
    env = base_env()
    env.update({k: str(v) for k, v in args.get("Environment", {}).items()})
    env.update(container_env)
    for channel in args.get("InputDataConfig", []):
        where = root / "input" / "data" / channel["ChannelName"]
        download(s3, channel["DataSource"]["S3DataSource"]["S3Uri"], where)
        env[f"SM_CHANNEL_{channel['ChannelName'].upper()}"] = str(where)
    model_dir, output = root / "model", root / "output" / "data"
    model_dir.mkdir(parents=True, exist_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    env.update(
        SM_MODEL_DIR=str(model_dir),
        SM_OUTPUT_DATA_DIR=str(output),
        TRAINING_JOB_NAME=name,
        PYTHONPATH=str(code),
        PATH=f"{_shim_bin(root)}{os.pathsep}{env.get('PATH', '')}",
    )
    cli = [x for k, v in hp.items() if not k.startswith("sagemaker_") for x in (f"--{k}", str(v))]
    timeout = float(args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
    _run([python(), str(code / hp["sagemaker_program"]), *cli], env, code, root / "job.log", timeout)
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    bucket, _, key = args["OutputDataConfig"]["S3OutputPath"].removeprefix("s3://").partition("/")
    object_key = f"{key.rstrip('/')}/{name}/output/model.tar.gz".lstrip("/")
    s3.put_object(Bucket=bucket, Key=object_key, Body=archive.read_bytes())
    return f"s3://{bucket}/{object_key}"


def _local(root: Path, path: str) -> str:
    return str(root) + "/" + path[1:] if path.startswith(OPT) else path


def run_processing(
    s3: Any, args: dict, root: Path, container_env: dict[str, str], role_env: dict[str, str] | None = None
) -> dict[str, Path]:
    """Carry out CreateProcessingJob `args`; returns the local folder of each output.

    role_env: what the container's SDKs find, as SageMaker gives a job: the endpoint and temporary
    credentials of the job's RoleArn (its calls are authorized as that role); the job's own Environment
    cannot replace them."""
    for item in args.get("ProcessingInputs", []):
        spec = item["S3Input"]
        download(s3, spec["S3Uri"], Path(_local(root, spec["LocalPath"])))
    outputs = {}
    for item in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
        folder = Path(_local(root, item["S3Output"]["LocalPath"]))
        folder.mkdir(parents=True, exist_ok=True)
        outputs[item["OutputName"]] = folder
    entry = [_local(root, a) for a in args["AppSpecification"].get("ContainerEntrypoint", [])]
    entry += [_local(root, a) for a in args["AppSpecification"].get("ContainerArguments", [])]
    for i, arg in enumerate(entry):
        path = Path(arg)
        if path.suffix == ".sh" and path.is_file():  # the script names container paths too
            script = path.read_text().replace(OPT, str(root) + OPT)
            rewritten = path.with_name(f".{path.name}")
            rewritten.write_text(script)
            entry[i] = str(rewritten)
    env = base_env()
    env.update({k: str(v) for k, v in args.get("Environment", {}).items()})
    env.update(role_env or {})
    env.update(container_env)
    env["PATH"] = f"{_shim_bin(root)}{os.pathsep}{env.get('PATH', '')}"
    timeout = float(args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
    _run(entry, env, root, root / "job.log", timeout)
    for item in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
        upload_folder(s3, outputs[item["OutputName"]], item["S3Output"]["S3Uri"])
    return outputs
