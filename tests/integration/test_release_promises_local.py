"""The release promises on the local backend, through the CLI on a real local stack: a failed first
release serves nothing, no-version promotion never downgrades, a named older version is a downgrade,
a bake breach rolls back, SIGTERM mid-switch restores the previous release, a failed restore is
repaired, and function code alone is released."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import urllib3
from stack_support import REPO, SteadyClient, approve, mlops, rewrite_artifact, stack_env, status
from test_local_release import cat_photo, post, register

TESTS = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory, data_dir, small_artifact):
    home = tmp_path_factory.mktemp("promises-home")
    env = {**stack_env(home, data_dir), "MLOPS_BAKE_SECONDS": "1", "MLOPS_BAKE_POLL_SECONDS": "0.5"}
    env["PYTHONPATH"] = TESTS
    swapped = rewrite_artifact(small_artifact, home / "swapped.tar.gz", labels=["dog", "cat"])
    assert register(env, swapped) == "1"
    up = mlops("up", "--json", env=env)
    assert up.returncode == 0, up.stderr
    yield {"env": env, "home": home, "api": json.loads(up.stdout)["api_url"], "artifact": small_artifact}
    mlops("down", env=env)


def promote(env: dict, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return mlops("promote", *args, "--p95-budget-ms", "1000", env={**env, **extra})


def test_a_failed_first_release_leaves_nothing_serving(stack, data_dir):
    env = stack["env"]
    approve("1", env)
    out = promote(env, "1")
    assert out.returncode != 0 and "rolled back to nothing serving (first release)" in out.stderr
    info = status(env)
    assert info["model_version"] is None and info["endpoint_config"] is None and info["drift"] == {}
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code >= 500 and "label" not in body  # the rejected model answers nobody


def test_no_version_keeps_the_newest_live_and_a_named_older_one_is_a_downgrade(stack, data_dir):
    env = stack["env"]
    versions = [register(env, stack["artifact"]) for _ in range(2)]
    assert versions == ["2", "3"]
    for version in versions:
        approve(version, env)
    assert promote(env, "3").returncode == 0
    live = status(env)
    out = promote(env)  # an ordinary push: 2 and 3 approved, 3 live
    assert out.returncode == 0 and "already live" in out.stdout
    assert status(env)["release_id"] == live["release_id"]
    out = promote(env, "2")
    assert out.returncode == 0 and "downgrade from version 3 to version 2" in out.stdout
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["model_version"] == "2"
    out = promote(env)  # the newest approved is newer than what is live: released again
    assert out.returncode == 0 and status(env)["model_version"] == "3"


def test_a_breach_during_the_bake_rolls_back(stack, data_dir):
    env = stack["env"]
    before = status(env)
    photo = cat_photo(data_dir).read_bytes()
    halt, answers = threading.Event(), []

    def mobile_client() -> None:  # a client the smoke tests do not cover
        http = urllib3.PoolManager(timeout=urllib3.Timeout(total=20.0), retries=False)
        while not halt.is_set():
            resp = http.request(
                "POST",
                stack["api"] + "/predict",
                body=photo,
                headers={"Content-Type": "image/jpeg", "X-Client": "mobile"},
            )
            answers.append(resp.status)
            time.sleep(0.05)

    client = threading.Thread(target=mobile_client, daemon=True)
    client.start()
    out = promote(
        env, "3", LAMBDA_HANDLER="fault_handlers.fails_for_some_clients", MLOPS_BAKE_SECONDS="20"
    )  # new function code with the same model
    halt.set()
    client.join(timeout=30)
    assert out.returncode != 0, out.stdout
    assert "breach during the bake: function errors" in out.stderr and "rolled back to version 3" in out.stderr
    after = status(env)
    assert after["release_id"] == before["release_id"] and after["drift"] == {}
    assert any(s >= 500 for s in answers) and answers[-1] == 200  # errors seen, then the old code again


def test_sigterm_in_the_middle_of_the_switch_restores_the_previous_release(stack, data_dir):
    env = {**stack["env"], "PYTHONUNBUFFERED": "1"}
    before = status(env)
    client = SteadyClient(stack["api"], cat_photo(data_dir))
    client.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "promote", "2"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if "moving alias live" in line:
            proc.send_signal(signal.SIGTERM)  # what a cancelled job sends
            break
    rest, err = proc.communicate(timeout=120)
    client.stop()
    assert proc.returncode != 0, "".join(seen) + rest
    assert "interrupted by SIGTERM" in err and "rolled back to version 3" in err and "Traceback" not in err
    after = status(env)
    assert after["release_id"] == before["release_id"] and after["drift"] == {} and after["needs_repair"] == []
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["model_version"] == "3"
    assert client.failures == []


def test_a_failed_restore_is_recorded_then_repaired(stack, monkeypatch):
    from mlops.backends.base import BackendError
    from mlops.backends.local import LocalBackend
    from mlops.release import RollbackFailed
    from mlops.release import promote as do_promote
    from mlops.smoke import SmokeConfig

    for key in ("MLOPS_HOME", "API_PORT", "MODEL_PORT", "LAMBDA_PORT", "SAGEMAKER_RUNTIME_PORT", "DATA_DIR"):
        monkeypatch.setenv(key, stack["env"][key])
    monkeypatch.setenv("MLOPS_RESTORE_ATTEMPTS", "2")
    monkeypatch.setenv("MLOPS_RESTORE_BACKOFF_SECONDS", "0")
    backend = LocalBackend()
    live = backend.live_release()
    real_move = backend.move_alias

    def throttled(version: str) -> None:
        if version == live.lambda_version:
            raise BackendError("alias update throttled")
        real_move(version)

    monkeypatch.setattr(backend, "move_alias", throttled)
    smoke = SmokeConfig(photos_dir=Path(stack["env"]["SMOKE_PHOTOS_DIR"]), p95_budget_ms=0.001)  # fails on latency
    with pytest.raises(RollbackFailed, match="mlops repair --backend local"):
        do_promote(backend, "2", "tester", smoke, log=lambda m: None)
    info = status(stack["env"])
    assert info["model_version"] == live.model_version and info["drift"]["function_version"]["served"] != (
        live.lambda_version
    )
    assert len(info["needs_repair"]) == 1
    out = mlops("rollback", env=stack["env"])  # rollback repairs a drifted stage first
    assert out.returncode == 0, out.stderr
    info = status(stack["env"])
    assert info["release_id"] == live.release_id and info["drift"] == {} and info["needs_repair"] == []
    out = mlops("repair", env=stack["env"])
    assert out.returncode == 0 and "nothing to repair" in out.stdout


def test_function_code_alone_is_released(stack, data_dir):
    env = stack["env"]
    before = status(env)
    out = promote(env, LAMBDA_HANDLER="fault_handlers.patched_handler")  # same approved model, new code
    assert out.returncode == 0, out.stderr
    after = status(env)
    assert after["model_version"] == before["model_version"] and after["code_id"] != before["code_id"]
    assert after["endpoint_config"] == before["endpoint_config"] and after["lambda_version"] != before["lambda_version"]
    again = promote(env, LAMBDA_HANDLER="fault_handlers.patched_handler")
    assert again.returncode == 0 and "already live" in again.stdout
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["model_version"] == before["model_version"]
    assert os.environ.get("LAMBDA_HANDLER") is None


def test_production_takes_only_what_passed_staging(stack, monkeypatch):
    """A staging record as a staging-level writer could write it (live, smoke passed, baked, the registered
    content) qualifies nothing: only a qualification in production's own records does, and only one of
    the registered content; staging marking that release rolled back withdraws it."""
    from mlops.backends.base import Release
    from mlops.backends.local import LocalBackend
    from mlops.release import PromotionRefused
    from mlops.release import promote as do_promote
    from mlops.release.choice import require_qualified
    from mlops.smoke import SmokeConfig

    monkeypatch.setenv("MLOPS_HOME", stack["env"]["MLOPS_HOME"])
    production, staging = LocalBackend("production"), LocalBackend("staging")
    smoke = SmokeConfig(photos_dir=Path(stack["env"]["SMOKE_PHOTOS_DIR"]))
    with pytest.raises(PromotionRefused, match="has not passed its smoke tests in staging"):
        do_promote(production, "3", "tester", smoke, log=lambda m: None)
    version, code = production.get_version("3"), production.function_code_id()
    staged = Release("r-staging-1", "3", "staging", status="live", code_id=code, model_sha256=version.model_sha256)
    staged.smoke, staged.bake = {"passed": True}, {"seconds": 999, "breaches": []}
    staging.save_release(staged)
    with pytest.raises(PromotionRefused, match="with --qualify-for production first"):
        do_promote(production, "3", "tester", smoke, log=lambda m: None)
    forged = Release("r-staging-2", "3", "staging", status="live", code_id=code, model_sha256="f" * 64)
    forged.smoke, forged.bake = {"passed": True}, {"seconds": 999, "breaches": []}
    staging.record_qualification("production", forged)  # other model content than version 3's
    with pytest.raises(PromotionRefused, match=f"version 3 \\(model {version.model_sha256[:12]}\\)"):
        require_qualified(production, version, code)
    staging.record_qualification("production", staged)
    require_qualified(production, version, code)  # its content, qualified in production's records
    staged.status = "rolled_back"
    staging.save_release(staged)
    with pytest.raises(PromotionRefused, match="has not passed"):
        require_qualified(production, version, code)
    assert [r.stage for r in production.list_releases() if r.stage == "production"] == []


def _forge(env: dict, artifact: Path, signature: str | None) -> str:
    """A version written straight into the registry (MLflow), Approved, naming `artifact` by its own content
    SHA-256 and carrying `signature` (None: none; "copied": the newest genuine version's): what anyone who can
    write the registry's tags can do."""
    from mlflow.tracking import MlflowClient

    from mlops import config
    from mlops.backends.local import registry
    from training import attestation

    old = os.environ.get("MLOPS_HOME")
    os.environ["MLOPS_HOME"] = env["MLOPS_HOME"]
    try:
        client = MlflowClient(tracking_uri=config.tracking_uri(), registry_uri=config.registry_uri())
        if signature == "copied":
            signature = next(v.attestation for v in reversed(registry.LocalRegistry().list_versions()) if v.attestation)
        tags = {
            registry.APPROVAL_TAG: "Approved",
            "test_accuracy": "0.990000",
            "artifact_uri": artifact.as_uri(),
            "git_sha": "forged",
            registry.MODEL_SHA_TAG: registry._content_sha256(artifact.as_uri()),
            **({attestation.SIGNATURE_KEY: signature} if signature is not None else {}),
        }
        return str(client.create_model_version(config.MODEL_NAME, source=artifact.as_uri(), tags=tags).version)
    finally:
        if old is None:
            os.environ.pop("MLOPS_HOME")
        else:
            os.environ["MLOPS_HOME"] = old


def test_a_version_the_registration_did_not_sign_is_refused_and_the_live_release_keeps_serving(stack, data_dir):
    """Hashes of another model, beside a missing, copied or self-made signature: refused before anything moves."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from training import attestation

    env, home = stack["env"], stack["home"]
    before = status(env)
    assert before["model_version"]
    forged = rewrite_artifact(stack["artifact"], home / "forged.tar.gz", labels=["dog", "cat"])
    own_key = ec.generate_private_key(ec.SECP256R1())
    body = attestation.message("catdog-mobilenetv2", "0" * 64, "", "", "forged")
    for signature in (None, "copied", attestation.encode(own_key.sign(body, ec.ECDSA(hashes.SHA256())))):
        version = _forge(env, forged, signature)
        out = promote(env, version)
        assert out.returncode != 0 and "Traceback" not in out.stderr
        assert f"version {version} is not attested by the pipeline's registration" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        after = status(env)
        assert {k: after[k] for k in ("release_id", "model_version", "endpoint_config")} == {
            k: before[k] for k in ("release_id", "model_version", "endpoint_config")
        }
    code, body_ = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body_["model_version"] == before["model_version"]


def test_an_artifact_swapped_after_registration_is_refused_and_the_live_release_keeps_serving(stack, data_dir):
    env, home = stack["env"], stack["home"]
    own = home / "to-swap.tar.gz"
    shutil.copyfile(stack["artifact"], own)
    version = register(env, own)
    approve(version, env)
    before = status(env)
    assert before["model_version"] not in (None, version)
    # Someone who can write where the artifact lies replaces it after approval: the labels swapped.
    rewrite_artifact(stack["artifact"], own, labels=["dog", "cat"])
    out = promote(env, version)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert f"version {version}: its model artifact changed after registration" in out.stderr
    after = status(env)
    assert {k: after[k] for k in ("release_id", "model_version", "endpoint_config")} == {
        k: before[k] for k in ("release_id", "model_version", "endpoint_config")
    }
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["model_version"] == before["model_version"]


def test_the_stage_serves_its_own_copy_and_a_file_replaced_in_the_registry_changes_nothing(stack, data_dir):
    """The attack: after the release, the registered file is replaced (labels swapped). The stage's model
    server reads the copy the release made and checked, so when it restarts it still loads the registered
    weights (were it to read the registry's file, it would refuse it, and the API would fail)."""
    env, home = stack["env"], stack["home"]
    own = home / "kept.tar.gz"
    shutil.copyfile(stack["artifact"], own)
    version = register(env, own)
    approve(version, env)
    out = promote(env, version)
    assert out.returncode == 0, out.stderr
    control = json.loads((home / "local" / "control.json").read_text())
    cfg = control["endpoint_configs"][control["endpoint"]["config"]]
    assert Path(cfg["artifact"]).parent.parent == home.resolve() / "local" / "released" / "local"
    rewrite_artifact(stack["artifact"], own, labels=["dog", "cat"])
    os.killpg(cfg["pid"], signal.SIGKILL)  # the server and its worker (its own session: the group is the pid)
    up = mlops("up", "--json", env=env)  # brings the live release's processes back
    assert up.returncode == 0, up.stderr
    code, body = post(stack["api"], cat_photo(data_dir))
    assert code == 200 and body["model_version"] == version and body["label"] == "cat"
