"""Post-training int8 quantization of the exported network: the model the server runs.

Static quantization in ONNX Runtime's QDQ format: uint8 activations calibrated (min/max) on
training photos preprocessed exactly as the server preprocesses them, int8 weights per output
channel with a 7-bit range (the AVX2 kernels' u8×s8 products cannot saturate then). The stem and
the first inverted-residual block stay in float: their activations span the widest range and
quantizing them costs accuracy for little speed.

The int8 model ships only when it follows the float model on the validation photos
(quantization_report, acceptable); otherwise the artifact serves the float model, and says why.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

INT8_FILE = "model.int8.onnx"
FLOAT_CONVS = 3  # stem conv + the first block's depthwise and projection convs
MIN_AGREEMENT = 0.99  # share of confidently classified validation photos on which int8 picks the float label
MAX_MEAN_PROB_DIFF = 0.02  # mean absolute difference between the two models' class probabilities
CONFIDENT = 0.6  # a photo the float model classifies at least this surely (a coin-toss photo may flip either way)


def _first_convs(model_path: Path, n: int) -> list[str]:
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type == "Conv"][:n]


def quantize_int8(
    fp32_path: Path, out_path: Path, calibration: Iterable[np.ndarray], input_name: str, float_convs: int = FLOAT_CONVS
) -> Path:
    """Write the int8 QDQ model of fp32_path to out_path, calibrated on [3, H, W] tensors."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = iter([{input_name: x[None].astype(np.float32, copy=False)} for x in calibration])

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(batches, None)

    with tempfile.TemporaryDirectory(prefix="quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_first_convs(prepared, float_convs),
        )
    return out_path


def quantization_report(fp32_path: Path, int8_path: Path, tensors: Sequence[np.ndarray], input_name: str) -> dict:
    """How closely the int8 model follows the float one on `tensors` (label agreement, probabilities)."""
    from serving.predictor import make_session
    from serving.preprocess import softmax

    batch = np.stack(list(tensors)).astype(np.float32, copy=False)
    probs = []
    for path in (fp32_path, int8_path):
        session = make_session(path, 0, 0)
        chunks = [session.run(None, {input_name: batch[i : i + 32]})[0] for i in range(0, len(batch), 32)]
        logits = np.concatenate(chunks)
        probs.append(softmax(logits))
    same = probs[0].argmax(1) == probs[1].argmax(1)
    confident = probs[0].max(1) >= CONFIDENT
    diff = np.abs(probs[0] - probs[1])
    return {
        "photos": len(batch),
        "label_agreement": round(float(same.mean()), 4),
        "confident_photos": int(confident.sum()),
        "confident_agreement": round(float(same[confident].mean()) if confident.any() else 1.0, 4),
        "max_prob_diff": round(float(diff.max()), 4),
        "mean_prob_diff": round(float(diff.mean()), 4),
    }


def acceptable(report: dict) -> str:
    """Why the int8 model must not be served ("" when it may)."""
    if report["confident_agreement"] < MIN_AGREEMENT:
        return f"it changes the label of confidently classified photos (agreement {report['confident_agreement']})"
    if report["mean_prob_diff"] > MAX_MEAN_PROB_DIFF:
        return f"its probabilities drift from the float model's (mean difference {report['mean_prob_diff']})"
    return ""
