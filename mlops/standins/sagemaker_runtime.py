"""Local stand-in for the SageMaker runtime service in front of one model server.

boto3's sagemaker-runtime client (with AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME pointing here) sends
POST /endpoints/{EndpointName}/invocations; the stand-in forwards the body to the model server's
POST /invocations and answers as the runtime API does: the model's answer as is, a container's
refusal as 424 ModelError (so boto3 raises ModelError as against AWS), a model still loading as 429.
The production image serves only the container contract (/ping, /invocations); this lives here,
on the stand-ins' HTTP server (http_server.py): capped connections, header and body deadlines.
Run: python -m mlops.standins.sagemaker_runtime --model-url URL --port N [--watch-pid PID]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import threading
from typing import Any

import urllib3

from mlops.standins import http_server as standin

RUNTIME_PATH = re.compile(r"/endpoints/([^/]+)/invocations")
FORWARDED = ("Content-Type", "Accept")
MAX_PAYLOAD = 6 * 1024 * 1024  # InvokeEndpoint's request payload limit for a real-time endpoint
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


def answer(status: int, doc: dict[str, Any], headers: dict[str, str], close: bool = False) -> standin.Response:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return standin.Response(status, body, {"Content-Type": "application/json", **headers}, close)


class Server(standin.Server):
    """The stand-in, bound to 127.0.0.1:port, forwarding to the model server at model_url."""

    def __init__(self, port: int, model_url: str, limits: standin.Limits | None = None) -> None:
        self.model_url = model_url.rstrip("/")
        self.pool = urllib3.PoolManager(maxsize=64, block=False)
        super().__init__(self.handle, "127.0.0.1", port, limits)

    async def handle(self, req: standin.Request) -> standin.Response:
        path = req.path.split("?", 1)[0]
        if req.method in {"GET", "HEAD"}:
            return answer(200, {"status": "ok"}, {}) if path == "/ping" else answer(404, {}, {})
        if req.method != "POST" or not RUNTIME_PATH.fullmatch(path):
            unknown = {"x-amzn-ErrorType": "UnknownOperationException"}
            return answer(404, {"message": f"no such path {req.path[:200]!r}"}, unknown, close=True)
        if not req.header("content-length").isdigit():
            return answer(411, {"message": "Content-Length required"}, {}, close=True)
        try:
            body = await req.body(MAX_PAYLOAD, self.limits.body_timeout)
        except standin.BodyTooLargeError:
            message = f"Request payload is over the {MAX_PAYLOAD}-byte limit of InvokeEndpoint"
            return answer(413, {"message": message}, {"x-amzn-ErrorType": "ValidationError"}, close=True)
        except standin.BodyTimeoutError as exc:
            return answer(408, {"message": str(exc)}, {}, close=True)
        headers = {k: v for k in FORWARDED if (v := req.header(k.lower()))}
        try:
            resp = await asyncio.to_thread(
                self.pool.request,
                "POST",
                self.model_url + "/invocations",
                body=body,
                headers=headers,
                timeout=MODEL_TIMEOUT,
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            return answer(424, {"message": f"model server unreachable: {exc}"}, {"x-amzn-ErrorType": "ModelError"})
        try:
            doc = json.loads(resp.data)
        except ValueError:
            doc = {"error": resp.data.decode("utf-8", "replace")[:500]}
        return answer(*runtime_answer(resp.status, doc))


def endpoint_url(model_url: str, model_pid: int) -> str:
    """AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME for the model server at model_url: a stand-in started for it
    (or the one already running), which exits when the model server does."""
    from mlops import config
    from mlops.standins import processes as procs

    state_path = config.state_dir() / "local" / "sagemaker-runtime.json"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    known = state.get(model_url) or {}
    if procs.alive(known.get("pid")) and procs.healthy(known["url"] + "/ping"):
        return str(known["url"])
    taken = {s.get("port") for s in state.values()}
    port = procs.free_port(int(os.environ.get("SAGEMAKER_RUNTIME_PORT") or 8600), taken)
    name = f"sagemaker-runtime-{port}"
    args = ["-m", "mlops.standins.sagemaker_runtime", "--model-url", model_url, "--port", str(port)]
    proc = procs.spawn(name, [*args, "--watch-pid", str(model_pid)])
    url = f"http://{procs.HOST}:{port}"
    procs.wait_healthy(name, proc.pid, url + "/ping", timeout=20)
    state = {k: v for k, v in state.items() if procs.alive(v.get("pid"))}
    state[model_url] = {"pid": proc.pid, "port": port, "url": url}
    state_path.write_text(json.dumps(state, indent=2) + "\n")
    return url


def _exit_with(pid: int, server: Server) -> None:
    from mlops.standins.processes import alive

    while alive(pid):
        threading.Event().wait(0.5)
    server.shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sagemaker_runtime", description=__doc__.splitlines()[0])
    p.add_argument("--model-url", required=True, help="the model server, e.g. http://127.0.0.1:8080")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--watch-pid", type=int, help="exit when this process (the model server) exits")
    standin.Limits.add_arguments(p)
    args = p.parse_args(argv)
    try:
        server = Server(args.port, args.model_url, standin.Limits.from_args(args))
    except OSError as exc:
        print(f"sagemaker runtime: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 1
    if args.watch_pid:
        threading.Thread(target=_exit_with, args=(args.watch_pid, server), daemon=True).start()
    print(f"sagemaker runtime on 127.0.0.1:{server.server_address[1]} -> {args.model_url}", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
