"""Model server for SageMaker hosting: GET /ping and POST /invocations on port 8080, served by Granian.

Granian (a maintained HTTP server on Rust's hyper) parses HTTP, caps the connections served at once
(the rest wait in a 1024-deep listen backlog), cuts off a client whose headers do not arrive within
the header timeout, and on SIGTERM stops accepting, lets answers in progress go out and exits 0.
The application (serving/app.py) runs in its worker process; this process only supervises it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from typing import TYPE_CHECKING

from serving.accesslog import LineLog
from serving.app import SETTINGS_ENV
from serving.settings import BACKLOG, Settings, parse_settings

if TYPE_CHECKING:
    from granian.server import MPServer, MTServer

GRACEFUL_SECONDS = 30  # SIGTERM: answers in progress get this long, then the worker is killed


def resolve_port(settings: Settings) -> int:
    """The port to bind: the one asked for, or for 0 one the kernel says is free now."""
    if settings.port:
        return settings.port
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((settings.host, 0))
        return int(probe.getsockname()[1])


def unpacked_model(settings: Settings) -> str:
    """The model folder, a model.tar.gz extracted to a temporary one; raises when there is no model, or
    when it is not the registered one (MODEL_SHA256)."""
    from serving.artifact import open_artifact

    workdir = None
    if os.path.isfile(settings.model):
        workdir = tempfile.mkdtemp(prefix="model-")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    artifact = open_artifact(settings.model, workdir)
    if settings.model_sha256:
        artifact.verify(settings.model_sha256)
    return str(artifact.root)


def build_server(settings: Settings, port: int) -> MPServer | MTServer:
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.server import Server

    return Server(
        "serving.app:app",
        address=settings.host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        runtime_threads=1,
        loop=Loops.asyncio,
        http=HTTPModes.http1,
        websockets=False,
        backlog=BACKLOG,
        backpressure=settings.max_connections,
        http1_settings=HTTP1Settings(header_read_timeout=max(1, round(settings.header_timeout * 1000))),
        log_enabled=False,  # this server's own JSON lines say what happens
        workers_kill_timeout=GRACEFUL_SECONDS,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point (`serve`, or `python -m serving.server`): listen, load the model, serve until SIGTERM."""
    settings = parse_settings(argv)
    log = LineLog(enabled=settings.log_requests)
    try:
        model_dir = unpacked_model(settings)
        port = resolve_port(settings)
        server = build_server(settings, port)
    except (OSError, RuntimeError) as exc:
        log.event(event="error", error=f"cannot load the model from {settings.model}: {exc}")
        log.close()
        return 1
    worker_settings = Settings(**{**settings.__dict__, "model": model_dir, "port": port})
    os.environ[SETTINGS_ENV] = worker_settings.to_json()

    @server.on_startup
    def listening() -> None:  # the socket is bound; the worker starts next
        log.event(event="listening", host=settings.host, port=port, pid=os.getpid(), server="granian")

    code = 0
    try:
        server.serve()
    except SystemExit as exc:  # the worker exited by itself (a model that cannot load)
        code = exc.code if isinstance(exc.code, int) else 1
    except OSError as exc:
        log.event(event="error", error=f"cannot listen on {settings.host}:{port}: {exc}")
        code = 1
    log.event(event="stopped", code=code)
    log.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
