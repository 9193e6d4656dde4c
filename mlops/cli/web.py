"""`mlops web build|publish`: the web page with the API URL (and key) filled in, as a file or in its S3 bucket."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mlops.cli.common import AwsBackendOpt, AwsStageName, AwsStageOpt, BackendName, console, fail

web_app = typer.Typer(help="The web page: pick a photo, see cat or dog.", no_args_is_help=True)


@web_app.command("build")
def build(
    api_url: Annotated[str, typer.Option(envvar="API_URL", help="The API's base URL")],
    api_key: Annotated[str, typer.Option(envvar="API_KEY", help="x-api-key the page sends (optional)")] = "",
    out: Annotated[Path, typer.Option(help="Where to write the page")] = Path("build/web/index.html"),
) -> None:
    """Write the page for an API, ready to upload anywhere static files are served."""
    from mlops.web_page import render

    try:
        html = render(api_url, api_key)
    except ValueError as exc:
        fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    console.print(f"wrote {out} for {api_url}")


@web_app.command("publish")
def publish(
    stage: AwsStageOpt = AwsStageName.staging,
    backend: AwsBackendOpt = BackendName.aws,
    bucket: Annotated[str, typer.Option(envvar="WEB_BUCKET", help="Default: Terraform output web_bucket")] = "",
) -> None:
    """Upload the page for the stage's API to its S3 bucket (and refresh the CloudFront copy)."""
    if backend != BackendName.aws:
        fail("`mlops web publish` works on AWS only: pass --backend aws (locally the API front serves the page at /)")
    from botocore.exceptions import BotoCoreError, ClientError

    from mlops.backends.aws import AwsBackend
    from mlops.backends.aws.config import infra_outputs
    from mlops.backends.base import BackendError
    from mlops.web_page import publish as upload
    from mlops.web_page import render

    try:
        outputs = infra_outputs(stage, os.environ)
        bucket = bucket or str(outputs.get("web_bucket") or "")
        if not bucket:
            fail(f"no web bucket for {stage}: set WEB_BUCKET or run `make infra-outputs ENV={stage}`")
        distribution = os.environ.get("WEB_DISTRIBUTION_ID") or str(outputs.get("web_distribution_id") or "")
        b = AwsBackend(stage, env={**os.environ, "API_KEY_ID": str(outputs.get("web_api_key_id") or "")})
        with b.session():
            html = render(b.api_url(), b.api_key())
            cdn = b.clients.get("cloudfront") if distribution else None
            done = upload(b.clients.get("s3"), bucket, html, cdn, distribution)
    except (BackendError, ClientError, BotoCoreError, ValueError) as exc:
        fail(f"publishing the {stage} web page failed: {exc}")
    where = str(outputs.get("web_url") or f"s3://{bucket}/index.html")
    extra = f", CloudFront invalidation {done['invalidation']}" if "invalidation" in done else ""
    console.print(f"web page for {b.api_url()} published to {where} ({done['bytes']:,} bytes{extra})")


def register(app: typer.Typer) -> None:
    app.add_typer(web_app, name="web")
