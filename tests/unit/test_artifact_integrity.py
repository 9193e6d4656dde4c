"""A model artifact swapped after registration is never released nor served (the attack: weights or labels
replaced in the artifacts bucket after the version was evaluated, approved and qualified).

The content SHA-256 (serving/artifact.py) is recorded at registration; promotion checks it before anything
moves, CreateModel passes it to the model server, and the server refuses another content at load.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from aws_support import BUCKET, GROUP, Stack, approved_stack, attested, tiny_artifact

import mlops.release as release_mod
from mlops.release import PromotionRefused, promote
from mlops.smoke import SmokeConfig, SmokeResult
from serving.artifact import ArtifactError, open_artifact
from serving.server import main as serve


def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(folder.iterdir()):
            tar.add(f, arcname=f.name)
    return buf.getvalue()


@pytest.fixture
def unpacked(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "metadata.json").write_text(json.dumps({"labels": ["cat", "dog"], "serving_model": "model.onnx"}))
    (folder / "model.onnx").write_bytes(b"weights")
    return folder


def test_the_content_digest_is_the_same_packed_or_unpacked_and_changes_with_any_file(unpacked: Path, tmp_path):
    tar = tmp_path / "model.tar.gz"
    tar.write_bytes(_pack(unpacked))
    sha = open_artifact(unpacked).content_sha256()
    assert open_artifact(tar, tmp_path / "x").content_sha256() == sha
    (unpacked / "metadata.json").write_text(json.dumps({"labels": ["dog", "cat"], "serving_model": "model.onnx"}))
    swapped = open_artifact(unpacked).content_sha256()
    assert swapped != sha
    (unpacked / "model.onnx").write_bytes(b"other weights")
    assert open_artifact(unpacked).content_sha256() not in (sha, swapped)
    with pytest.raises(ArtifactError, match="changed after registration"):
        open_artifact(unpacked).verify(sha)


def test_the_model_server_refuses_at_load_a_model_that_is_not_the_registered_one(unpacked: Path, capsys):
    registered = open_artifact(unpacked).content_sha256()
    (unpacked / "model.onnx").write_bytes(b"swapped weights")
    assert serve(["--model", str(unpacked), "--model-sha256", registered, "--port", "0"]) == 1
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "error" and "changed after registration" in line["error"]


def test_the_model_server_refuses_a_malformed_digest(unpacked: Path, capsys):
    with pytest.raises(SystemExit) as done:
        serve(["--model", str(unpacked), "--model-sha256", "abc"])
    assert done.value.code == 2 and "64 lowercase hex digits" in capsys.readouterr().err


stack = pytest.fixture(name="stack")(approved_stack)


def _smoke_passes(monkeypatch) -> None:
    def fake(url: str, cfg: SmokeConfig, photos: object = None) -> SmokeResult:
        return SmokeResult(True, [], 10, 10, 80.0, 120.0, {"health": 200})

    monkeypatch.setattr(release_mod, "run_smoke", fake)
    monkeypatch.setattr(release_mod, "smoke_photos", lambda cfg, *_: [(Path("cat.1.jpg"), "cat")])


def test_aws_a_swapped_artifact_is_refused_before_anything_moves(stack: Stack, monkeypatch) -> None:
    _smoke_passes(monkeypatch)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=lambda _: None)
    model = stack.client("sagemaker").describe_model(ModelName=first.endpoint_config)
    registered = backend.get_version("1").model_sha256
    assert model["PrimaryContainer"]["Environment"]["MODEL_SHA256"] == registered  # the server checks it too
    before = (backend.current_endpoint_config(), backend.current_function_version(), backend.current_deployment())
    # An insider with write access to the artifacts bucket replaces version 2's model after its approval.
    stack.client("s3").put_object(Bucket=BUCKET, Key="models/v2/model.tar.gz", Body=tiny_artifact("forged")[0])
    with pytest.raises(PromotionRefused, match=r"version 2: its model artifact changed after registration"):
        promote(backend, "2", "alice", SmokeConfig(), log=lambda _: None)
    after = (backend.current_endpoint_config(), backend.current_function_version(), backend.current_deployment())
    assert after == before
    assert [r.model_version for r in backend.list_releases()] == ["1"]


def test_aws_a_version_registered_without_its_digest_is_refused(stack: Stack, monkeypatch) -> None:
    _smoke_passes(monkeypatch)
    sm, backend = stack.client("sagemaker"), stack.backend
    spec = sm.describe_model_package(ModelPackageName=backend.registry._arn("2"))["InferenceSpecification"]
    sm.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification=spec,
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties=attested(stack.client("kms"), {"git_sha": "sha3", "mlflow_run_id": "run3"}),
    )
    assert backend.get_version("3").model_sha256 == ""
    with pytest.raises(PromotionRefused, match="registered without its model's content SHA-256"):
        promote(backend, "3", "alice", SmokeConfig(), log=lambda _: None)
    assert backend.list_releases() == []


def test_aws_the_endpoint_serves_the_stages_own_checked_copy(stack: Stack, monkeypatch) -> None:
    """The attack: after a release, whoever can write the registry's models/ (the pipeline role, the staging
    deploy role) replaces the file. The endpoint's model reads released/ of the stage's own bucket, the copy
    the release made and checked, so a restart or scale-out still loads the registered weights."""
    _smoke_passes(monkeypatch)
    backend, s3 = stack.backend, stack.client("s3")
    first = promote(backend, "1", "alice", SmokeConfig(), log=lambda _: None)
    version = backend.get_version("1")
    url = stack.client("sagemaker").describe_model(ModelName=first.endpoint_config)["PrimaryContainer"]["ModelDataUrl"]
    assert url == f"s3://{BUCKET}/released/v1-{version.model_sha256[:16]}/model.tar.gz" != version.artifact_uri
    s3.put_object(Bucket=BUCKET, Key="models/v1/model.tar.gz", Body=tiny_artifact("forged")[0])
    assert backend.model_content_sha256(version) == version.model_sha256  # what the endpoint loads is unchanged
    kept = s3.head_object(Bucket=BUCKET, Key=url.split(f"{BUCKET}/", 1)[1])["Metadata"]
    assert kept == {"model-version": "1", "model-sha256": version.model_sha256}
