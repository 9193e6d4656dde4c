"""The photos to where the pipeline reads them (`<data location>/{train,test}/{cat,dog}/`), manifest last.

Only what changed is sent: a photo is unchanged when the object holds its SHA-256 and size, known
from the manifest of the last complete upload (for objects not written after it) or else from the
object's own `sha256` metadata (HeadObject). Any change first deletes the old manifest, then puts
the new and changed photos, deletes those no longer in the folder, and writes `manifest.json` last:
while an upload is under way, or after one that failed, there is no manifest, and the pipeline's
steps refuse the photos (training/data_manifest.py) instead of training on a half-changed set.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from training.data_manifest import (
    MANIFEST,
    SPLITS,
    DataManifestError,
    Photo,
    manifest_bytes,
    parse_manifest,
    sha256_bytes,
)

SHA_METADATA = "sha256"  # x-amz-meta-sha256 on every photo and on the manifest


@dataclass
class Remote:
    """What is under the prefix now: photo objects by relative path, and the manifest if any."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # rel -> {"size", "modified"}
    manifest: bytes | None = None
    manifest_modified: datetime | None = None


@dataclass
class Plan:
    upload: list[str]
    delete: list[str]
    unchanged: int
    manifest: bytes  # the new manifest's bytes

    def changes(self, remote: Remote) -> bool:
        return bool(self.upload or self.delete) or remote.manifest != self.manifest


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not prefix.strip("/"):
        raise ValueError(f"not an s3://bucket/prefix URI: {uri}")
    return bucket, prefix.strip("/")


def read_remote(s3: Any, bucket: str, prefix: str) -> Remote:
    """List the prefix (photos under train/ and test/) and read its manifest."""
    remote = Remote()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            rel = item["Key"][len(prefix) + 1 :]
            if rel.split("/", 1)[0] in SPLITS:
                remote.objects[rel] = {"size": item["Size"], "modified": item["LastModified"]}
    try:
        got = s3.get_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        return remote
    remote.manifest, remote.manifest_modified = got["Body"].read(), got["LastModified"]
    return remote


def remote_digests(
    s3: Any, bucket: str, prefix: str, remote: Remote, local: Mapping[str, Photo], workers: int
) -> dict[str, str]:
    """The SHA-256 of each object that may equal its local photo (same size); the others need an upload."""
    listed: dict[str, Photo] = {}
    if remote.manifest is not None:
        try:
            listed = parse_manifest(remote.manifest, f"s3://{bucket}/{prefix}/{MANIFEST}")
        except DataManifestError:
            listed = {}  # replaced by this upload
    known, ask = {}, []
    for rel, photo in local.items():
        obj = remote.objects.get(rel)
        if obj is None or obj["size"] != photo.size:
            continue
        entry = listed.get(rel)
        # Strictly older (S3 times are to the second): a write in the manifest's second is asked about.
        older = remote.manifest_modified is not None and obj["modified"] < remote.manifest_modified
        if entry is not None and entry.size == obj["size"] and older:
            known[rel] = entry.sha256  # the last complete upload wrote it, and nothing since
        else:
            ask.append(rel)

    def head(rel: str) -> str:
        meta = s3.head_object(Bucket=bucket, Key=f"{prefix}/{rel}").get("Metadata", {})
        return str(meta.get(SHA_METADATA, ""))

    with ThreadPoolExecutor(workers) as pool:
        known.update(zip(ask, pool.map(head, ask), strict=True))
    return known


def make_plan(local: Mapping[str, Photo], remote: Remote, digests: Mapping[str, str]) -> Plan:
    upload = sorted(rel for rel, photo in local.items() if digests.get(rel) != photo.sha256)
    delete = sorted(set(remote.objects) - set(local))
    return Plan(upload, delete, len(local) - len(upload), manifest_bytes(local))


def content_type(rel: str) -> str:
    return mimetypes.guess_type(rel)[0] or "application/octet-stream"


def apply_plan(
    s3: Any,
    bucket: str,
    prefix: str,
    plan: Plan,
    remote: Remote,
    files: Mapping[str, Path],
    local: Mapping[str, Photo],
    workers: int,
) -> None:
    """Old manifest out, photos in, stale photos out, new manifest in: in that order, each step complete."""
    if remote.manifest is not None:
        s3.delete_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST}")

    def put(rel: str) -> None:
        data = files[rel].read_bytes()
        if sha256_bytes(data) != local[rel].sha256:
            raise DataManifestError(f"{files[rel]} changed while it was being uploaded: run the upload again")
        s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}/{rel}",
            Body=data,
            ContentType=content_type(rel),
            Metadata={SHA_METADATA: local[rel].sha256},
        )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, plan.upload))  # re-raises the first failure, after the others ended
    for start in range(0, len(plan.delete), 1000):
        batch = [{"Key": f"{prefix}/{rel}"} for rel in plan.delete[start : start + 1000]]
        errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True}).get("Errors", [])
        if errors:
            raise RuntimeError(f"deleting {errors[0].get('Key')}: {errors[0].get('Code')} {errors[0].get('Message')}")
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/{MANIFEST}",
        Body=plan.manifest,
        ContentType="application/json",
        Metadata={SHA_METADATA: sha256_bytes(plan.manifest)},
    )


@dataclass
class Outcome:
    uri: str
    photos: int
    uploaded: int
    deleted: int
    unchanged: int
    manifest_sha256: str
    seconds: float
    changed: bool


def sync(
    s3: Any,
    uri: str,
    files: Mapping[str, Path],
    local: Mapping[str, Photo],
    workers: int = 16,
    dry_run: bool = False,
    on_plan: Callable[[Plan], None] = lambda plan: None,
) -> Outcome:
    """Make `uri` hold exactly the local photos and their manifest; only what differs is sent."""
    started = time.monotonic()
    bucket, prefix = split_uri(uri)
    remote = read_remote(s3, bucket, prefix)
    plan = make_plan(local, remote, remote_digests(s3, bucket, prefix, remote, local, workers))
    on_plan(plan)
    changed = plan.changes(remote)
    if changed and not dry_run:
        apply_plan(s3, bucket, prefix, plan, remote, files, local, workers)
    return Outcome(
        uri,
        len(local),
        len(plan.upload),
        len(plan.delete),
        plan.unchanged,
        sha256_bytes(plan.manifest),
        round(time.monotonic() - started, 1),
        changed,
    )
