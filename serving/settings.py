"""Server settings: command-line flags over environment variables over SageMaker's defaults."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080
DEFAULT_MAX_REQUEST_BYTES = 6 * 1024 * 1024
# Idle threads of the multi-threaded ONNX Runtime session busy-wait this long for the next task: long
# enough to keep one inference's operators flowing, short enough not to take the CPU from the
# processes around the server between requests.
DEFAULT_SPIN_US = 1000
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
    log_requests: bool = True


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"serve: environment variable {name}={raw!r} is not an integer") from None


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
        "--no-request-log",
        action="store_true",
        default=env.get("LOG_REQUESTS", "1") == "0",
        help="do not log one line per request (env LOG_REQUESTS=0)",
    )
    args = p.parse_args(argv)
    for name in ("port", "max_request_bytes", "threads", "max_concurrency", "spin_us"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.max_request_bytes == 0:
        p.error("--max-request-bytes must be > 0")
    return Settings(
        model=args.model,
        host=args.host,
        port=args.port,
        max_request_bytes=args.max_request_bytes,
        threads=args.threads,
        max_concurrency=args.max_concurrency,
        spin_us=args.spin_us,
        model_version=args.model_version,
        log_requests=not args.no_request_log,
    )
