"""The local lifecycle end to end: up, predict, approve, promote, faults rolled back, rollback, down.

A client posts photos throughout; promotions of broken candidates must roll back on their own
and the client must see no failed request.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import urllib3
from stack_support import SteadyClient, approve, mlops, rewrite_artifact, stack_env, status


def register(env, artifact: Path, accuracy: float = 0.95) -> str:
    import os

    from mlops.backends.local.registry import LocalRegistry

    old = os.environ.get("MLOPS_HOME")
    os.environ["MLOPS_HOME"] = env["MLOPS_HOME"]
    try:
        return LocalRegistry().register("test-run", artifact.as_uri(), accuracy, "test").version
    finally:
        if old is None:
            os.environ.pop("MLOPS_HOME")
        else:
            os.environ["MLOPS_HOME"] = old


@pytest.fixture(scope="module")
def stack(tmp_path_factory, data_dir, small_artifact):
    home = tmp_path_factory.mktemp("stack-home")
    env = stack_env(home, data_dir)
    assert register(env, small_artifact) == "1"
    up = mlops("up", "--json", env=env)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    yield {"env": env, "home": home, "api": info["api_url"], "up": info, "artifact": small_artifact}
    mlops("down", env=env)


def cat_photo(data_dir: Path) -> Path:
    return sorted((data_dir / "test" / "cat").iterdir())[0]


def post(api: str, photo: Path) -> tuple[int, dict]:
    resp = urllib3.request(
        "POST", api + "/predict", body=photo.read_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=20
    )
    return resp.status, json.loads(resp.data)


def test_up_serves_newest_version_before_any_promotion(stack, data_dir):
    assert stack["up"]["model_version"] == "1" and stack["up"]["mode"] == "preview"
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["label"] == "cat" and body["model_version"] == "1"
    assert body["latency_ms"] > 0


def test_unapproved_version_refused(stack):
    out = mlops("promote", "1", env=stack["env"])
    assert out.returncode != 0
    assert "not Approved" in out.stderr and "Traceback" not in out.stderr


def test_approve_and_promote(stack, data_dir):
    out = mlops("approve", "1", "--by", "reviewer@example.com", "--reason", "looks good", env=stack["env"])
    assert out.returncode == 0, out.stderr
    # A quiet stage (no client sends anything): the bake needs more requests than the smoke tests send, so
    # the release sends synthetic ones through the public API and says how many requests it judged.
    out = mlops("promote", env={**stack["env"], "MLOPS_BAKE_MIN_REQUESTS": "40"})
    assert out.returncode == 0, out.stdout + out.stderr
    judged = re.search(r"it judged (\d+) requests \((\d+) of them synthetic\)", " ".join(out.stdout.split()))
    assert judged and int(judged[1]) >= 40 and int(judged[2]) > 0, out.stdout
    st = status(stack["env"])
    assert st["model_version"] == "1" and st["api_url"] == stack["api"]
    assert st["lambda_version"] and st["endpoint_config"] and st["stage_deployment"]
    again = mlops("promote", "1", env=stack["env"])
    assert again.returncode == 0 and "already live" in again.stdout
    assert status(stack["env"])["lambda_version"] == st["lambda_version"]


@pytest.mark.parametrize("fault", ["artifact_fails_to_load", "labels_swapped", "too_slow", "handler_raises"])
def test_faulty_candidate_rolls_back_with_no_failed_request(stack, data_dir, tmp_path, fault):
    env = dict(stack["env"])
    good = stack["artifact"]
    if fault == "artifact_fails_to_load":  # a complete artifact whose model file ONNX Runtime cannot load
        artifact = rewrite_artifact(good, tmp_path / "model.tar.gz", files={"model.int8.onnx": b"not a model"})
    elif fault == "labels_swapped":
        artifact = rewrite_artifact(good, tmp_path / "model.tar.gz", labels=["dog", "cat"])
    elif fault == "too_slow":
        artifact = rewrite_artifact(good, tmp_path / "model.tar.gz", input_size=1400, resize_size=1600)
    else:
        artifact = good
        env["LAMBDA_HANDLER"] = "fault_handlers.raising_handler"
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    version = register(env, artifact)
    approve(version, env)
    before = status(env)
    client = SteadyClient(stack["api"], cat_photo(data_dir))
    client.start()
    time.sleep(0.5)
    out = mlops("promote", version, "--p95-budget-ms", "300", env=env)
    time.sleep(0.5)
    client.stop()
    assert out.returncode != 0, out.stdout
    assert "rolled back to version 1" in out.stderr and "Traceback" not in out.stderr
    after = status(env)
    assert after["model_version"] == "1"
    for key in ("endpoint_config", "lambda_version", "stage_deployment"):
        assert after[key] == before[key], key
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["label"] == "cat" and body["model_version"] == "1"
    assert client.failures == [] and client.ok > 5


def test_promote_then_rollback_command(stack, data_dir):
    env = stack["env"]
    version = register(env, stack["artifact"])
    approve(version, env)
    out = mlops("promote", env=env)  # the newest approved version not live
    assert out.returncode == 0, out.stderr
    assert status(env)["model_version"] == version
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["model_version"] == version
    out = mlops("rollback", env=env)
    assert out.returncode == 0, out.stderr
    assert status(env)["model_version"] == "1"
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["model_version"] == "1"


def test_second_promotion_waits_for_the_first_then_gives_up(stack):
    import threading

    from filelock import FileLock

    lock = FileLock(str(Path(stack["home"]) / "promote.lock"), thread_local=False)  # released by a timer thread
    with lock:
        out = mlops("promote", env={**stack["env"], "MLOPS_LOCK_WAIT_SECONDS": "1"})
    assert out.returncode != 0 and "another promotion is in progress" in out.stderr and "waited 1 s" in out.stderr

    lock.acquire()
    releaser = threading.Timer(2.0, lock.release)
    releaser.start()
    started = time.monotonic()
    out = mlops("promote", "1", env={**stack["env"], "MLOPS_LOCK_WAIT_SECONDS": "60"})
    releaser.join()
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started >= 2.0 and "already live" in out.stdout
