"""S3's REST requests (path-style, as every client of the emulator sends them) as IAM sees them.

S3 authorizes a bucket's configuration by sub-resource (`?versioning`, `?policy`, ...) under actions
whose names are not the API operations' (GetBucketEncryption is s3:GetEncryptionConfiguration), so
the operation and its action are read here from the method, the path and the query string.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote

# sub-resource → (action on GET, on PUT, on DELETE)
BUCKET_CONFIG = {
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "location": ("GetBucketLocation", None, None),
    "accelerate": ("GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    "replication": ("GetReplicationConfiguration", "PutReplicationConfiguration", "PutReplicationConfiguration"),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "intelligent-tiering": ("GetIntelligentTieringConfiguration", "PutIntelligentTieringConfiguration", None),
    "analytics": ("GetAnalyticsConfiguration", "PutAnalyticsConfiguration", None),
    "metrics": ("GetMetricsConfiguration", "PutMetricsConfiguration", None),
    "inventory": ("GetInventoryConfiguration", "PutInventoryConfiguration", None),
}
OBJECT_CONFIG = {"tagging": ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"),
                 "acl": ("GetObjectAcl", "PutObjectAcl", None),
                 "retention": ("GetObjectRetention", "PutObjectRetention", None),
                 "legal-hold": ("GetObjectLegalHold", "PutObjectLegalHold", None)}  # fmt: skip
VERBS = {"GET": 0, "HEAD": 0, "PUT": 1, "DELETE": 2}


def classify(method: str, path: str, query: str, headers: dict[str, str]) -> tuple[str, list[str], dict[str, str]]:
    """(operation, IAM actions, parameters) of an S3 request; parameters as boto3 names them."""
    args = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    params = {"Bucket": bucket, "Key": key} if key else {"Bucket": bucket}
    if "prefix" in args:
        params["Prefix"] = args["prefix"]
    if not bucket:
        return "ListBuckets", ["ListAllMyBuckets"], params
    if key:
        return _object(method, args, headers, params)
    sub = next((name for name in BUCKET_CONFIG if name in args), None)
    if sub and method in VERBS:
        action = BUCKET_CONFIG[sub][VERBS[method]]
        if action:
            return action, [action], params
    if method == "POST" and "delete" in args:
        return "DeleteObjects", ["DeleteObject"], params
    if method == "GET" and "versions" in args:
        return "ListObjectVersions", ["ListBucketVersions"], params
    if method == "GET" and "uploads" in args:
        return "ListMultipartUploads", ["ListBucketMultipartUploads"], params
    if method in ("GET", "HEAD"):
        operation = (
            "HeadBucket" if method == "HEAD" else ("ListObjectsV2" if args.get("list-type") == "2" else "ListObjects")
        )
        params.setdefault("Prefix", "")
        return operation, ["ListBucket"], params
    if method == "PUT":
        return "CreateBucket", ["CreateBucket"], params
    if method == "DELETE":
        return "DeleteBucket", ["DeleteBucket"], params
    return f"{method} bucket", [f"Unknown{method.title()}Bucket"], params


def _object(
    method: str, args: dict[str, str], headers: dict[str, str], params: dict[str, str]
) -> tuple[str, list[str], dict[str, str]]:
    sub = next((name for name in OBJECT_CONFIG if name in args), None)
    if sub and method in VERBS:
        action = OBJECT_CONFIG[sub][VERBS[method]]
        if action:
            return action, [action], params
    version = "Version" if "versionId" in args else ""
    if method in ("GET", "HEAD"):
        return ("GetObject" if method == "GET" else "HeadObject"), [f"GetObject{version}"], params
    if method == "PUT":
        copy = {k.lower(): v for k, v in headers.items()}.get("x-amz-copy-source")
        if copy:
            source_bucket, _, source_key = unquote(copy.lstrip("/")).partition("/")
            params.update(CopySourceBucket=source_bucket, CopySourceKey=source_key.split("?")[0])
            return "CopyObject", ["PutObject"], params
        return ("UploadPart" if "uploadId" in args else "PutObject"), ["PutObject"], params
    if method == "POST":
        return ("CreateMultipartUpload" if "uploads" in args else "CompleteMultipartUpload"), ["PutObject"], params
    if method == "DELETE":
        if "uploadId" in args:
            return "AbortMultipartUpload", ["AbortMultipartUpload"], params
        return "DeleteObject", [f"DeleteObject{version}"], params
    return f"{method} object", [f"Unknown{method.title()}Object"], params
