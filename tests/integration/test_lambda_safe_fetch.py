"""image_url fetching: address vetting, DNS pinning, manual redirects, limits (loopback servers only)."""

from __future__ import annotations

import base64
import ipaddress
import json
import time
from collections.abc import Iterator

import pytest
from botocore.stub import Stubber
from classify_api import handler
from classify_api.config import UrlPolicy, load_settings
from classify_api.errors import ApiError
from classify_api.safe_fetch import address_problem, fetch_image, vet_url
from lambda_servers import DripServer, ImageHost, serve
from lambda_support import (
    FakeContext,
    clean_handler_env,
    image_bytes,
    make_event,
    model_body,
    response_json,
    stubbed_runtime,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")
JPEG = image_bytes("JPEG", (64, 64), "navy")
IMG = {"Content-Type": "image/jpeg"}
# A test-only policy: plain http and loopback allowed (the loopback servers), nothing else private.
LOCAL = UrlPolicy(allow_http=True, allow_loopback=True, max_bytes=100_000, timeout_seconds=2.0)


def resolver_for(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        resolve.calls.append(host)  # type: ignore[attr-defined]
        return table[host]

    resolve.calls = []  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("93.184.215.14", None),
        ("2606:4700::6810:84e5", None),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "address"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a9fe:a9fe", "metadata"),
        ("2002:7f00:1::", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
    ],
)
def test_address_vetting(address: str, problem: str | None) -> None:
    found = address_problem(ipaddress.ip_address(address))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


def test_loopback_allowance_is_narrow() -> None:
    assert address_problem(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert address_problem(ipaddress.ip_address("::1"), allow_loopback=True) is None
    for other in ("10.0.0.1", "169.254.169.254", "192.168.1.1", "0.0.0.0"):
        assert address_problem(ipaddress.ip_address(other), allow_loopback=True) is not None


def test_loopback_allowance_is_ignored_inside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_URL_ALLOW_LOOPBACK", "true")
    monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API", raising=False)
    assert load_settings().url_policy.allow_loopback is True
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    assert load_settings().url_policy.allow_loopback is False


def test_every_resolved_address_must_be_public() -> None:
    policy = UrlPolicy()
    ok = vet_url("https://img.example/cat.jpg?size=large", policy, resolver_for({"img.example": ["93.184.215.14"]}))
    assert ok.ips == ("93.184.215.14",) and ok.host == "img.example" and ok.path == "/cat.jpg?size=large"
    mixed = resolver_for({"img.example": ["93.184.215.14", "10.0.0.7"]})
    with pytest.raises(ApiError, match="disallowed address"):
        vet_url("https://img.example/cat.jpg", policy, mixed)
    mapped = resolver_for({"img.example": ["::ffff:169.254.169.254"]})
    with pytest.raises(ApiError, match="metadata"):
        vet_url("https://img.example/cat.jpg", policy, mapped)


def test_http_needs_the_allowance() -> None:
    resolve = resolver_for({"img.example": ["93.184.215.14"]})
    with pytest.raises(ApiError, match="only https"):
        vet_url("http://img.example/cat.jpg", UrlPolicy(), resolve)
    assert vet_url("http://img.example/cat.jpg", UrlPolicy(allow_http=True), resolve).port == 80


@pytest.fixture
def host() -> Iterator[ImageHost]:
    routes = {
        "/cat.jpg": (200, IMG, JPEG),
        "/cat-octet": (200, {"Content-Type": "application/octet-stream"}, JPEG),
        "/page.html": (200, {"Content-Type": "text/html"}, b"<html></html>"),
        "/gzip.jpg": (200, {**IMG, "Content-Encoding": "gzip"}, JPEG),
        "/big.jpg": (200, IMG, b"\xff\xd8\xff" + b"\x00" * 200_000),
        "/big-no-length.jpg": (200, {**IMG, "Content-Length": ""}, b"\xff\xd8\xff" + b"\x00" * 200_000),
        "/slow.jpg": (200, {**IMG, "X-Test-Sleep": "3"}, JPEG),
        "/to-private": (302, {"Location": "http://10.0.0.1/cat.jpg"}, b""),
        "/to-metadata": (301, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/to-internal-name": (307, {"Location": "http://internal.test/cat.jpg"}, b""),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/ping": (302, {"Location": "/pong"}, b""),
        "/pong": (302, {"Location": "/ping"}, b""),
        "/r1": (302, {"Location": "/r2"}, b""),
        "/r2": (302, {"Location": "/r3"}, b""),
        "/r3": (302, {"Location": "/cat.jpg"}, b""),
        "/r0": (302, {"Location": "/r1"}, b""),
        "/no-location": (302, {}, b""),
    }
    with serve(ImageHost(routes)) as server:
        yield server  # type: ignore[misc]


def names(host: ImageHost) -> dict[str, list[str]]:
    """Made-up names: images.test -> the loopback server, internal.test -> a private address."""
    return {"images.test": ["127.0.0.1"], "internal.test": ["10.0.0.9"]}


def test_fetch_connects_to_the_vetted_address_with_the_original_host(host: ImageHost) -> None:
    resolve = resolver_for(names(host))
    # images.test exists in no DNS: the fetch can only work by connecting to the vetted IP.
    data = fetch_image(f"http://images.test:{host.port}/cat.jpg", LOCAL, resolve)
    assert data == JPEG
    assert host.requests == [("/cat.jpg", f"images.test:{host.port}")]
    assert resolve.calls == ["images.test"]  # type: ignore[attr-defined]


def test_octet_stream_answers_are_accepted(host: ImageHost) -> None:
    assert fetch_image(f"http://127.0.0.1:{host.port}/cat-octet", LOCAL) == JPEG


@pytest.mark.parametrize(
    ("path", "status", "keyword"),
    [
        ("/page.html", 415, "did not return an image"),
        ("/gzip.jpg", 415, "Content-Encoding"),
        ("/big.jpg", 413, "too large"),
        ("/big-no-length.jpg", 413, "too large"),
        ("/missing.jpg", 422, "HTTP 404"),
        ("/to-private", 400, "disallowed address (private"),
        ("/to-metadata", 400, "disallowed address"),
        ("/to-internal-name", 400, "disallowed address (private"),
        ("/to-file", 400, "scheme"),
        ("/loop", 400, "redirect loop"),
        ("/ping", 400, "redirect loop"),
        ("/r0", 400, "too many redirects"),
        ("/no-location", 422, "no Location"),
    ],
)
def test_fetch_refusals(host: ImageHost, path: str, status: int, keyword: str) -> None:
    with pytest.raises(ApiError) as info:
        fetch_image(f"http://images.test:{host.port}{path}", LOCAL, resolver_for(names(host)))
    assert info.value.status == status
    assert keyword in info.value.message, info.value.message


def test_redirect_to_private_address_is_never_requested(host: ImageHost) -> None:
    with pytest.raises(ApiError):
        fetch_image(f"http://images.test:{host.port}/to-internal-name", LOCAL, resolver_for(names(host)))
    assert [path for path, _ in host.requests] == ["/to-internal-name"]


def test_three_redirects_are_followed(host: ImageHost) -> None:
    assert fetch_image(f"http://127.0.0.1:{host.port}/r1", LOCAL) == JPEG
    assert [path for path, _ in host.requests] == ["/r1", "/r2", "/r3", "/cat.jpg"]


def test_slow_image_hosts_time_out(host: ImageHost) -> None:
    policy = UrlPolicy(allow_http=True, allow_loopback=True, timeout_seconds=0.3)
    with pytest.raises(ApiError, match="timed out"):
        fetch_image(f"http://127.0.0.1:{host.port}/slow.jpg", policy)


DRIP_HEADERS = (b"HTTP/1.1 200 OK\r\n", b"X-Padding: " + b"a" * 400 + b"\r\n")
DRIP_BODY = (b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 400\r\n\r\n", b"\xff" * 400)


@pytest.mark.parametrize(("prefix", "drip"), [DRIP_HEADERS, DRIP_BODY], ids=["headers", "body"])
def test_one_deadline_covers_a_server_dripping_bytes(prefix: bytes, drip: bytes) -> None:
    # A byte every 50 ms never trips a per-read timeout; only a deadline for the whole fetch stops it.
    policy = UrlPolicy(allow_http=True, allow_loopback=True, timeout_seconds=0.5)
    with DripServer(prefix, drip) as server:
        start = time.monotonic()
        with pytest.raises(ApiError, match="timed out") as caught:
            fetch_image(f"http://127.0.0.1:{server.port}/cat.jpg", policy)
        elapsed = time.monotonic() - start
    assert caught.value.status == 422
    assert elapsed < 1.5, f"the fetch outlived its 0.5 s deadline by {elapsed - 0.5:.2f} s"


def test_slow_name_resolution_counts_against_the_deadline() -> None:
    def slow(host: str, port: int) -> list[str]:
        time.sleep(2.0)
        return ["127.0.0.1"]

    policy = UrlPolicy(allow_http=True, allow_loopback=True, timeout_seconds=0.3)
    start = time.monotonic()
    with pytest.raises(ApiError, match=r"resolving 'images\.test' timed out"):
        fetch_image("http://images.test/cat.jpg", policy, slow)
    assert time.monotonic() - start < 1.5


def test_tls_failure_is_reported(host: ImageHost) -> None:
    with pytest.raises(ApiError, match="TLS"):
        fetch_image(f"https://127.0.0.1:{host.port}/cat.jpg", LOCAL)


def test_connection_refused_is_reported() -> None:
    with pytest.raises(ApiError, match="cannot connect"):
        fetch_image("http://127.0.0.1:1/cat.jpg", LOCAL)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    clean_handler_env(monkeypatch)
    with stubbed_runtime() as stubber:
        yield stubber


def post_url(url: str) -> dict:
    body = json.dumps({"image_url": url})
    return handler.lambda_handler(make_event(body=body, headers={"Content-Type": "application/json"}), FakeContext())


def test_handler_predicts_from_an_image_url(host: ImageHost, stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_HTTP_IMAGE_URLS", "true")
    monkeypatch.setenv("IMAGE_URL_ALLOW_LOOPBACK", "true")
    params = {
        "EndpointName": "catdog-test",
        "ContentType": "image/jpeg",
        "Accept": "application/json",
        "Body": JPEG,
    }
    stub.add_response("invoke_endpoint", {"Body": model_body()}, params)
    response = post_url(f"http://localhost:{host.port}/cat.jpg")
    assert response["statusCode"] == 200, response["body"]
    stub.assert_no_pending_responses()


def test_handler_refuses_loopback_urls_by_default(host: ImageHost, stub: Stubber) -> None:
    response = post_url(f"http://127.0.0.1:{host.port}/cat.jpg")
    assert response["statusCode"] == 400 and "scheme" in response_json(response)["error"]
    response = post_url(f"https://127.0.0.1:{host.port}/cat.jpg")
    assert response["statusCode"] == 400 and "loopback" in response_json(response)["error"]
    assert host.requests == []


def test_fetched_bytes_are_vetted_like_uploads(host: ImageHost, stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_HTTP_IMAGE_URLS", "true")
    monkeypatch.setenv("IMAGE_URL_ALLOW_LOOPBACK", "true")
    host.routes["/fake.jpg"] = (200, IMG, b"GIF? no: " + base64.b64encode(b"text"))
    response = post_url(f"http://127.0.0.1:{host.port}/fake.jpg")
    assert response["statusCode"] == 415 and "not a supported image" in response_json(response)["error"]
