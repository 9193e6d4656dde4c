"""The data manifest in the pipeline: Train and Evaluate refuse photos that differ from it, and the registered
version records its SHA-256 on both backends (MLflow tags, the model package's CustomerMetadataProperties)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from aws_support import GROUP, IMAGE, REGION, aws_env
from moto import mock_aws
from typer.testing import CliRunner

from mlops.cli import app
from pipelines.local_runner import PipelineFailed, write_data_manifest
from training.data_manifest import MANIFEST, DataManifestError, sha256_bytes, verify_split


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path, str]:
    """A data set of real photos (3 per class and split) and its manifest, as the pipeline reads them."""
    from inputs import data_dir

    root = tmp_path / "data"
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for photo in sorted((data_dir() / split / label).glob("*.jpg"))[:3]:
                shutil.copyfile(photo, root / split / label / photo.name)
    manifest = tmp_path / "manifest" / MANIFEST
    return root, manifest, write_data_manifest(root, manifest)


def test_the_photos_as_written_pass_and_give_the_manifest_sha256(data) -> None:
    root, manifest, sha = data
    assert sha == sha256_bytes(manifest.read_bytes())
    assert verify_split(manifest, "train", root / "train") == verify_split(manifest, "test", root / "test") == sha


def tamper(root: Path) -> str:
    photo = sorted((root / "test" / "dog").iterdir())[1]
    data = bytearray(photo.read_bytes())
    data[-3] ^= 0xFF  # same size, other bytes
    photo.write_bytes(bytes(data))
    return f"test/dog/{photo.name}"


def test_evaluation_refuses_a_tampered_test_photo(data, tmp_path: Path, capsys) -> None:
    from training import evaluate

    root, manifest, _ = data
    rel = tamper(root)
    args = ["--model", str(tmp_path / "no-model"), "--test", str(root / "test"), "--data-manifest", str(manifest)]
    assert evaluate.main([*args, "--output", str(tmp_path / "evaluation")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith(f"error: {rel} differs from the data manifest")
    assert "mlops data upload" in err
    assert not (tmp_path / "evaluation" / "evaluation.json").exists()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda root, manifest: (root / "train" / "cat" / "extra.jpg").write_bytes(b"x"), "not in the data manifest"),
        (lambda root, manifest: sorted((root / "train" / "dog").iterdir())[0].unlink(), "are missing from"),
        (lambda root, manifest: manifest.unlink(), "no data manifest at"),
        (lambda root, manifest: manifest.write_text("{}"), "is not a data manifest"),
    ],
)
def test_training_refuses_photos_that_are_not_the_manifest(data, tmp_path: Path, capsys, change, says) -> None:
    from training import train

    root, manifest, _ = data
    change(root, manifest)
    args = ["--train", str(root / "train"), "--data-manifest", str(manifest), "--model-dir", str(tmp_path / "model")]
    assert train.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith("error: ") and says in err
    assert not (tmp_path / "model").exists()


def test_evaluation_refuses_a_model_trained_on_another_data_set(data) -> None:
    from training.evaluate import check_trained_on

    _, _, sha = data
    check_trained_on({"manifest_sha256": sha}, {"data_manifest_sha256": sha})
    check_trained_on({"manifest_sha256": sha}, {})  # a model trained before manifests existed
    with pytest.raises(DataManifestError, match=f"trained on data manifest {'0' * 12}, the test photos belong to"):
        check_trained_on({"manifest_sha256": sha}, {"data_manifest_sha256": "0" * 64})


def test_the_local_runner_refuses_a_folder_without_the_layout(tmp_path: Path) -> None:
    (tmp_path / "data" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "train" / "cat" / "cat.0.jpg").write_bytes(b"jpeg")
    with pytest.raises(PipelineFailed, match=r"missing folder .*/train/dog"):
        write_data_manifest(tmp_path / "data", tmp_path / MANIFEST)


# --- the registered version records the manifest's SHA-256, and `registry list --json` shows it --------------


def listed(*args: str) -> list[dict]:
    out = CliRunner().invoke(app, ["registry", "list", "--json", *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_the_local_registry_records_it_as_a_tag(tmp_path: Path, monkeypatch) -> None:
    from mlops.backends.local.registry import LocalRegistry

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    artifact = (tmp_path / "model.tar.gz").as_uri()
    registry = LocalRegistry()
    registry.register("run-1", artifact, 0.95, "sha1", None, "d" * 64)
    registry.register("run-2", artifact, 0.96, "sha2")  # registered before data manifests
    assert [v.data_manifest_sha256 for v in registry.list_versions()] == ["d" * 64, ""]
    tags = registry.client.get_model_version(registry.name, "1").tags
    assert tags["data_manifest_sha256"] == "d" * 64
    assert [v["data_manifest_sha256"] for v in listed("--backend", "local")] == ["d" * 64, ""]


def test_the_model_package_records_it_in_its_metadata(monkeypatch) -> None:
    aws_env(monkeypatch)
    with mock_aws():
        sm = boto3.client("sagemaker", region_name=REGION)
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        for props in ({"git_sha": "sha1", "data_manifest_sha256": "e" * 64}, {"git_sha": "sha2"}):
            sm.create_model_package(
                ModelPackageGroupName=GROUP,
                InferenceSpecification={
                    "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/models/model.tar.gz"}],
                    "SupportedContentTypes": ["image/jpeg"],
                    "SupportedResponseMIMETypes": ["application/json"],
                },
                ModelApprovalStatus="PendingManualApproval",
                CustomerMetadataProperties=props,
            )
        rows = listed("--backend", "aws", "--stage", "staging")
    assert [(r["version"], r["data_manifest_sha256"]) for r in rows] == [("1", "e" * 64), ("2", "")]
