"""Turn a trained network into the serving artifact: ONNX (fp32 + int8) and metadata.json.

The files are written into SM_MODEL_DIR; SageMaker (or the local runner) packs that folder
as model.tar.gz, which is what the model server loads.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tarfile
import tempfile
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from serving.preprocess import Preprocessing

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
METADATA_FILE = "metadata.json"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

log = logging.getLogger(__name__)


def git_sha() -> str:
    """The commit being trained (GIT_SHA env in CI/SageMaker, else git, else 'unknown')."""
    if os.environ.get("GIT_SHA"):
        return os.environ["GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def export_onnx(model: nn.Module, path: Path, input_size: int) -> None:
    """Export the eval-mode network with a dynamic batch dimension."""
    model = model.eval()
    dummy = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def quantize_int8(fp32_path: Path, int8_path: Path, calibration: Iterable[np.ndarray]) -> None:
    """Static int8 (QDQ, per-channel weights) calibrated on real photos: faster on CPU."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter({INPUT_NAME: x[None].astype(np.float32)} for x in calibration)

        def get_next(self) -> dict | None:
            return next(self._it, None)

    quiet = logging.getLogger()  # the quantizer reports scale adjustments on the root logger
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre))
        quantize_static(
            str(pre),
            str(int8_path),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
    quiet.setLevel(level)


def write_artifact(
    model: nn.Module,
    model_dir: Path,
    prep: Preprocessing,
    labels: list[str],
    calibration: list[np.ndarray],
    version: str,
    metrics: dict,
    extra: dict | None = None,
) -> dict:
    """Write model.onnx, model.int8.onnx and metadata.json into model_dir; return the metadata."""
    model_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, model_dir / FP32_FILE, prep.input_size)
    serving_file = FP32_FILE
    if calibration:
        quantize_int8(model_dir / FP32_FILE, model_dir / INT8_FILE, calibration)
        serving_file = INT8_FILE
    meta = {
        "name": "catdog-mobilenetv2",
        "labels": labels,
        **prep.to_metadata(),
        "version": version,
        "serving_model": serving_file,
        "reference_model": FP32_FILE,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "metrics": metrics,
        "git_sha": git_sha(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "framework": {"torch": torch.__version__.split("+")[0]},
        **(extra or {}),
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def pack_model_dir(model_dir: Path, tar_path: Path) -> Path:
    """Pack the model folder's files as model.tar.gz, as SageMaker does after a training job."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w:gz") as tar:
        for f in sorted(model_dir.iterdir()):
            if f.is_file():
                tar.add(f, arcname=f.name)
    return tar_path
