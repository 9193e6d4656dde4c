"""The serving engine: an artifact loaded into warmed ONNX Runtime sessions sized for this CPU."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.artifact import Artifact, open_artifact
from serving.cpuload import RunQueue, cpu_count
from serving.payload import RequestError
from serving.predictor import answer, make_session
from serving.preprocess import (
    ImageDecodeError,
    ImageTooLargeError,
    Preprocessing,
    UnsupportedImageError,
    preprocess_bytes,
    softmax,
)
from serving.settings import DEFAULT_SPIN_US


@dataclass(frozen=True)
class EngineOptions:
    threads: int = 0  # intra-op threads of a request running alone; 0 = every CPU
    max_concurrency: int = 0  # requests preprocessed and inferred at once; 0 = CPUs
    spin_us: int = DEFAULT_SPIN_US  # bounded busy-wait of the multi-threaded session's idle threads


class ModelEngine:
    """Classify encoded images with the artifact's serving model.

    Two sessions share the model. A request computed while no other is, when no other task holds
    or waits for a CPU, gets the multi-threaded session (lowest latency). Otherwise it gets a
    single-threaded one: overlapping requests run side by side on separate cores instead of
    fighting over one thread pool, and the server leaves the CPU to its neighbours (on a small
    host, the processes in front of it) instead of spinning threads where no core is free.
    """

    def __init__(
        self, artifact: Artifact, options: EngineOptions | None = None, model_version: str | None = None
    ) -> None:
        opts = options or EngineOptions()
        self.artifact = artifact
        self.labels = artifact.labels
        self.prep = Preprocessing.from_metadata(artifact.metadata)
        self.version = model_version or str(artifact.metadata.get("version") or "unknown")
        cpus = cpu_count()
        threads = opts.threads or cpus
        path = artifact.serving_model_path
        self.solo_threads = threads
        self.solo = make_session(path, threads, opts.spin_us if threads > 1 else 0)
        self.shared = make_session(path, 1, 0) if threads > 1 else self.solo
        self.input_name = self.solo.get_inputs()[0].name
        self._busy = 0
        self._lock = threading.Lock()
        self._gate = threading.BoundedSemaphore(opts.max_concurrency or cpus)
        self._alone = _Faster(("solo", "shared") if self.shared is not self.solo else ("solo",))
        self.cpu = RunQueue(cpus)
        self._spin_s = opts.spin_us / 1e6 + 0.0005  # how long after a solo run its idle threads may spin
        self._solo_ended = 0.0
        self._warm_up()

    @classmethod
    def load(
        cls, path: str | Path, options: EngineOptions | None = None, model_version: str | None = None
    ) -> ModelEngine:
        return cls(open_artifact(path), options, model_version)

    def _warm_up(self) -> None:
        """Run each session and the decoder once, so the first real request pays no set-up cost."""
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (120, 90, 60)).save(buf, "JPEG")
        x = preprocess_bytes(buf.getvalue(), self.prep)[None]
        for session in {id(s): s for s in (self.solo, self.shared)}.values():
            for _ in range(2):
                session.run(None, {self.input_name: x})

    def probabilities(self, tensor: np.ndarray) -> np.ndarray:
        """One [3, H, W] tensor to class probabilities, on the session that fits the load."""
        with self._lock:
            spinning = self.solo_threads - 1 if time.perf_counter() - self._solo_ended < self._spin_s else 0
            alone = self._busy == 0 and self.shared is not self.solo and self.cpu.spare_cpu(own=1 + spinning)
            self._busy += 1
            name = self._alone.pick() if alone else "shared"
        started = time.perf_counter()
        try:
            session = self.solo if name == "solo" else self.shared
            (logits,) = session.run(None, {self.input_name: tensor[None]})
        finally:
            with self._lock:
                self._busy -= 1
                ended = time.perf_counter()
                if name == "solo":
                    self._solo_ended = ended
                if alone and self._busy == 0:  # ran alone throughout: a fair timing
                    self._alone.record(name, ended - started)
        probabilities: np.ndarray = softmax(logits)[0]
        return probabilities

    def predict(self, data: bytes) -> dict[str, Any]:
        """classify(), with a refused image as RequestError: 413 too large, 415 not an accepted format, 422 corrupt."""
        try:
            return self.classify(data)
        except ImageTooLargeError as exc:
            raise RequestError(413, str(exc)) from exc
        except UnsupportedImageError as exc:
            raise RequestError(415, str(exc)) from exc
        except ImageDecodeError as exc:
            raise RequestError(422, str(exc)) from exc

    def classify(self, data: bytes) -> dict[str, Any]:
        """Encoded image → {label, confidence, scores, model_version}; raises ImageDecodeError."""
        with self._gate:
            probs = self.probabilities(preprocess_bytes(data, self.prep))
        doc = answer(self.labels, probs)
        doc["model_version"] = self.version
        return doc


class _Faster:
    """Which session a lone request should use: the one with the lower recent latency.

    The multi-threaded session wins on an idle machine; when other processes keep a core busy its
    second thread waits for CPU and the single-threaded one is faster. Every EXPLORE_EVERY-th lone
    request tries the other so the estimates follow the machine's load.
    """

    EXPLORE_EVERY = 20

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.latency = dict.fromkeys(names, 0.0)
        self.count = 0

    def pick(self) -> str:
        self.count += 1
        unmeasured = [n for n in self.names if not self.latency[n]]
        if unmeasured:
            return unmeasured[0]
        best = min(self.names, key=self.latency.__getitem__)
        if self.count % self.EXPLORE_EVERY == 0 and len(self.names) > 1:
            return next(n for n in self.names if n != best)
        return best

    def record(self, name: str, seconds: float) -> None:
        old = self.latency[name]
        self.latency[name] = seconds if not old else 0.8 * old + 0.2 * seconds
