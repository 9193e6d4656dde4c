"""Local stand-in for the SageMaker runtime service in front of one model server.

boto3's sagemaker-runtime client (with AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME pointing here) sends
POST /endpoints/{EndpointName}/invocations; the stand-in forwards the body to the model server's
POST /invocations and answers as the runtime API does: the model's answer as is, a container's
refusal as 424 ModelError (so boto3 raises ModelError as against AWS), a model still loading as 429.
The production image serves only the container contract (/ping, /invocations); this lives here.
Run: python -m mlops.local.sagemaker_runtime --model-url URL --port N [--watch-pid PID]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import urllib3

RUNTIME_PATH = re.compile(r"/endpoints/([^/]+)/invocations")
FORWARDED = ("Content-Type", "Accept")
MODEL_TIMEOUT = urllib3.Timeout(connect=5.0, read=60.0)  # SageMaker gives a container 60 s to answer


def runtime_answer(status: int, doc: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Wrap a model server's answer as the SageMaker runtime API does."""
    if status == 200:
        return 200, doc, {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
    if status == 503:
        return 429, {"message": doc.get("error", "model is loading")}, {"x-amzn-ErrorType": "ModelNotReadyException"}
    original = json.dumps(doc, separators=(",", ":"))
    side = "client" if status < 500 else "server"
    message = f'Received {side} error ({status}) from primary with message "{original}".'
    body = {"message": message, "OriginalStatusCode": status, "OriginalMessage": original}
    return 424, body, {"x-amzn-ErrorType": "ModelError"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30.0
    server: Server

    def do_POST(self) -> None:
        if not RUNTIME_PATH.fullmatch(self.path.split("?", 1)[0]):
            return self.answer(
                404, {"message": f"no such path {self.path[:200]!r}"}, {"x-amzn-ErrorType": "UnknownOperationException"}
            )
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            return self.answer(411, {"message": "Content-Length required"}, {})
        body = self.rfile.read(int(length))
        headers = {k: v for k in FORWARDED if (v := self.headers.get(k))}
        try:
            resp = self.server.pool.request(
                "POST",
                self.server.model_url + "/invocations",
                body=body,
                headers=headers,
                timeout=MODEL_TIMEOUT,
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            return self.answer(424, {"message": f"model server unreachable: {exc}"}, {"x-amzn-ErrorType": "ModelError"})
        try:
            doc = json.loads(resp.data)
        except ValueError:
            doc = {"error": resp.data.decode("utf-8", "replace")[:500]}
        self.answer(*runtime_answer(resp.status, doc))

    def do_GET(self) -> None:
        self.answer(200 if self.path == "/ping" else 404, {"status": "ok"} if self.path == "/ping" else {}, {})

    def answer(self, status: int, doc: dict[str, Any], headers: dict[str, str]) -> None:
        body = json.dumps(doc, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the model server logs every invocation."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a class attribute: listen() reads it when the server binds

    def __init__(self, port: int, model_url: str) -> None:
        self.model_url = model_url.rstrip("/")
        self.pool = urllib3.PoolManager(maxsize=64, block=False)
        super().__init__(("127.0.0.1", port), Handler)


def endpoint_url(model_url: str, model_pid: int) -> str:
    """AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME for the model server at model_url: a stand-in started for it
    (or the one already running), which exits when the model server does."""
    from mlops import config
    from mlops.local import processes as procs

    state_path = config.state_dir() / "local" / "sagemaker-runtime.json"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    known = state.get(model_url) or {}
    if procs.alive(known.get("pid")) and procs.healthy(known["url"] + "/ping"):
        return known["url"]
    taken = {s.get("port") for s in state.values()}
    port = procs.free_port(int(os.environ.get("SAGEMAKER_RUNTIME_PORT") or 8600), taken)
    name = f"sagemaker-runtime-{port}"
    args = ["-m", "mlops.local.sagemaker_runtime", "--model-url", model_url, "--port", str(port)]
    proc = procs.spawn(name, [*args, "--watch-pid", str(model_pid)])
    url = f"http://{procs.HOST}:{port}"
    procs.wait_healthy(name, proc.pid, url + "/ping", timeout=20)
    state = {k: v for k, v in state.items() if procs.alive(v.get("pid"))}
    state[model_url] = {"pid": proc.pid, "port": port, "url": url}
    state_path.write_text(json.dumps(state, indent=2) + "\n")
    return url


def _exit_with(pid: int, server: Server) -> None:
    from mlops.local.processes import alive

    while alive(pid):
        threading.Event().wait(0.5)
    server.shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sagemaker_runtime", description=__doc__.splitlines()[0])
    p.add_argument("--model-url", required=True, help="the model server, e.g. http://127.0.0.1:8080")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--watch-pid", type=int, help="exit when this process (the model server) exits")
    args = p.parse_args(argv)
    try:
        server = Server(args.port, args.model_url)
    except OSError as exc:
        print(f"sagemaker runtime: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 1
    if args.watch_pid:
        threading.Thread(target=_exit_with, args=(args.watch_pid, server), daemon=True).start()
    print(f"sagemaker runtime on 127.0.0.1:{server.server_address[1]} -> {args.model_url}", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
