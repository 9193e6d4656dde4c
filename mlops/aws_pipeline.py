"""The training pipeline on AWS through boto3: code bundle, start, wait, outcome and job summary."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.backends.aws.registry import read_accuracy, split_s3_uri

# What the training and evaluation containers install on top of the PyTorch image: generated from uv.lock
# (`make requirements`), with hashes; the bundle ships these bytes unchanged as its requirements.txt.
TRAINING_REQUIREMENTS = Path("training") / "requirements.txt"
BUNDLE_DIRS = ("training", "serving")
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})
# "Test accuracy 0.85 is below the threshold max(0.9, 0.5)" (the pipeline) or "… threshold 0.9" (older runs).
GATE_MESSAGE = re.compile(
    r"accuracy\s+([0-9.]+)\s+is below the threshold\s+(?:max\(\s*([0-9.]+)\s*,\s*)?([0-9.]+)", re.IGNORECASE
)


def training_requirements(root: Path) -> bytes:
    """requirements.txt of the code bundle: training/requirements.txt as `make requirements` wrote it."""
    path = root / TRAINING_REQUIREMENTS
    if not path.is_file():
        raise ValueError(f"{path} is missing: run `make requirements`")
    return path.read_bytes()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def build_code_bundle(root: Path, output: Path) -> Path:
    """sourcedir.tar.gz: training/, serving/ and requirements.txt; the same sources give the same bytes."""
    files = sorted(
        p
        for d in BUNDLE_DIRS
        for p in (root / d).rglob("*")
        if p.is_file() and not SKIP_PARTS.intersection(p.parts) and p.suffix != ".pyc"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, "requirements.txt", training_requirements(root))
        for path in files:
            mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            _add(tar, path.relative_to(root).as_posix(), path.read_bytes(), mode)
    return output


def upload(s3: Any, path: Path, uri: str) -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def execution_parameters(requested: dict[str, str]) -> tuple[dict[str, str], float | None, str]:
    """The parameters a start sends, the threshold the gate will apply, and a notice when it was raised.

    ValueError for a name the pipeline does not declare — ModelApprovalStatus among them: every version
    registers as PendingManualApproval; InputDataUri too: the photos are the stack's — and for a threshold
    that is not a number. A threshold below
    the floor is raised to it, as the pipeline's own condition would.
    """
    from pipelines.sagemaker_pipeline import parameters
    from pipelines.settings import DATA_PREFIX, PENDING, PipelineSettings, gate_threshold

    known = [p["Name"] for p in parameters(PipelineSettings())]
    out = dict(requested)
    if "ModelApprovalStatus" in out:
        raise ValueError(
            f"ModelApprovalStatus is not a pipeline parameter: every version registers as {PENDING}; "
            "approve one with `mlops approve N`"
        )
    if "InputDataUri" in out:
        raise ValueError(
            "InputDataUri is not a pipeline parameter: the pipeline reads the photos at the stack's data location "
            f"(s3://<artifact bucket>/{DATA_PREFIX}); upload new ones there with `mlops data upload`"
        )
    unknown = sorted(set(out) - set(known))
    if unknown:
        raise ValueError(f"unknown pipeline parameter {', '.join(unknown)} (known: {', '.join(known)})")
    if "AccuracyThreshold" not in out:
        return out, None, ""
    try:
        value = float(out["AccuracyThreshold"])
    except ValueError:
        raise ValueError(f"AccuracyThreshold {out['AccuracyThreshold']!r} is not a number") from None
    threshold, notice = gate_threshold(value)
    if notice:
        out["AccuracyThreshold"] = f"{threshold:g}"
    return out, threshold, notice


def start_execution(sm: Any, pipeline: str, parameters: dict[str, str], description: str) -> str:
    response = sm.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in parameters.items()],
        PipelineExecutionDescription=description[:3072],
    )
    return str(response["PipelineExecutionArn"])


def wait_execution(
    sm: Any,
    arn: str,
    poll_s: float,
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_status: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Poll until the execution ends; TimeoutError when it has not after timeout_s."""
    deadline, last = clock() + timeout_s, ""
    while True:
        desc: dict[str, Any] = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        status = desc["PipelineExecutionStatus"]
        if status != last:
            on_status(status)
            last = status
        if status in TERMINAL:
            return desc
        if clock() >= deadline:
            raise TimeoutError(f"pipeline execution still {status} after {timeout_s:.0f} s: {arn}")
        sleep(poll_s)


@dataclass
class Outcome:
    """What an execution did: its status, the accuracy and gate, the model version it registered."""

    arn: str
    status: str
    failure_reason: str = ""
    accuracy: float | None = None
    threshold: float | None = None
    gate: str = ""  # passed | failed | "" (not reached)
    gate_message: str = ""
    model_package_arn: str = ""
    model_version: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)


def _evaluation_accuracy(sm: Any, s3: Any, job_arn: str) -> float | None:
    """metrics.accuracy.value of the Evaluate job's evaluation.json; None when it cannot be read."""
    try:
        job = sm.describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
        outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
        uri = next(o["S3Output"]["S3Uri"] for o in outputs if o.get("OutputName") == "evaluation")
        bucket, key = split_s3_uri(uri.rstrip("/") + "/evaluation.json")
        return read_accuracy(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    except (ClientError, BotoCoreError, StopIteration, KeyError, ValueError):
        return None


def collect_outcome(sm: Any, s3: Any, desc: dict[str, Any], threshold: float | None = None) -> Outcome:
    arn = desc["PipelineExecutionArn"]
    out = Outcome(arn, desc["PipelineExecutionStatus"], desc.get("FailureReason", ""), threshold=threshold)
    pages = sm.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=arn, SortOrder="Ascending")
    evaluation_job = ""
    for step in (s for page in pages for s in page.get("PipelineExecutionSteps", [])):
        meta = step.get("Metadata", {})
        out.steps.append(step)
        if "ProcessingJob" in meta and not evaluation_job:
            evaluation_job = meta["ProcessingJob"].get("Arn", "")
        if "Condition" in meta:
            out.gate = "passed" if str(meta["Condition"].get("Outcome")).lower() == "true" else "failed"
        if "Fail" in meta:
            out.gate, out.gate_message = "failed", meta["Fail"].get("ErrorMessage", "") or step.get("FailureReason", "")
        if "RegisterModel" in meta and step.get("StepStatus") == "Succeeded":
            out.model_package_arn = meta["RegisterModel"].get("Arn", "")
            out.model_version = out.model_package_arn.rsplit("/", 1)[-1]
    if evaluation_job:
        out.accuracy = _evaluation_accuracy(sm, s3, evaluation_job)
    match = GATE_MESSAGE.search(out.gate_message or out.failure_reason)
    if match:
        applied = max(float(g) for g in match.groups()[1:] if g)
        out.accuracy = out.accuracy if out.accuracy is not None else float(match.group(1))
        out.threshold = out.threshold if out.threshold is not None else applied
    return out


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value or "")


def summary_markdown(out: Outcome, stage: str) -> str:
    """The job summary: status, accuracy against the gate, the registered version, each step."""
    rows = [("execution", f"`{out.arn}`"), ("status", out.status)]
    if out.accuracy is not None:
        rows.append(("test accuracy", f"{out.accuracy:.4f}"))
    if out.threshold is not None:
        rows.append(("threshold", f"{out.threshold:.4f}"))
    if out.gate:
        rows.append(("accuracy gate", out.gate))
    if out.model_version:
        rows.append(
            (
                "registered model version",
                f"{out.model_version} (approve: `mlops approve {out.model_version} --backend aws --stage {stage}`)",
            )
        )
    if out.gate_message or out.failure_reason:
        rows.append(("failure", (out.gate_message or out.failure_reason).replace("|", "/")))
    lines = [f"### Training pipeline ({stage}): {out.status}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if out.steps:
        lines += ["", "| step | status | started | ended |", "|---|---|---|---|"]
        lines += [
            f"| {s.get('StepName', '')} | {s.get('StepStatus', '')} | {_when(s.get('StartTime'))} | "
            f"{_when(s.get('EndTime'))} |"
            for s in out.steps
        ]
    return "\n".join(lines) + "\n"
