"""Server settings: command-line flags over environment variables over SageMaker's defaults."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
from dataclasses import dataclass

from serving.cpuload import cpu_count

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080
DEFAULT_MAX_REQUEST_BYTES = 6 * 1024 * 1024
# Idle threads of the multi-threaded ONNX Runtime session busy-wait this long for the next task: long
# enough to keep one inference's operators flowing, short enough not to take the CPU from the
# processes around the server between requests.
DEFAULT_SPIN_US = 1000
# Connections served at once; more wait in the listen backlog (BACKLOG) until one closes.
DEFAULT_MAX_CONNECTIONS = 128
BACKLOG = 1024
# A request's headers must arrive within HEADER_TIMEOUT seconds of its first byte, then its whole body
# within BODY_TIMEOUT: a client dripping bytes is cut off, and a request is read within 40 s of the
# 60 s SageMaker gives an invocation.
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
MAX_HEADER_TIMEOUT = 60.0  # the HTTP server's ceiling
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a container's server must be reachable from outside it


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL_DIR
    host: str = ALL_INTERFACES
    port: int = DEFAULT_PORT
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    threads: int = 0
    max_concurrency: int = 0
    spin_us: int = DEFAULT_SPIN_US
    model_version: str | None = None
    model_sha256: str | None = None  # the artifact's registered content SHA-256: the server refuses another
    log_requests: bool = True
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))

    def compute_threads(self) -> int:
        """Threads that run inferences: as many as requests may compute at once (the rest queue)."""
        return self.max_concurrency or cpu_count()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"serve: environment variable {name}={raw!r} is not an integer") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"serve: environment variable {name}={raw!r} is not a number") from None


def parse_settings(argv: list[str] | None = None) -> Settings:
    """Settings from the command line (`serve [--model PATH] [--port N] ...`) and the environment."""
    env = os.environ
    port = _env_int("SAGEMAKER_BIND_TO_PORT", _env_int("PORT", DEFAULT_PORT))
    p = argparse.ArgumentParser(prog="serve", description="Cat/dog model server (SageMaker hosting contract).")
    p.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve"],
        help="SageMaker starts the container with 'serve'",
    )
    p.add_argument(
        "--model",
        default=env.get("SM_MODEL_DIR") or DEFAULT_MODEL_DIR,
        help="model folder or model.tar.gz (env SM_MODEL_DIR; default %(default)s)",
    )
    p.add_argument("--host", default=env.get("HOST") or ALL_INTERFACES, help="address to bind (env HOST)")
    p.add_argument(
        "--port",
        type=int,
        default=port,
        help="port (env SAGEMAKER_BIND_TO_PORT, then PORT; default 8080; 0 = any free port)",
    )
    p.add_argument(
        "--max-request-bytes",
        type=int,
        default=_env_int("MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES),
        help="largest request body accepted (env MAX_REQUEST_BYTES; default 6 MiB)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=_env_int("ORT_THREADS", 0),
        help="ONNX Runtime threads for a request running alone (env ORT_THREADS; 0 = all CPUs)",
    )
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=_env_int("MAX_CONCURRENCY", 0),
        help="requests computed at once, the rest queue (env MAX_CONCURRENCY; 0 = CPUs)",
    )
    p.add_argument(
        "--spin-us",
        type=int,
        default=_env_int("ORT_SPIN_US", DEFAULT_SPIN_US),
        help="how long idle ONNX Runtime threads spin for work, in microseconds (env ORT_SPIN_US; 0 = never)",
    )
    p.add_argument(
        "--model-version",
        default=env.get("MODEL_VERSION") or None,
        help="model_version reported in answers (env MODEL_VERSION; default metadata version)",
    )
    p.add_argument(
        "--model-sha256",
        default=env.get("MODEL_SHA256") or None,
        help="refuse to serve unless the model's content SHA-256 is this, as registered (env MODEL_SHA256)",
    )
    p.add_argument(
        "--no-request-log",
        action="store_true",
        default=env.get("LOG_REQUESTS", "1") == "0",
        help="do not log one line per request (env LOG_REQUESTS=0)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=_env_int("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS),
        help="connections served at once, the rest wait to be accepted (env MAX_CONNECTIONS; default %(default)s)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=_env_float("HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT),
        help="seconds for a request's headers to arrive (env HEADER_TIMEOUT; default %(default)s, at most 60)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=_env_float("BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT),
        help="seconds for a request's whole body to arrive after its headers (env BODY_TIMEOUT; default %(default)s)",
    )
    args = p.parse_args(argv)
    for name in ("port", "max_request_bytes", "threads", "max_concurrency", "spin_us"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    for name in ("max_request_bytes", "max_connections"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    if not 0.001 <= args.header_timeout <= MAX_HEADER_TIMEOUT:
        p.error(f"--header-timeout must be between 0.001 and {MAX_HEADER_TIMEOUT:g} seconds")
    if not args.body_timeout > 0:
        p.error("--body-timeout must be > 0")
    if args.model_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", args.model_sha256):
        p.error("--model-sha256 must be 64 lowercase hex digits (a SHA-256)")
    return Settings(
        model=args.model,
        host=args.host,
        port=args.port,
        max_request_bytes=args.max_request_bytes,
        threads=args.threads,
        max_concurrency=args.max_concurrency,
        spin_us=args.spin_us,
        model_version=args.model_version,
        model_sha256=args.model_sha256,
        log_requests=not args.no_request_log,
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
    )
