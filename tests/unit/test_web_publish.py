"""The web page with its API filled in: `mlops web build`, and `mlops web publish` to S3 under moto."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import typer
from aws_support import REGION, aws_env
from moto import mock_aws
from typer.testing import CliRunner

from mlops.cli import web as cli_web
from mlops.web_page import KEY_MARK, URL_MARK, render

API = "https://abc123.execute-api.eu-west-1.amazonaws.com/staging"


def run(*args: str):
    app = typer.Typer()
    cli_web.register(app)
    return CliRunner().invoke(app, list(args))


def test_the_page_calls_the_api_it_is_built_for(tmp_path: Path) -> None:
    html = render(API + "/", "k3y-value")
    assert f'"{API}"' in html and '"k3y-value"' in html and URL_MARK not in html and KEY_MARK not in html
    assert '"x-api-key": API_KEY' in html  # the page sends the key it was given
    assert '""' in render("http://127.0.0.1:8000").split("const API_KEY = ")[1][:3]  # locally: no key
    result = run("web", "build", "--api-url", API, "--out", str(tmp_path / "index.html"))
    assert result.exit_code == 0, result.output
    assert f'"{API}"' in (tmp_path / "index.html").read_text()


@pytest.mark.parametrize("url", ["ftp://example.com", 'https://x.example/"+alert(1)+"', "not a url"])
def test_a_bad_api_url_is_refused_in_one_line(tmp_path: Path, url: str) -> None:
    result = run("web", "build", "--api-url", url, "--out", str(tmp_path / "index.html"))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "index.html").exists()


def test_publish_uploads_the_page_for_the_stage_api_with_its_key(tmp_path: Path, monkeypatch) -> None:
    aws_env(monkeypatch, str(tmp_path))
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="catdog-staging-web", CreateBucketConfiguration={"LocationConstraint": REGION})
        key = boto3.client("apigateway", region_name=REGION).create_api_key(name="web", value="v" * 24)
        smoke = boto3.client("apigateway", region_name=REGION).create_api_key(name="smoke", value="s" * 24)
        outputs = {
            "environment": "staging",
            "web_bucket": "catdog-staging-web",
            "api_url": API,
            "api_key_id": smoke["id"],  # the smoke tests' key: never published
            "web_api_key_id": key["id"],
        }
        (tmp_path / "staging.json").write_text(json.dumps({k: {"value": v} for k, v in outputs.items()}))
        result = run("web", "publish", "--backend", "aws", "--stage", "staging")
        assert result.exit_code == 0, result.output
        assert "published to s3://catdog-staging-web/index.html" in result.output
        page = s3.get_object(Bucket="catdog-staging-web", Key="index.html")
        html = page["Body"].read().decode()
        assert page["ContentType"].startswith("text/html") and page["CacheControl"] == "no-cache"
        assert f'"{API}"' in html and f'"{"v" * 24}"' in html and URL_MARK not in html
        assert "s" * 24 not in html


def test_publish_without_a_bucket_or_off_aws_fails_in_one_line(tmp_path: Path, monkeypatch) -> None:
    aws_env(monkeypatch, str(tmp_path))
    local = run("web", "publish", "--backend", "local")
    assert local.exit_code == 1 and "works on AWS only" in local.output
    with mock_aws():
        missing = run("web", "publish", "--backend", "aws", "--stage", "staging")
    assert missing.exit_code == 1 and "no web bucket for staging" in missing.output
    assert len(missing.output.strip().splitlines()) == 1
