"""The serving engine in-process: both sessions agree, the session choice follows measured latency."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from serving_bad_inputs import real_jpeg
from serving_fixtures import shared_artifact

from serving.cpuload import RunQueue, runnable_tasks
from serving.engine import EngineOptions, ModelEngine, _Faster
from serving.predictor import Predictor
from serving.preprocess import ImageDecodeError, preprocess_bytes


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> ModelEngine:
    return ModelEngine.load(
        shared_artifact(tmp_path_factory),
        EngineOptions(threads=2),
        model_version="v9",
    )


def test_both_sessions_and_the_predictor_agree(engine: ModelEngine) -> None:
    x = preprocess_bytes(real_jpeg(), engine.prep)[None]
    solo = engine.solo.run(None, {engine.input_name: x})[0]
    shared = engine.shared.run(None, {engine.input_name: x})[0]
    assert engine.solo is not engine.shared
    assert np.allclose(solo, shared, atol=1e-4)
    doc = engine.classify(real_jpeg())
    reference = Predictor(engine.artifact).predict_bytes(real_jpeg())
    assert doc["model_version"] == "v9" and doc["label"] == reference["label"]
    assert abs(doc["confidence"] - reference["confidence"]) < 1e-4


def test_concurrent_classify_is_consistent(engine: ModelEngine) -> None:
    expected = engine.classify(real_jpeg())
    got: list[dict] = []
    threads = [
        threading.Thread(target=lambda: got.extend(engine.classify(real_jpeg()) for _ in range(5))) for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 30
    assert all(abs(d["confidence"] - expected["confidence"]) < 1e-4 for d in got)


def test_bad_bytes_raise_and_leave_the_engine_usable(engine: ModelEngine) -> None:
    with pytest.raises(ImageDecodeError):
        engine.classify(b"not an image")
    assert engine.classify(real_jpeg())["label"] in ("cat", "dog")
    assert engine._busy == 0


def test_lone_requests_go_to_the_faster_session_and_keep_measuring() -> None:
    chooser = _Faster(("solo", "shared"))
    assert [chooser.pick(), chooser.pick()] == ["solo", "solo"]  # unmeasured first
    chooser.record("solo", 0.004)
    assert chooser.pick() == "shared"
    chooser.record("shared", 0.002)
    picks = [chooser.pick() for _ in range(40)]
    assert picks.count("shared") == 38 and picks.count("solo") == 2  # the slower one is still sampled
    for _ in range(10):  # the machine got quieter: solo became faster
        chooser.record("solo", 0.001)
    assert chooser.pick() == "solo"


def test_engine_on_one_cpu_uses_one_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = shared_artifact(tmp_path_factory)
    single = ModelEngine.load(Path(path), EngineOptions(threads=1))
    assert single.solo is single.shared
    assert single.classify(real_jpeg())["label"] in ("cat", "dog")


def test_the_run_queue_says_whether_a_cpu_is_free(tmp_path: Path) -> None:
    loadavg = tmp_path / "loadavg"
    queue = RunQueue(cpus=2, path=loadavg)
    loadavg.write_text("0.50 0.40 0.30 1/180 4242\n")  # only the caller runs
    assert runnable_tasks(loadavg) == 1 and queue.spare_cpu()
    loadavg.write_text("1.90 1.40 0.30 2/180 4242\n")  # another task holds the second CPU
    assert not queue.spare_cpu()
    assert queue.spare_cpu(own=2)  # ... unless it is one of our own (a pool thread still spinning)
    assert RunQueue(cpus=4, path=loadavg).spare_cpu()
    assert runnable_tasks(tmp_path / "missing") is None and RunQueue(2, tmp_path / "missing").spare_cpu()


def test_a_busy_machine_gets_the_single_threaded_session(engine: ModelEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []
    for name in ("solo", "shared"):
        session = getattr(engine, name)
        monkeypatch.setattr(engine, name, _Spy(session, name, used))
    free = SimpleNamespace(now=False)
    monkeypatch.setattr(engine, "cpu", SimpleNamespace(spare_cpu=lambda own=1: free.now))  # not the live run queue
    engine.classify(real_jpeg())
    free.now = True
    monkeypatch.setattr(engine._alone, "latency", {"solo": 0.001, "shared": 0.002})
    monkeypatch.setattr(engine._alone, "count", 0)
    engine.classify(real_jpeg())
    assert used == ["shared", "solo"]


class _Spy:
    def __init__(self, session, name: str, used: list[str]) -> None:
        self.session, self.name, self.used = session, name, used

    def run(self, *args, **kwargs):
        self.used.append(self.name)
        return self.session.run(*args, **kwargs)
