"""Fetch a caller-supplied `image_url` without letting it reach internal or metadata addresses.

Every hop is vetted: the scheme (https unless http is allowed), no credentials, a plain host
name or canonical IP, and every address the name resolves to must be public. The connection
then goes to the vetted IP itself (TLS SNI and certificate check still use the host name), so a
second DNS answer cannot swap in a private address. Redirects are followed by hand and vetted
again; the body is streamed under a byte limit. One deadline covers the whole fetch (name
resolution, connect, TLS, headers and body of every hop): when it passes, a watchdog shuts the
open socket down, so a server dripping bytes cannot hold the fetch past it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection

from classify_api.config import UrlPolicy
from classify_api.deadline import Deadline, Resolver, watched
from classify_api.errors import ApiError

MAX_URL_LENGTH = 2048
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
# Host names that look numeric but are not canonical dotted quads (2130706433, 0x7f.1, 0177.0.0.1):
# resolvers accept them as IPv4 addresses in disguise.
_NUMERIC_HOST_RE = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = {
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _fail(message: str, status: int = 400) -> ApiError:
    return ApiError(status, f"image_url refused: {message}")


def address_problem(ip: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why this address must not be fetched from (None if it is a public unicast address)."""
    candidates: list[IPAddress] = []
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 addresses embedded in IPv6 forms are judged as the IPv4 address they carry (first,
        # so the reason names what they really point at).
        embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        candidates += [e for e in embedded if e is not None]
    candidates.append(ip)
    for addr in candidates:
        if allow_loopback and addr.is_loopback:
            continue
        if addr in _METADATA:
            return "cloud metadata address"
        for attribute in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
            if getattr(addr, f"is_{attribute}"):
                return f"{attribute.replace('_', '-')} address"
        if not addr.is_global:
            return "non-public address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _fail(f"host {host!r} could not be resolved") from exc
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    ips: tuple[str, ...]


def vet_url(url: str, policy: UrlPolicy, resolver: Resolver = system_resolver) -> Target:
    """Check one URL against the policy and return the address to connect to, or raise ApiError."""
    if not url:
        raise _fail("empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise _fail(f"URL too long ({len(url)} characters, limit {MAX_URL_LENGTH})")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise _fail("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail(f"invalid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if scheme not in allowed:
        only = "http or https" if policy.allow_http else "https"
        raise _fail(f"scheme {scheme or '(none)'!r} is not allowed; only {only} URLs are fetched")
    if "@" in parts.netloc or parts.username is not None:
        raise _fail("URLs with credentials (user:password@) are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _fail("URL has no host")
    port = port or (443 if scheme == "https" else 80)
    if port <= 0:
        raise _fail("invalid port")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is None:
        if _NUMERIC_HOST_RE.match(host):
            raise _fail(f"host {host!r} is a non-canonical numeric IP address form")
        if not _HOST_RE.match(host):
            raise _fail(f"host {host!r} is not a valid host name")
        addresses = resolver(host, port)
    else:
        addresses = [str(literal)]
    if not addresses:
        raise _fail(f"host {host!r} has no addresses")
    for address in addresses:
        problem = address_problem(ipaddress.ip_address(address.split("%", 1)[0]), policy.allow_loopback)
        if problem:
            raise _fail(f"host {host!r} resolves to a disallowed address ({problem})")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme, host, port, path, tuple(dict.fromkeys(addresses)))


def _pool(target: Target, ip: str, deadline: Deadline) -> urllib3.HTTPConnectionPool:
    remaining = max(0.01, deadline.remaining())
    timeout = urllib3.Timeout(connect=min(3.0, remaining), read=remaining)
    kwargs: dict[str, Any] = {"timeout": timeout, "retries": False, "maxsize": 1}
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            ip,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            **kwargs,
        )
    else:
        pool = urllib3.HTTPConnectionPool(ip, target.port, **kwargs)
    # Declared as the connection protocol; at run time HTTPConnection or HTTPSConnection (a subclass of it).
    pool.ConnectionCls = watched(cast(type[HTTPConnection], pool.ConnectionCls), deadline)
    return pool


def _timed_out() -> ApiError:
    return ApiError(422, "image_url could not be fetched: timed out (the whole fetch has a deadline)")


def _open(target: Target, deadline: Deadline) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    """GET the target from one of its vetted addresses (never resolving the name again)."""
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    headers = {
        "Host": host if target.port == default_port else f"{host}:{target.port}",
        "Accept": "image/*",
        "Accept-Encoding": "identity",
        "User-Agent": "catdog-classify-api/1",
    }
    error: ApiError | None = None
    for ip in target.ips:
        if deadline.remaining() <= 0:
            raise _timed_out()
        pool = _pool(target, ip, deadline)
        try:
            resp = pool.urlopen("GET", target.path, headers=headers, redirect=False, preload_content=False)
            if deadline.expired:  # headers cut short by the watchdog parse as a (broken) answer
                resp.close()
                pool.close()
                raise _timed_out()
            return pool, resp
        except urllib3.exceptions.SSLError as exc:
            pool.close()
            if deadline.expired:
                raise _timed_out() from exc
            raise _fail(f"TLS failure talking to {target.host!r}", 422) from exc
        except urllib3.exceptions.NewConnectionError as exc:  # refused/unreachable: try the next address
            pool.close()
            error = ApiError(422, f"image_url could not be fetched: cannot connect to {target.host!r}")
            error.__cause__ = exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            pool.close()
            if deadline.expired:
                raise _timed_out() from exc
            timed_out = isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError)
            why = "timed out talking to" if timed_out else "connection failed to"
            raise ApiError(422, f"image_url could not be fetched: {why} {target.host!r}") from exc
    assert error is not None
    raise error


def _read_body(resp: urllib3.BaseHTTPResponse, policy: UrlPolicy, deadline: Deadline) -> bytes:
    content_type = (resp.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if not content_type.startswith("image/") and content_type != "application/octet-stream":
        raise ApiError(415, f"image_url did not return an image (Content-Type {content_type or 'missing'!r})")
    encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise ApiError(415, f"image_url answered with unsupported Content-Encoding {encoding!r}")
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > policy.max_bytes:
        raise ApiError(413, f"image at image_url is too large ({declared} bytes, limit {policy.max_bytes})")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in resp.stream(64 * 1024, decode_content=False):
            total += len(chunk)
            if total > policy.max_bytes:
                limit = policy.max_bytes
                raise ApiError(413, f"image at image_url is too large (over the {limit} byte limit)")
            chunks.append(chunk)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if deadline.expired:
            raise _timed_out() from exc
        raise ApiError(422, "image_url could not be fetched: download failed or timed out") from exc
    if deadline.expired:  # the watchdog's shutdown can look like a clean end of an unsized body
        raise _timed_out()
    return b"".join(chunks)


def fetch_image(url: str, policy: UrlPolicy, resolver: Resolver = system_resolver) -> bytes:
    """Download the image at `url` under `policy`, or raise ApiError (4xx) saying why not."""
    with Deadline(policy.timeout_seconds) as deadline:
        return _fetch(url, policy, resolver, deadline)


def _fetch(url: str, policy: UrlPolicy, resolver: Resolver, deadline: Deadline) -> bytes:
    seen: set[str] = set()
    current = url

    def bounded(host: str, port: int) -> list[str]:
        return deadline.resolve(resolver, host, port)

    for _hop in range(policy.max_redirects + 1):
        target = vet_url(current, policy, bounded)
        seen.add(current)
        pool, resp = _open(target, deadline)
        try:
            if resp.status in REDIRECT_STATUSES:
                location = resp.headers.get("Location")
                if not location:
                    raise ApiError(422, f"image_url redirect ({resp.status}) has no Location")
                current = urljoin(current, location)
                if current in seen:
                    raise ApiError(400, "image_url refused: redirect loop")
                continue
            if resp.status != 200:
                raise ApiError(422, f"image_url could not be fetched: remote answered HTTP {resp.status}")
            return _read_body(resp, policy, deadline)
        finally:
            resp.close()
            pool.close()
    raise ApiError(400, f"image_url refused: too many redirects (limit {policy.max_redirects})")
