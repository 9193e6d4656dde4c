"""Test helpers: real photos, a small serving artifact, and the model server as a subprocess."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import inputs

REPO = Path(__file__).resolve().parents[1]
LABELS = ("cat", "dog")
VERSION = "test-run-1"  # the version build_artifact writes into metadata.json


def data_dir() -> Path:
    """The cats-vs-dogs photos (tests/inputs.py)."""
    root = inputs.data_dir()
    if not (root / "test").is_dir():
        raise FileNotFoundError(f"no cats-vs-dogs photos at {root} (set DATA_DIR)")
    return root


def weights_file() -> Path:
    """ImageNet MobileNetV2 weights (tests/inputs.py)."""
    path = inputs.weights_file()
    if not path.is_file():
        raise FileNotFoundError(f"no pretrained weights at {path} (set PRETRAINED_WEIGHTS)")
    return path


def photos(label: str, split: str = "test", count: int = 5, start: int = 0) -> list[Path]:
    """`count` photos of `label` from `split`, in a fixed order."""
    files = sorted((data_dir() / split / label).glob("*.jpg"))
    return files[start : start + count]


def shared_artifact(factory: object) -> Path:
    """build_artifact's model.tar.gz, built once per test session and read by every xdist worker."""
    from session_share import built_once

    return built_once(factory, "serving-artifact", build_artifact)  # type: ignore[arg-type]


def build_artifact(dest: Path, per_class: int = 20) -> Path:
    """Build (once) a serving artifact under dest and return its model.tar.gz.

    MobileNetV2 with ImageNet features and a logistic-regression head fitted on `per_class`
    training photos per label (a linear probe: seconds, yet it tells cats from dogs), exported
    by the training code (training.export.write_artifact), packed as SageMaker packs it.
    """
    tar_path = dest / "model.tar.gz"
    if tar_path.is_file():
        return tar_path
    import numpy as np
    import torch

    from serving.preprocess import Preprocessing, preprocess_bytes
    from training.export import write_artifact
    from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model
    from training.model_tar import pack_model_dir

    torch.manual_seed(0)
    prep = Preprocessing(128, 146, IMAGENET_MEAN, IMAGENET_STD)
    model = build_model(len(LABELS), weights_path=weights_file(), pretrained=True).eval()
    samples = [(p, i) for i, label in enumerate(LABELS) for p in photos(label, "train", per_class)]
    arrays = [preprocess_bytes(p.read_bytes(), prep) for p, _ in samples]
    x = torch.from_numpy(np.stack(arrays))
    y = torch.tensor([i for _, i in samples])
    with torch.no_grad():
        feats = torch.nn.functional.adaptive_avg_pool2d(model.features(x), 1).flatten(1)
    head = model.classifier[1]
    opt = torch.optim.LBFGS(head.parameters(), max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(feats), y) + 1e-3 * head.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    model_dir = dest / "model"
    write_artifact(
        model=model,
        model_dir=model_dir,
        prep=prep,
        labels=list(LABELS),
        version=VERSION,
        metrics={"accuracy": 0.0},
    )
    return pack_model_dir(model_dir, tar_path)


def _read_port(log_path: Path) -> int | None:
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("event") == "listening":
            return int(doc["port"])
    return None


def server_log(proc: subprocess.Popen) -> str:
    """Everything the server wrote to stderr so far."""
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def start_model_server(
    artifact_path: str | Path | None,
    port: int | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 30.0,
) -> tuple[subprocess.Popen, str]:
    """Start `python -m serving.server` on 127.0.0.1 and wait until GET /ping answers 200.

    artifact_path is a model folder or model.tar.gz (None: the server's default, SM_MODEL_DIR).
    port None picks a free port (the server reports it). Returns (process, base URL); the
    process's stderr goes to a file, read with server_log(proc). Stop it with stop_model_server.
    """
    log = tempfile.NamedTemporaryFile(prefix="model-server-", suffix=".log", delete=False)  # noqa: SIM115
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    model = ["--model", str(artifact_path)] if artifact_path is not None else []
    cmd = [sys.executable, "-m", "serving.server", "serve", *model, "--host", "127.0.0.1", "--port", str(port or 0)]
    cmd += args
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
    )
    log.close()
    proc.log_path = log.name  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"model server exited with {proc.returncode}:\n{server_log(proc)}")
        if url is None and (bound := _read_port(Path(log.name))):
            url = f"http://127.0.0.1:{bound}"
        if url is not None:
            try:
                with urllib.request.urlopen(url + "/ping", timeout=2) as resp:
                    if resp.status == 200:
                        return proc, url
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.05)
    stop_model_server(proc)
    raise RuntimeError(f"model server not ready within {timeout}s:\n{server_log(proc)}")


def stop_model_server(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM the server, wait for it (SIGKILL after `timeout`), return its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextmanager
def model_server(artifact_path: str | Path, **kwargs) -> Iterator[str]:
    """`with model_server(path) as url:` — start_model_server, then stop it on exit."""
    proc, url = start_model_server(artifact_path, **kwargs)
    try:
        yield url
    finally:
        stop_model_server(proc)
        Path(proc.log_path).unlink(missing_ok=True)  # type: ignore[attr-defined]


def request(
    url: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request (on `conn` when given, else a fresh connection): status, lower-cased headers, body."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port, timeout=30)
    try:
        conn.request(method, path, body=body if method in ("POST", "PUT") else None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        if own:
            conn.close()


def raw_request(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and parse the answer."""
    with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=30) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before reading all
            sock.sendall(data)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def classify(url: str, body: bytes, content_type: str = "image/jpeg", path: str = "/invocations") -> dict:
    """POST an image to the model server and return its 200 JSON answer."""
    status, headers, payload = request(url, "POST", path, body, {"Content-Type": content_type})
    assert status == 200, payload
    assert headers["content-type"] == "application/json"
    return json.loads(payload)


def check_answer(doc: dict, version: str = VERSION) -> None:
    """Assert the answer schema: label, confidence, scores over LABELS summing to 1, model_version."""
    assert set(doc) == {"label", "confidence", "scores", "model_version"}
    assert set(doc["scores"]) == set(LABELS)
    assert abs(sum(doc["scores"].values()) - 1.0) < 1e-4
    assert doc["label"] == max(doc["scores"], key=doc["scores"].get)
    assert doc["confidence"] == doc["scores"][doc["label"]]
    assert doc["model_version"] == version
