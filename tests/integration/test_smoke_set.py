"""Smoke photos travel with the model: evaluation writes the set, the registry names it, promotion reads the
candidate's own set (rollback the target's), and a missing or altered set is refused before anything moves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aws_support import BUCKET, GROUP, IMAGE, Stack, approve_all, attested, aws_env, make_stack, tiny_artifact
from moto import mock_aws

import mlops.release as release_mod
from mlops.backends.local import LocalBackend
from mlops.backends.local.registry import LocalRegistry
from mlops.release import PromotionRefused, promote, rollback
from mlops.smoke import SmokeConfig, SmokeResult, smoke_photos
from training.evaluate import smoke_picks
from training.smoke_set import MANIFEST, MIN_CONFIDENCE, SmokeSetError, read_smoke_set, write_smoke_set

LABELS = ("cat", "dog")


def photos_of(data_dir: Path, label: str, start: int, count: int = 3) -> list[Path]:
    return sorted((data_dir / "test" / label).iterdir())[start : start + count]


def make_set(out: Path, data_dir: Path, start: int = 0) -> dict:
    """A smoke set as training/evaluate.py writes it: three photos per label, from `start` on."""
    picks = [(p, label, 0.97) for label in LABELS for p in photos_of(data_dir, label, start)]
    return write_smoke_set(out, picks, {"version": "test"})


# --- the format: written by evaluation, verified by the control plane ------------------------------------


def test_a_written_set_reads_back_and_any_alteration_is_refused(tmp_path: Path, data_dir: Path) -> None:
    info = make_set(tmp_path, data_dir)
    folder = tmp_path / info["path"]
    assert info["photos"] == 6 and info["labels"] == ["cat", "dog"]
    photos = read_smoke_set(folder, info["manifest_sha256"], LABELS)
    assert [(p.parent.name, label) for p, label in photos] == [("cat", "cat")] * 3 + [("dog", "dog")] * 3
    assert photos[0][0].read_bytes() == photos_of(data_dir, "cat", 0)[0].read_bytes()

    with pytest.raises(SmokeSetError, match="names no smoke set SHA-256"):
        read_smoke_set(folder, "", LABELS)
    with pytest.raises(SmokeSetError, match="not the registered one"):
        read_smoke_set(folder, "0" * 64, LABELS)
    victim = photos[4][0]
    original = victim.read_bytes()
    victim.write_bytes(original + b"\0")
    with pytest.raises(SmokeSetError, match=f"smoke photo dog/{victim.name} .* was altered"):
        read_smoke_set(folder, info["manifest_sha256"], LABELS)
    victim.unlink()
    with pytest.raises(SmokeSetError, match=f"smoke photo dog/{victim.name} is missing"):
        read_smoke_set(folder, info["manifest_sha256"], LABELS)
    (folder / MANIFEST).unlink()
    with pytest.raises(SmokeSetError, match=r"no manifest\.json"):
        read_smoke_set(folder, info["manifest_sha256"], LABELS)


def test_a_manifest_naming_files_outside_the_set_or_missing_a_label_is_refused(tmp_path: Path, data_dir: Path) -> None:
    import hashlib

    outside = {"photos": [{"file": "../escape.jpg", "label": "cat", "sha256": "0" * 64}]}
    one_label = {"photos": []}
    for name, manifest, reason in (("a", outside, "outside the set"), ("b", one_label, "has no cat or dog photo")):
        body = json.dumps(manifest).encode()
        (tmp_path / name).mkdir()
        (tmp_path / name / MANIFEST).write_bytes(body)
        with pytest.raises(SmokeSetError, match=reason):
            read_smoke_set(tmp_path / name, hashlib.sha256(body).hexdigest(), LABELS)


def test_evaluation_picks_confident_right_jpegs_per_class(tmp_path: Path) -> None:
    paths = []
    for i, suffix in enumerate([".jpg", ".jpg", ".png", ".jpg", ".jpg", ".jpg"]):
        paths.append(tmp_path / f"p{i}{suffix}")
        paths[-1].write_bytes(b"x" * 10)
    samples = [(paths[0], 0), (paths[1], 0), (paths[2], 0), (paths[3], 1), (paths[4], 1), (paths[5], 1)]
    probs = np.array(
        [
            [0.95, 0.05],  # right and confident: picked
            [0.70, 0.30],  # right, not confident enough
            [0.99, 0.01],  # a PNG: the smoke tests send image/jpeg
            [0.60, 0.40],  # wrong
            [0.02, 0.98],  # picked
            [0.01, 0.99],  # over the per-class count
        ]
    )
    picks = smoke_picks(samples, probs, ["cat", "dog"], per_class=1)
    assert picks == [(paths[0], "cat", 0.95), (paths[4], "dog", 0.98)]
    assert all(conf >= MIN_CONFIDENCE for _, _, conf in picks)


# --- local: the run folder's set, named by the registered version's tags --------------------------------------


@pytest.fixture
def local(tmp_path: Path, monkeypatch, data_dir: Path) -> Iterator[tuple[LocalBackend, Path, dict]]:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SMOKE_PHOTOS_DIR", raising=False)
    run_eval = tmp_path / "home" / "runs" / "run-1" / "evaluation"
    info = make_set(run_eval, data_dir)
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"not served in these tests")
    ref = {"uri": (run_eval / info["path"]).as_uri(), "manifest_sha256": info["manifest_sha256"]}
    registry = LocalRegistry()
    registry.register("run-1", artifact.as_uri(), 0.95, "test", ref)
    registry.register("run-2", artifact.as_uri(), 0.96, "test")  # registered without a smoke set
    for v in ("1", "2"):
        registry.set_status(v, "Approved", "tester", "ok")
    yield LocalBackend(), run_eval / info["path"], info


def test_local_versions_read_their_own_set(local) -> None:
    backend, folder, info = local
    mv = backend.get_version("1")
    assert mv.smoke_set == folder.as_uri() and mv.smoke_sha256 == info["manifest_sha256"]
    photos = smoke_photos(SmokeConfig(), backend, mv)
    assert [p.parent for p, _ in photos] == [folder / "cat"] * 3 + [folder / "dog"] * 3


def test_local_promotion_of_an_altered_or_missing_set_is_refused_before_anything_moves(local) -> None:
    backend, folder, _ = local
    photo = next((folder / "dog").iterdir())
    photo.write_bytes(photo.read_bytes()[:-10])
    with pytest.raises(PromotionRefused, match=rf"smoke set of model version 1 .*dog/{photo.name} .* was altered"):
        promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    with pytest.raises(PromotionRefused, match="model version 2 names no smoke set"):
        promote(backend, "2", "alice", SmokeConfig(), log=lambda m: None)
    assert backend.list_releases() == [] and backend.current_endpoint_config() == ""


def test_smoke_photos_dir_still_overrides(local, data_dir: Path) -> None:
    backend, _, _ = local
    cfg = SmokeConfig(photos_dir=data_dir / "test", photos_per_class=2)
    photos = smoke_photos(cfg, backend, backend.get_version("2"))
    assert [label for _, label in photos] == ["cat", "cat", "dog", "dog"]
    assert all(p.parent.parent == data_dir / "test" for p, _ in photos)


# --- aws: the set beside the evaluation in S3, named by the model package --------------------------------------


def register_with_set(s3: Any, sm: Any, out: Path, data_dir: Path, n: int, start: int, kms: Any) -> dict:
    """What the pipeline does: evaluation's smoke set under its S3 output, the model package naming it, signed.

    Returns the S3 prefix, the photos, and the package's CustomerMetadataProperties."""
    info = make_set(out, data_dir, start)
    prefix = f"evaluation/exec-{n}"
    for path in sorted((out / "smoke").rglob("*")):
        if path.is_file():
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{path.relative_to(out).as_posix()}", Body=path.read_bytes())
    packed, model_sha = tiny_artifact(f"v{n}")
    s3.put_object(Bucket=BUCKET, Key=f"models/v{n}/model.tar.gz", Body=packed)
    props = {
        "git_sha": f"sha{n}",
        "smoke_set": f"s3://{BUCKET}/{prefix}/smoke",
        "smoke_manifest_sha256": info["manifest_sha256"],
        "model_sha256": model_sha,
    }
    props = attested(kms, props)
    sm.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/v{n}/model.tar.gz"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=props,
    )
    photos = [p for label in LABELS for p in photos_of(data_dir, label, start)]
    return {"prefix": prefix, "photos": photos, "props": props}


@pytest.fixture
def aws(monkeypatch, tmp_path: Path, data_dir: Path) -> Iterator[tuple[Stack, dict, dict]]:
    aws_env(monkeypatch)
    monkeypatch.delenv("SMOKE_PHOTOS_DIR", raising=False)
    with mock_aws():
        stack = make_stack((0.95,))  # version 1: registered before smoke sets travelled with models
        s3, sm = stack.client("s3"), stack.client("sagemaker")
        kms = stack.client("kms")
        v2 = register_with_set(s3, sm, tmp_path / "exec-2", data_dir, 2, start=0, kms=kms)
        v3 = register_with_set(s3, sm, tmp_path / "exec-3", data_dir, 3, start=10, kms=kms)
        approve_all(stack.backend)
        yield stack, v2, v3


def record_smoke(monkeypatch) -> list[list[bytes]]:
    """The smoke tests pass; each call's photo bytes are kept (what the API would have been sent)."""
    sent: list[list[bytes]] = []

    def fake(url: str, cfg: SmokeConfig, photos: list[tuple[Path, str]] | None = None) -> SmokeResult:
        sent.append([p.read_bytes() for p, _ in photos or []])
        return SmokeResult(True, [], len(sent[-1]), len(sent[-1]), 50.0, 60.0, {"health": 200})

    monkeypatch.setattr(release_mod, "run_smoke", fake)
    return sent


def test_aws_promotion_smoke_tests_with_the_candidates_set_and_rollback_with_the_targets(aws, monkeypatch) -> None:
    stack, v2, v3 = aws
    sent = record_smoke(monkeypatch)
    backend = stack.backend
    promote(backend, "2", "alice", SmokeConfig(), log=lambda m: None)
    promote(backend, "3", "alice", SmokeConfig(), log=lambda m: None)
    assert sent == [[p.read_bytes() for p in v2["photos"]], [p.read_bytes() for p in v3["photos"]]]
    target = rollback(backend, "alice", SmokeConfig(), log=lambda m: None)
    assert target.model_version == "2" and sent[-1] == sent[0]


def test_aws_promotion_of_an_altered_or_missing_set_is_refused_before_anything_moves(aws, monkeypatch) -> None:
    stack, v2, _ = aws
    sent = record_smoke(monkeypatch)
    backend, s3 = stack.backend, stack.client("s3")
    key = f"{v2['prefix']}/smoke/dog/{v2['photos'][-1].name}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\xff\xd8 not the registered photo")
    with pytest.raises(PromotionRefused, match=r"smoke set of model version 2 .* was altered") as refused:
        promote(backend, "2", "alice", SmokeConfig(), log=lambda m: None)
    assert "\n" not in str(refused.value)
    s3.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(PromotionRefused, match=r"is missing"):
        promote(backend, "2", "alice", SmokeConfig(), log=lambda m: None)
    s3.delete_object(Bucket=BUCKET, Key=f"{v2['prefix']}/smoke/{MANIFEST}")
    with pytest.raises(PromotionRefused, match=r"no manifest.json at s3://"):
        promote(backend, "2", "alice", SmokeConfig(), log=lambda m: None)
    with pytest.raises(PromotionRefused, match="model version 1 names no smoke set in the registry"):
        promote(backend, "1", "alice", SmokeConfig(), log=lambda m: None)
    assert sent == [] and backend.list_releases() == []
    assert stack.updates.calls == [] and stack.invocations.calls == [] and backend.current_endpoint_config() == ""


def test_aws_downloads_only_what_the_manifest_names_into_a_temporary_folder(aws) -> None:
    stack, v2, _ = aws
    backend = stack.backend
    stack.client("s3").put_object(Bucket=BUCKET, Key=f"{v2['prefix']}/smoke/extra.bin", Body=b"not named")
    folder = backend.smoke_set(backend.get_version("2"))
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == sorted([MANIFEST] + [f"{p.parent.name}/{p.name}" for p in v2["photos"]])
    assert not str(folder).startswith(str(Path.cwd()))


def test_smoke_photos_never_import_the_training_data_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mlops.smoke, mlops.release, mlops.backends.aws; "
        "bad = [m for m in ('training.data', 'torch', 'mlflow', 'numpy') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
