"""The Lambda package stays small: Powertools + X-Ray from the lock (with hashes), never torch/numpy/Pillow/pydantic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from lambda_support import REPO

TESTS = str(Path(__file__).resolve().parents[1])  # the helpers beside the tier folders
REQUIREMENTS = REPO / "lambda" / "requirements.txt"
HEAVY = ("torch", "torchvision", "numpy", "onnx", "onnxruntime", "pillow", "pil", "pydantic", "scipy", "pandas")
# What the handler may import beyond the standard library: its requirements and what they pull in,
# plus what the Lambda Python runtime ships (boto3 and friends).
ALLOWED_MODULES = {
    "classify_api",
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "wrapt",
    "jmespath",
    "typing_extensions",
    "boto3",
    "botocore",
    "s3transfer",
    "urllib3",
    "dateutil",
    "six",
    "certifi",  # optional in botocore
}


def test_requirements_are_the_lambda_extra_from_the_lock() -> None:
    """Generated from uv.lock: the extra's two packages and what they need, exact pins with hashes, nothing heavy."""
    from lock_support import lock_packages, normalize, read_requirements

    pins = read_requirements(REQUIREMENTS)
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["lambda"]
    direct = {normalize(name): version for name, version in (pin.split("==") for pin in extra)}
    assert direct == {"aws-lambda-powertools": "3.37.0", "aws-xray-sdk": "2.15.0"}
    assert {name: pins[name].version for name in direct} == direct
    locked = lock_packages()
    for name, pin in pins.items():
        assert name not in HEAVY, name
        assert pin.version == locked[name]["version"], name
        assert pin.hashes, f"{name} has no hash"
    # The Lambda runtime's own packages come only as dependencies (the zip builder leaves them out).
    assert "typer" not in pins and "rich" not in pins and "filelock" not in pins


BLOCKER = r"""
import importlib.abc, json, sys
BLOCKED = set(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].lower() in BLOCKED:
            raise ImportError(f"{name} must not be imported by the Lambda package")
        return None

sys.meta_path.insert(0, Block())
before = set(sys.modules)
from classify_api import endpoint, handler
new = {m.split(".")[0] for m in set(sys.modules) - before}
sys.path.insert(0, sys.argv[2])
from lambda_support import FakeContext, FakeRuntimeClient, make_event

endpoint.set_client(FakeRuntimeClient())
jpeg = bytes.fromhex(sys.argv[3])
event = make_event(body=jpeg, headers={"Content-Type": "image/jpeg"}, is_base64=True)
predict = handler.lambda_handler(event, FakeContext())
health = handler.lambda_handler(make_event("GET", "/health"), FakeContext())
new |= {m.split(".")[0] for m in set(sys.modules) - before} - {"lambda_support"}
third_party = sorted(m for m in new if m not in sys.stdlib_module_names and not m.startswith("_"))
sys.stdout.flush()
print("RESULT " + json.dumps({"predict": predict["statusCode"], "health": health["statusCode"],
                              "body": predict["body"], "modules": third_party, "tracing": not handler.tracer.disabled}))
"""


def run_isolated(extra_env: dict[str, str]) -> dict:
    from lambda_support import image_bytes

    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_", "LAMBDA_"))}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "ENDPOINT_NAME": "catdog-test", **extra_env})
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    # The helper module is imported after the check; Pillow only builds the test photo up here.
    args = [sys.executable, "-c", BLOCKER, ",".join(HEAVY), TESTS, image_bytes().hex()]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def check(result: dict) -> None:
    assert result["predict"] == 200, result["body"]
    assert result["health"] == 200
    assert set(result["modules"]) <= ALLOWED_MODULES, set(result["modules"]) - ALLOWED_MODULES


def test_handler_runs_without_heavy_packages_tracing_disabled() -> None:
    result = run_isolated({"POWERTOOLS_TRACE_DISABLED": "true"})
    check(result)
    assert result["tracing"] is False


def test_handler_runs_with_tracing_on_and_no_xray_daemon() -> None:
    """As inside Lambda (LAMBDA_TASK_ROOT set) but with no daemon listening: must still answer."""
    result = run_isolated({"LAMBDA_TASK_ROOT": "/var/task"})
    check(result)
    assert result["tracing"] is True
