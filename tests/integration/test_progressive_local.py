"""Canary, linear and shadow releases on the real local stack, with clients sending requests throughout.

The local front decides per request which function version answers (the alias's weight), so the
share that reached a candidate is known from the answers themselves: each names the model
version that produced it, and a candidate's failure is a 5xx only the candidate gives.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import urllib3
from stack_support import approve, mlops, rewrite_artifact, stack_env, status
from test_local_release import cat_photo, register

from mlops.backends.local.store import ReleaseStore

# Seconds-scale steps and shadow window, read twice a second.
FAST = {"MLOPS_STEP_SECONDS": "6", "MLOPS_BAKE_SECONDS": "2", "MLOPS_BAKE_POLL_SECONDS": "0.5"}
TOLERANCE = 0.02  # the front's running share is exact to one request; 2 points cover that rounding


class Client(threading.Thread):
    """Posts a photo in a loop; keeps (status, model_version) of every answer."""

    def __init__(self, api: str, photo: Path, headers: dict[str, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.body = api + "/predict", photo.read_bytes()
        self.headers = {"Content-Type": "image/jpeg", **(headers or {})}
        self.answers: list[tuple[int, str | None]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        http = urllib3.PoolManager(timeout=urllib3.Timeout(total=20.0), retries=False)
        while not self._halt.is_set():
            try:
                resp = http.request("POST", self.url, body=self.body, headers=self.headers)
                version = json.loads(resp.data).get("model_version") if resp.status == 200 else None
                self.answers.append((resp.status, version))
            except urllib3.exceptions.HTTPError:
                self.answers.append((0, None))
            time.sleep(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def failures(self) -> list[int]:
        return [s for s, _ in self.answers if s != 200]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, data_dir, small_artifact):
    home = tmp_path_factory.mktemp("progressive-home")
    env = {**stack_env(home, data_dir), **FAST}
    assert register(env, small_artifact) == "1"
    assert mlops("up", "--json", env=env).returncode == 0
    approve("1", env)
    out = mlops("promote", "1", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    api = status(env)["api_url"]
    yield {"env": env, "home": home, "api": api, "artifact": small_artifact}
    mlops("down", env=env)


def record(stack: dict, version: str) -> dict:
    return [r for r in ReleaseStore(Path(stack["home"]) / "releases.db").all() if r.model_version == version][-1]


def promote_with_clients(stack, data_dir, env, version, *args, mobile=False):
    """`mlops promote` while a steady client (and optionally one the candidate breaks for) sends requests."""
    photo = cat_photo(data_dir)
    clients = [Client(stack["api"], photo)]
    if mobile:
        clients.append(Client(stack["api"], photo, {"X-Client": "mobile"}))
    for c in clients:
        c.start()
    time.sleep(0.5)
    out = mlops("promote", version, *args, env=env)
    time.sleep(0.5)
    for c in clients:
        c.stop()
    return out, clients


def test_canary_of_a_failing_candidate_rolls_back_and_only_its_share_reached_it(stack, data_dir):
    env = {**stack["env"], "LAMBDA_HANDLER": "fault_handlers.fails_for_some_clients"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    version = register(env, stack["artifact"])
    approve(version, env)
    before = status(env)
    out, (steady, mobile) = promote_with_clients(stack, data_dir, env, version, "--strategy", "canary", mobile=True)
    assert out.returncode != 0, out.stdout
    assert "rolled back to version 1" in out.stderr and "breach at 10 % (canary)" in out.stderr
    assert "Traceback" not in out.stderr
    after = status(env)
    assert (after["model_version"], after["lambda_version"]) == ("1", before["lambda_version"])
    assert after["drift"] == {}

    assert steady.failures() == [] and len(steady.answers) > 20  # the steady client never saw a failure
    answers = steady.answers + mobile.answers
    reached = [a for a in answers if a[1] == version or a[0] >= 500]  # only the candidate fails mobile clients
    assert reached, "the candidate received no request: the split did not happen"
    assert len(reached) / len(answers) <= 0.10 + TOLERANCE, (len(reached), len(answers))
    rec = record(stack, version)
    assert rec.status == "rolled_back" and rec.strategy == "canary"
    step = rec.traffic["steps"][0]
    assert step["percent"] == 10 and step["breaches"] and step["share"] <= 0.10 + TOLERANCE


def test_shadow_refuses_a_labels_swapped_candidate_and_no_client_sees_its_answers(stack, data_dir, tmp_path):
    env = {**stack["env"], "MLOPS_SHADOW_SECONDS": "60"}
    swapped = rewrite_artifact(stack["artifact"], tmp_path / "model.tar.gz", labels=["dog", "cat"])
    version = register(env, swapped)
    approve(version, env)
    before = status(env)
    out, (client,) = promote_with_clients(
        stack, data_dir, env, version, "--strategy", "shadow", "--shadow-min-requests", "15"
    )
    assert out.returncode != 0, out.stdout
    assert "shadow test refused version" in out.stderr and "agreement 0.000" in out.stderr
    assert "cat→dog" in out.stdout and "Traceback" not in out.stderr
    after = status(env)
    for key in ("model_version", "endpoint_config", "lambda_version", "stage_deployment"):
        assert after[key] == before[key], key
    assert client.failures() == [] and {v for _, v in client.answers} == {"1"}  # never a candidate's answer
    rec = record(stack, version)
    shadow = rec.traffic["shadow"]
    assert rec.status == "refused" and shadow["passed"] is False
    assert (
        shadow["compared"] >= 15
        and shadow["agreement"] == 0.0
        and shadow["confusion"] == {"cat→dog": shadow["compared"]}
    )
    assert shadow["candidate_errors"] == 0 and shadow["live_p95_ms"] > 0 and shadow["candidate_p95_ms"] > 0


def test_linear_release_of_a_good_candidate_reaches_all_traffic(stack, data_dir):
    env = stack["env"]
    version = register(env, stack["artifact"])
    approve(version, env)
    out, (client,) = promote_with_clients(
        stack, data_dir, env, version, "--strategy", "linear", "--linear-step-percent", "25", "--step-seconds", "3"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert status(env)["model_version"] == version and status(env)["drift"] == {}
    assert client.failures() == []
    versions = [v for _, v in client.answers]
    assert versions[-1] == version and "1" in versions  # served by both, ending on the candidate
    rec = record(stack, version)
    assert rec.status == "live" and [s["percent"] for s in rec.traffic["steps"]] == [25, 50, 75]
    for step in rec.traffic["steps"]:
        assert step["breaches"] == [] and step["served"]["candidate"] > 0
        assert abs(step["share"] - step["percent"] / 100) <= 0.10  # a step's window cuts its requests loosely


def test_a_code_only_canary_whose_candidate_answers_502_rolls_back(stack, data_dir):
    """The candidate answers its failures (502, no function error) and shares the live model: only the
    function's own count of its 5xx answers can show them."""
    before = status(stack["env"])
    env = {**stack["env"], "LAMBDA_HANDLER": "fault_handlers.misreads_the_model_for_some_clients"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    out, (steady, mobile) = promote_with_clients(
        stack, data_dir, env, before["model_version"], "--strategy", "canary", mobile=True
    )
    assert out.returncode != 0, out.stdout
    assert "breach at 10 % (canary)" in out.stderr and "candidate 5xx answers" in out.stderr, out.stderr
    assert "function errors" not in out.stderr and "Traceback" not in out.stderr
    after = status(env)
    assert (after["model_version"], after["lambda_version"]) == (before["model_version"], before["lambda_version"])
    assert after["drift"] == {}
    assert steady.failures() == [] and len(steady.answers) > 20  # the steady client never saw a failure
    assert mobile.failures() and set(mobile.failures()) == {502}  # the candidate's share of mobile requests
    answers = steady.answers + mobile.answers
    assert len(mobile.failures()) / len(answers) <= 0.10 + TOLERANCE
    rec = record(stack, before["model_version"])
    assert rec.status == "rolled_back" and rec.strategy == "canary" and rec.traffic["steps"][0]["breaches"]
