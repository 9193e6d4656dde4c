"""ONNX Runtime inference over an artifact: bytes or tensors in, class probabilities out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from serving.artifact import Artifact, open_artifact
from serving.preprocess import Preprocessing, preprocess_bytes, softmax


def session_options(threads: int = 0, spin_us: int | None = None) -> ort.SessionOptions:
    """CPU session options: all graph optimisations, `threads` intra-op threads (0 = ORT's choice).

    spin_us bounds how long idle pool threads busy-wait for the next task (0 = never spin):
    spinning makes multi-threaded runs faster but burns CPU that other processes need.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    if spin_us is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_us > 0 else "0")
        if spin_us > 0:
            options.add_session_config_entry("session.intra_op.spin_duration_us", str(spin_us))
    return options


def make_session(path: str | Path, threads: int = 0, spin_us: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session on the model file at `path`."""
    return ort.InferenceSession(str(path), session_options(threads, spin_us), providers=["CPUExecutionProvider"])


class Predictor:
    """One ONNX Runtime session on the CPU, with the artifact's labels and preprocessing."""

    def __init__(self, artifact: Artifact, model_file: Path | None = None, threads: int | None = None):
        self.artifact = artifact
        self.labels = artifact.labels
        self.prep = Preprocessing.from_metadata(artifact.metadata)
        n = threads if threads is not None else int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        path = model_file or artifact.serving_model_path
        self.session = make_session(path, n)
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def load(cls, path: str | Path, model_file: Path | None = None, threads: int | None = None) -> Predictor:
        return cls(open_artifact(path), model_file=model_file, threads=threads)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """[N, 3, H, W] float32 → [N, num_classes] probabilities."""
        (logits,) = self.session.run(None, {self.input_name: batch.astype(np.float32, copy=False)})
        return softmax(logits)

    def predict_bytes(self, data: bytes) -> dict[str, Any]:
        """Classify one encoded image; raises serving.preprocess.ImageDecodeError on bad input."""
        probs = self.probabilities(preprocess_bytes(data, self.prep)[None])[0]
        return answer(self.labels, probs)


def answer(labels: list[str], probs: np.ndarray) -> dict[str, Any]:
    """The prediction document: best label, its probability, and every label's probability."""
    best = int(probs.argmax())
    return {
        "label": labels[best],
        "confidence": float(probs[best]),
        "scores": {label: float(p) for label, p in zip(labels, probs, strict=True)},
    }
