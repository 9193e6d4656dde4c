"""The web page with its API URL (and API key) filled in: served by the local front, published to S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
PAGE = WEB_DIR / "index.html"
URL_MARK, KEY_MARK = "__API_URL__", "__API_KEY__"


def render(api_url: str, api_key: str = "") -> str:
    """index.html calling `api_url` (sending `api_key` as x-api-key when one is given)."""
    if not api_url.startswith(("http://", "https://")):
        raise ValueError(f"API URL {api_url!r} is not an http(s) URL")
    for value in (api_url, api_key):
        if any(c in value for c in "\"'<>\\\n"):
            raise ValueError(f"refusing to put {value!r} into the page: it holds quote, bracket or newline characters")
    return PAGE.read_text(encoding="utf-8").replace(URL_MARK, api_url.rstrip("/")).replace(KEY_MARK, api_key)


def publish(s3: Any, bucket: str, html: str, cloudfront: Any = None, distribution_id: str = "") -> dict[str, Any]:
    """Upload the page as the bucket's index.html; invalidate the CDN's copy when there is one."""
    body = html.encode("utf-8")
    put = s3.put_object(
        Bucket=bucket,
        Key="index.html",
        Body=body,
        ContentType="text/html; charset=utf-8",
        CacheControl="no-cache",
    )
    out = {"bucket": bucket, "key": "index.html", "bytes": len(body), "etag": json.loads(put["ETag"])}
    if cloudfront is not None and distribution_id:
        batch = {"Paths": {"Quantity": 1, "Items": ["/index.html"]}, "CallerReference": out["etag"]}
        inv = cloudfront.create_invalidation(DistributionId=distribution_id, InvalidationBatch=batch)
        out["invalidation"] = inv["Invalidation"]["Id"]
    return out
