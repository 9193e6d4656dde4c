"""The model server as SageMaker runs it: a real subprocess on a loopback port, real photos."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from serving_bad_inputs import CASES, Case, real_jpeg
from serving_fixtures import (
    LABELS,
    VERSION,
    check_answer,
    classify,
    photos,
    raw_request,
    request,
    server_log,
    shared_artifact,
    start_model_server,
    stop_model_server,
)


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_artifact(tmp_path_factory)


@pytest.fixture(scope="module")
def server(artifact: Path):
    proc, url = start_model_server(artifact)
    yield url
    stop_model_server(proc)


def to_png(data: bytes) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, "PNG")
    return buf.getvalue()


def test_ping_is_ok_once_loaded(server: str) -> None:
    status, _, body = request(server, "GET", "/ping")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "model_version": VERSION}
    assert request(server, "HEAD", "/ping")[:1] == (200,)


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        ("image/jpeg", lambda d: d),
        ("image/jpeg; charset=binary", lambda d: d),
        ("application/x-image", lambda d: d),
        ("image/png", to_png),
        ("application/json", lambda d: json.dumps({"image_base64": base64.b64encode(d).decode()}).encode()),
    ],
)
def test_every_content_type_gives_the_same_answer(server: str, content_type: str, encode) -> None:
    jpeg = real_jpeg()
    reference = classify(server, jpeg)
    doc = classify(server, encode(jpeg), content_type)
    check_answer(doc)
    for label in LABELS:  # PNG re-encodes the decoded JPEG pixels: the same pixels, the same scores
        assert abs(doc["scores"][label] - reference["scores"][label]) < 1e-5


def test_labels_are_right_on_held_out_photos(server: str) -> None:
    results = [
        (label, classify(server, p.read_bytes())["label"])
        for label in LABELS
        for p in photos(label, "test", 10, start=100)
    ]
    correct = sum(truth == got for truth, got in results)
    assert correct >= 15, results  # a 40-photo linear probe: ~90% on held-out photos


def test_exif_orientation_is_honoured(server: str) -> None:
    from PIL import Image

    img = Image.open(photos("dog", "test", 1, start=3)[0]).convert("RGB")
    assert img.width != img.height
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90° counter-clockwise to display"

    def png(im: Image.Image, **kw) -> bytes:
        buf = io.BytesIO()
        im.save(buf, "PNG", **kw)
        return buf.getvalue()

    tagged = classify(server, png(img, exif=exif.tobytes()), "image/png")["scores"]
    upright = classify(server, png(img.transpose(Image.Transpose.ROTATE_90)), "image/png")["scores"]
    untagged = classify(server, png(img), "image/png")["scores"]
    assert all(abs(tagged[k] - upright[k]) < 1e-5 for k in LABELS)
    assert any(abs(untagged[k] - upright[k]) > 1e-4 for k in LABELS)  # the test can tell


def test_keep_alive_serves_many_requests_on_one_connection(server: str) -> None:
    conn = http.client.HTTPConnection(urlsplit(server).hostname, urlsplit(server).port, timeout=30)
    try:
        for i in range(5):
            status, _, _ = request(
                server, "POST", "/invocations", real_jpeg(), {"Content-Type": "image/jpeg"}, conn=conn
            )
            assert status == 200
            if i == 0:
                first_socket = conn.sock
            assert conn.sock is first_socket  # not reconnected
        status, _, _ = request(server, "GET", "/nothing", conn=conn)  # an error keeps it open too
        assert status == 404
        assert request(server, "GET", "/ping", conn=conn)[0] == 200
        assert conn.sock is first_socket
    finally:
        conn.close()


def test_concurrent_requests_all_succeed(server: str) -> None:
    bodies = [p.read_bytes() for label in LABELS for p in photos(label, "test", 4)]
    expected = [classify(server, b)["label"] for b in bodies]
    failures: list[str] = []

    def worker(offset: int) -> None:
        for i in range(len(bodies)):
            k = (i + offset) % len(bodies)
            try:
                got = classify(server, bodies[k])["label"]
                if got != expected[k]:
                    failures.append(f"photo {k}: {got} != {expected[k]}")
            except Exception as exc:  # collected, asserted below
                failures.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_request_is_refused_with_a_json_error(server: str, case: Case) -> None:
    if case.raw is not None:
        status, headers, body = raw_request(server, case.raw())
    else:
        headers = dict(case.headers)
        if case.content_type is not None:
            headers["Content-Type"] = case.content_type
        status, headers, body = request(server, case.method, case.path, case.body(), headers)
    assert 400 <= status < 500
    assert status == case.status, body
    if case.by_server:  # refused by the HTTP server before the application sees it: no body, connection closed
        assert body == b"" and headers.get("connection") == "close"
        return
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert case.keyword.lower() in error.lower(), error


def test_bad_inputs_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def test_server_stays_healthy_after_the_corpus_and_a_dropped_upload(server: str) -> None:
    for case in CASES:  # again, back to back
        if case.raw is not None:
            raw_request(server, case.raw())
        else:
            request(
                server, case.method, case.path, case.body(), {"Content-Type": case.content_type or "", **case.headers}
            )
    host, port = urlsplit(server).hostname, urlsplit(server).port
    with socket.create_connection((host, port), timeout=10) as sock:  # promise 1000 bytes, send 10, hang up
        sock.sendall(b"POST /invocations HTTP/1.1\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n")
        sock.sendall(b"0123456789")
    assert request(server, "GET", "/ping")[0] == 200
    check_answer(classify(server, real_jpeg()))


def test_request_log_has_one_json_line_per_request(artifact: Path) -> None:
    proc, url = start_model_server(artifact)
    try:
        classify(url, real_jpeg())
        request(url, "POST", "/invocations", b"nope", {"Content-Type": "image/jpeg"})
    finally:
        assert stop_model_server(proc) == 0  # SIGTERM: a clean exit
    log = server_log(proc)
    lines = [json.loads(line) for line in log.splitlines()]
    served = [d for d in lines if d.get("path") == "/invocations"]
    assert [d["status"] for d in served] == [200, 415], log
    assert served[0]["label"] in LABELS and "not an image" in served[1]["error"]
    assert "Traceback" not in log
    assert [d["event"] for d in lines if d.get("event", "disconnect") != "disconnect"] == [
        "listening",
        "ready",
        "stopped",
    ], log


def test_model_version_env_and_unpacked_folder(artifact: Path) -> None:
    proc, url = start_model_server(artifact.parent / "model", env={"MODEL_VERSION": "42"})
    try:
        assert json.loads(request(url, "GET", "/ping")[2])["model_version"] == "42"
        check_answer(classify(url, real_jpeg()), version="42")
    finally:
        stop_model_server(proc)


def test_missing_model_stops_the_server_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="model artifact not found"):
        start_model_server(tmp_path / "missing.tar.gz", timeout=20)


def test_sm_model_dir_env_is_the_default_model(artifact: Path) -> None:
    proc, url = start_model_server(None, env={"SM_MODEL_DIR": str(artifact.parent / "model")})
    try:
        check_answer(classify(url, real_jpeg()))
    finally:
        stop_model_server(proc)


def test_serve_module_imports_no_heavy_library_before_listening() -> None:
    code = "import sys, serving.server; print(sorted(m for m in ('numpy', 'onnxruntime', 'PIL') if m in sys.modules))"
    out = subprocess.run(
        [__import__("sys").executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]"
