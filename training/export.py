"""Turn a trained network into the serving artifact: ONNX (float, and int8 when it holds up) and metadata.json.

The files are written into SM_MODEL_DIR; SageMaker (or the local runner) packs that folder
as model.tar.gz, which is what the model server loads.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from serving.preprocess import Preprocessing
from training.model_tar import git_sha

FP32_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

log = logging.getLogger(__name__)


def export_onnx(model: nn.Module, path: Path, input_size: int) -> None:
    """Export the eval-mode network; batch and image size are dynamic (the metadata fixes the size)."""
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
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def write_artifact(
    model: nn.Module,
    model_dir: Path,
    prep: Preprocessing,
    labels: list[str],
    version: str,
    metrics: dict,
    extra: dict | None = None,
    calibration: Sequence[np.ndarray] = (),
    validation: Sequence[np.ndarray] = (),
) -> dict:
    """Write model.onnx (and model.int8.onnx) and metadata.json into model_dir; return the metadata.

    With calibration tensors the int8 model is built and served when it agrees with the float
    model on the validation tensors; metadata["quantization"] records the comparison.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, model_dir / FP32_FILE, prep.input_size)
    serving_file = FP32_FILE
    quantization = None
    if len(calibration) > 0:
        check = validation if len(validation) > 0 else calibration
        serving_file, quantization = _quantize(model_dir, calibration, check)
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
        **({"quantization": quantization} if quantization else {}),
        **(extra or {}),
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def _quantize(model_dir: Path, calibration: Sequence[np.ndarray], validation: Sequence[np.ndarray]) -> tuple[str, dict]:
    """Build model.int8.onnx; (the file to serve, what the comparison with the float model found)."""
    from training.quantize import INT8_FILE, acceptable, quantization_report, quantize_int8

    int8 = quantize_int8(model_dir / FP32_FILE, model_dir / INT8_FILE, calibration, INPUT_NAME)
    report = quantization_report(model_dir / FP32_FILE, int8, validation, INPUT_NAME)
    report.update(format="QDQ, uint8 activations, int8 per-channel weights", calibration_photos=len(calibration))
    refusal = acceptable(report)
    if not refusal:
        return INT8_FILE, {**report, "served": True}
    log.warning("serving the float model: the int8 model failed its check: %s", refusal)
    int8.unlink()
    return FP32_FILE, {**report, "served": False, "reason": refusal}
