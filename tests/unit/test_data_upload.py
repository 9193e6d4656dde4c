"""`mlops data upload` against moto: photos then manifest (last), only what changed, a failed upload leaves no
manifest, a wrong folder sends nothing; the pipeline's steps refuse photos that differ from the manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_support import BUCKET, REGION, aws_env
from botocore.exceptions import ClientError
from moto import mock_aws
from typer.testing import CliRunner

from mlops.cli import app
from mlops.cli import data as cli_data
from training.data_manifest import MANIFEST, build_manifest, layout_photos, manifest_bytes, sha256_bytes

PREFIX = "data/cats-vs-dogs"


def make_data(root: Path, per_class: int = 3) -> Path:
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                (folder / f"{label}.{i}.jpg").write_bytes(f"{split} {label} {i}".encode() * 50)
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"not a photo")
    return root


class Calls:
    """Every S3 request the command sends: (operation, key)."""

    def __init__(self, s3: Any) -> None:
        self.log: list[tuple[str, str]] = []
        self.fail_key = ""
        s3.meta.events.register("before-parameter-build.s3.*", self._seen)

    def _seen(self, params: dict, model: Any, **_: Any) -> None:
        key = params.get("Key", "")
        if model.name == "DeleteObjects":
            key = ",".join(o["Key"] for o in params["Delete"]["Objects"])
        self.log.append((model.name, key))
        if model.name == "PutObject" and self.fail_key and key == self.fail_key:
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject"
            )

    def names(self, operation: str) -> list[str]:
        return [key for op, key in self.log if op == operation]

    def clear(self) -> None:
        self.log.clear()


@pytest.fixture
def s3(monkeypatch) -> Iterator[tuple[Any, Calls]]:
    aws_env(monkeypatch)
    monkeypatch.delenv("DATA_DIR", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        calls = Calls(client)
        monkeypatch.setattr(cli_data, "s3_client", lambda region, workers: client)
        yield client, calls


def said(out) -> str:
    """What the command printed, with rich's line wrapping undone (its width is the first console's)."""
    return " ".join(out.output.split())


def upload(data: Path, *more: str):
    return CliRunner().invoke(app, ["data", "upload", "--data-dir", str(data), *more], env={"COLUMNS": "300"})


def keys(client: Any) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/").get("Contents", [])
    return {o["Key"][len(PREFIX) + 1 :]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def test_upload_puts_every_photo_then_the_manifest_last(s3, tmp_path: Path) -> None:
    client, calls = s3
    data = make_data(tmp_path / "data")
    out = upload(data)
    assert out.exit_code == 0, out.output
    stored = keys(client)
    photos = {rel: path.read_bytes() for rel, path in layout_photos(data).items()}
    assert {k: v for k, v in stored.items() if k != MANIFEST} == photos and len(photos) == 12  # no .DS_Store
    puts = calls.names("PutObject")
    assert puts[-1] == f"{PREFIX}/{MANIFEST}" and len(puts) == 13
    manifest = json.loads(stored[MANIFEST])
    assert manifest["photos"]["test/dog/dog.2.jpg"] == {
        "sha256": sha256_bytes(photos["test/dog/dog.2.jpg"]),
        "size": len(photos["test/dog/dog.2.jpg"]),
    }
    digest = sha256_bytes(stored[MANIFEST])
    assert stored[MANIFEST] == manifest_bytes(build_manifest(layout_photos(data)))  # as the local runner writes it
    head = client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{MANIFEST}")
    assert head["Metadata"]["sha256"] == digest and f"sha256 {digest}" in said(out)
    assert f"s3://{BUCKET}/{PREFIX}" in said(out) and "12 photos" in said(out)


def test_a_second_upload_of_the_same_photos_sends_nothing(s3, tmp_path: Path) -> None:
    _, calls = s3
    data = make_data(tmp_path / "data")
    assert upload(data).exit_code == 0
    calls.clear()
    out = upload(data)
    assert out.exit_code == 0, out.output
    assert "up to date" in said(out) and "0 to upload, 0 to delete, 12 unchanged" in said(out)
    assert [op for op, _ in calls.log if op not in ("ListObjectsV2", "GetObject", "HeadObject")] == []


def test_photos_older_than_the_manifest_are_taken_from_it_without_asking_s3(tmp_path: Path) -> None:
    """The common case (nothing changed since the last complete upload) costs a listing and one GET."""
    from datetime import UTC, datetime, timedelta

    from mlops.data_upload import Remote, make_plan, remote_digests

    files = layout_photos(make_data(tmp_path / "data"))
    local = build_manifest(files)
    t = datetime(2026, 1, 5, 3, 0, 0, tzinfo=UTC)
    objects = {rel: {"size": p.size, "modified": t} for rel, p in local.items()}
    objects["train/cat/cat.0.jpg"]["modified"] = t + timedelta(seconds=1)  # written in the manifest's second

    class S3:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def head_object(self, Bucket: str, Key: str) -> dict:
            self.asked.append(Key)
            return {"Metadata": {"sha256": local["train/cat/cat.0.jpg"].sha256}}

    remote = Remote(objects, manifest_bytes(local), t + timedelta(seconds=1))
    s3 = S3()
    digests = remote_digests(s3, BUCKET, PREFIX, remote, local, workers=2)
    assert s3.asked == [f"{PREFIX}/train/cat/cat.0.jpg"]
    plan = make_plan(local, remote, digests)
    assert plan.upload == [] and plan.delete == [] and not plan.changes(remote)


def test_changed_added_and_removed_photos_are_found_and_the_manifest_is_replaced_last(s3, tmp_path: Path) -> None:
    client, calls = s3
    data = make_data(tmp_path / "data")
    assert upload(data).exit_code == 0
    before = keys(client)[MANIFEST]
    same_size = data / "train" / "dog" / "dog.1.jpg"
    same_size.write_bytes(same_size.read_bytes().upper())  # same size, other content
    (data / "test" / "cat" / "cat.9.jpg").write_bytes(b"a new photo")
    (data / "train" / "cat" / "cat.0.jpg").unlink()
    calls.clear()
    out = upload(data)
    assert out.exit_code == 0, out.output
    assert "2 to upload, 1 to delete, 10 unchanged" in said(out)
    ops = [
        (op, key.removeprefix(f"{PREFIX}/"))
        for op, key in calls.log
        if op in ("PutObject", "DeleteObject", "DeleteObjects")
    ]
    assert ops[0] == ("DeleteObject", MANIFEST)  # the old manifest goes first: no reader takes a half-changed set
    assert sorted(ops[1:3]) == [("PutObject", "test/cat/cat.9.jpg"), ("PutObject", "train/dog/dog.1.jpg")]
    assert ops[3:] == [("DeleteObjects", "train/cat/cat.0.jpg"), ("PutObject", MANIFEST)]
    stored = keys(client)
    assert stored[MANIFEST] != before and "train/cat/cat.0.jpg" not in stored
    assert stored["train/dog/dog.1.jpg"] == same_size.read_bytes()
    assert set(json.loads(stored[MANIFEST])["photos"]) == set(stored) - {MANIFEST}


def test_a_failed_upload_leaves_no_manifest_and_the_next_one_sends_only_what_is_missing(s3, tmp_path: Path) -> None:
    client, calls = s3
    data = make_data(tmp_path / "data")
    assert upload(data).exit_code == 0
    for name in ("cat.0.jpg", "cat.1.jpg"):
        (data / "test" / "cat" / name).write_bytes(b"retaken " + name.encode())
    calls.fail_key = f"{PREFIX}/test/cat/cat.1.jpg"
    out = upload(data)
    assert out.exit_code == 1
    lines = out.output.strip().splitlines()
    assert (
        lines[-1].startswith("error: data upload failed:") and "SlowDown" in lines[-1] and "Traceback" not in out.output
    )
    assert MANIFEST not in keys(client)  # the pipeline refuses the photos until an upload completes
    failed, calls.fail_key = calls.fail_key, ""
    calls.clear()
    out = upload(data)
    assert out.exit_code == 0, out.output
    assert calls.names("PutObject") == [failed, f"{PREFIX}/{MANIFEST}"]
    # No manifest to trust: each object's own sha256 metadata (the failed photo's old object differs in size).
    assert len(calls.names("HeadObject")) == 11 and failed not in calls.names("HeadObject")


def test_an_object_changed_behind_the_manifest_is_sent_again(s3, tmp_path: Path) -> None:
    client, calls = s3
    data = make_data(tmp_path / "data")
    assert upload(data).exit_code == 0
    key = f"{PREFIX}/train/cat/cat.2.jpg"
    client.put_object(Bucket=BUCKET, Key=key, Body=(data / "train/cat/cat.2.jpg").read_bytes().upper())
    calls.clear()
    out = upload(data)
    assert out.exit_code == 0, out.output
    assert calls.names("PutObject") == [key, f"{PREFIX}/{MANIFEST}"]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: (d / "test" / "dog").rename(d / "test" / "dogs"), "missing folder {d}/test/dog"),
        (lambda d: [p.unlink() for p in (d / "train" / "cat").iterdir()], "no photos in {d}/train/cat"),
        (lambda d: d / "missing", "{d}/missing is not a folder"),
    ],
)
def test_a_wrong_folder_fails_in_one_line_and_sends_nothing(s3, tmp_path: Path, breakage, message: str) -> None:
    client, calls = s3
    data = make_data(tmp_path / "data")
    target = breakage(data)
    out = upload(target if isinstance(target, Path) else data)
    assert out.exit_code == 2
    assert len(out.output.strip().splitlines()) == 1 and message.format(d=data) in out.output
    assert "nothing was uploaded" in out.output and "Traceback" not in out.output
    assert calls.log == [] and keys(client) == {}


def test_without_a_folder_or_on_the_local_backend_it_says_what_to_do(s3) -> None:
    out = CliRunner().invoke(app, ["data", "upload"], env={"DATA_DIR": "", "COLUMNS": "300"})
    assert out.exit_code == 2 and "set DATA_DIR" in out.output
    out = CliRunner().invoke(app, ["data", "upload", "--backend", "local"], env={"COLUMNS": "300"})
    assert out.exit_code == 1 and "works on AWS only" in out.output


def test_dry_run_compares_and_sends_nothing(s3, tmp_path: Path) -> None:
    client, calls = s3
    out = upload(make_data(tmp_path / "data"), "--dry-run")
    assert out.exit_code == 0, out.output
    assert "12 to upload, 0 to delete, 0 unchanged" in said(out) and "dry run" in said(out)
    assert calls.names("PutObject") == [] and keys(client) == {}
