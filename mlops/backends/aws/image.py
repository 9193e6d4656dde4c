"""Pin a release's serving image by digest, and keep it: a rollback target must stay deployable.

A model package names its image by tag. A release resolves the tag to the image's digest in ECR,
deploys `repository@sha256:...`, and adds the tag `release-<release id>` to the image: the ECR
lifecycle policy (infra/ecr.tf) never expires images with that tag prefix.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from mlops.backends.aws.config import AwsClients, aws_call
from mlops.backends.base import BackendError

RETAIN_TAG_PREFIX = "release-"
# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag|@digest]
ECR_IMAGE = re.compile(
    r"^(?P<registry>(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?)/"
    r"(?P<repo>[a-z0-9._/-]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def retain_tag(release_id: str) -> str:
    return (RETAIN_TAG_PREFIX + release_id)[:128]


def pin_image(clients: AwsClients, image: str, release_id: str) -> str:
    """`image` by digest (resolved in ECR when it names a tag), tagged for retention; other registries as given."""
    match = ECR_IMAGE.match(image)
    if not match:
        return image
    ecr: Any = clients.get("ecr")
    repo, account = match["repo"], match["account"]
    image_id = {"imageDigest": match["digest"]} if match["digest"] else {"imageTag": match["tag"] or "latest"}
    with aws_call(f"reading image {image} from ECR"):
        found = ecr.batch_get_image(registryId=account, repositoryName=repo, imageIds=[image_id])
    images = found.get("images", [])
    if not images:
        reason = "; ".join(f.get("failureReason", "") for f in found.get("failures", [])) or "not found"
        raise BackendError(f"serving image {image} cannot be deployed: {reason}")
    digest = images[0]["imageId"]["imageDigest"]
    tag = retain_tag(release_id)
    with (
        aws_call(f"tagging image {repo}@{digest} as {tag}"),
        contextlib.suppress(
            ecr.exceptions.ImageAlreadyExistsException  # the tag is already on this image
        ),
    ):
        ecr.put_image(
            registryId=account,
            repositoryName=repo,
            imageManifest=images[0]["imageManifest"],
            imageManifestMediaType=images[0].get("imageManifestMediaType")
            or "application/vnd.docker.distribution.manifest.v2+json",
            imageTag=tag,
            imageDigest=digest,
        )
    return f"{match['registry']}/{repo}@{digest}"
