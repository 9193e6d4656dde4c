"""Settings of the aws backend (environment, then Terraform outputs, then Terraform naming) and its clients."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mlops.backends.base import BackendError
from mlops.config import REPO_ROOT

STAGES = ("staging", "production")
MODES = ("serverless", "instance")
DEFAULT_REGION = "eu-west-1"
# Every client: three attempts with the standard retry mode, bounded connect and read timeouts
# (the read timeout covers a synchronous Lambda invocation of the API function, 15 s at most).
BOTO_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=70)


def infra_outputs(stage: str, env: Mapping[str, str]) -> dict[str, Any]:
    """`terraform output -json` of the stage (make infra-outputs), as name -> value; {} when absent."""
    folder = Path(env.get("MLOPS_INFRA_OUTPUTS_DIR") or "build/infra")
    candidates = [folder / f"{stage}.json"]
    if not folder.is_absolute():
        candidates.append(REPO_ROOT / folder / f"{stage}.json")
    for path in candidates:
        if path.is_file():
            try:
                raw = json.loads(path.read_text())
            except ValueError:
                raise BackendError(f"{path} is not valid JSON: run make infra-outputs ENV={stage}") from None
            outputs = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in raw.items()}
            if outputs.get("environment") not in (None, stage):
                raise BackendError(f"{path} holds the outputs of {outputs['environment']}, not {stage}")
            return outputs
    return {}


class _Settings:
    """An environment variable, else the Terraform output of the same name in lower case."""

    def __init__(self, env: Mapping[str, str], outputs: Mapping[str, Any]) -> None:
        self.env, self.outputs = env, outputs

    def text(self, name: str, default: str = "") -> str:
        value = self.env.get(name) or self.outputs.get(name.lower())
        if isinstance(value, list):
            return json.dumps(value)
        return str(value) if value not in (None, "") else default

    def int(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name).strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BackendError(f"{name}={raw!r} is not an integer") from None
        if not low <= value <= high:
            raise BackendError(f"{name}={value} is outside {low}..{high}")
        return value


def _names(raw: str) -> tuple[str, ...]:
    """A JSON list (as `terraform output -json` prints it) or comma-separated names."""
    raw = raw.strip()
    if raw.startswith("["):
        try:
            return tuple(str(n) for n in json.loads(raw))
        except ValueError:
            raise BackendError(f"cannot parse the alarm name list {raw!r}") from None
    return tuple(n.strip() for n in raw.split(",") if n.strip())


@dataclass(frozen=True)
class AwsConfig:
    """Names and knobs of one environment; see docs/deploy-aws.md, "aws backend settings"."""

    stage: str
    region: str
    prefix: str
    model_package_group: str
    signing_key: str  # the KMS key only the pipeline's registration signs with (infra/bootstrap/signing.tf)
    endpoint_name: str
    variant_name: str
    function_name: str
    function_alias: str
    rest_api_id: str
    rest_api_name: str
    stage_name: str
    release_table: str
    alarm_names: tuple[str, ...]
    release_alarm_names: tuple[str, ...]
    auto_rollback: bool
    role_arn: str
    inference_role_arn: str
    endpoint_mode: str
    memory_mb: int
    max_concurrency: int
    instance_type: str
    instance_count: int
    bake_seconds: int
    termination_wait_seconds: int
    max_execution_seconds: int
    endpoint_wait_seconds: int
    poll_seconds: float
    lock_ttl_seconds: int
    lock_wait_seconds: int
    release_bake_seconds: int
    metric_delay_seconds: int
    api_url: str
    api_key_id: str
    artifact_bucket: str

    @classmethod
    def from_env(cls, stage: str, env: Mapping[str, str] | None = None) -> AwsConfig:
        env = os.environ if env is None else env
        if stage not in STAGES:
            raise BackendError(f"unknown aws stage {stage!r}: choose one of {', '.join(STAGES)}")
        outputs = infra_outputs(stage, env)
        get = _Settings(env, outputs)
        project = env.get("MLOPS_PROJECT") or "catdog"
        prefix = f"{project}-{stage}"
        registry_prefix = f"{project}-{env.get('REGISTRY_ENVIRONMENT') or stage}"
        mode = get.text("ENDPOINT_MODE", "serverless").lower()
        if mode not in MODES:
            raise BackendError(f"ENDPOINT_MODE={mode!r}: choose one of {', '.join(MODES)}")
        alarms = _names(get.text("ENDPOINT_ALARM_NAMES")) or tuple(
            f"{prefix}-{k}"
            for k in ("endpoint-5xx", "endpoint-latency")  # never client errors (infra/alarms.tf)
        )
        release_alarms = _names(get.text("RELEASE_ALARM_NAMES")) or tuple(
            f"{prefix}-{k}" for k in ("lambda-errors", "lambda-throttles", "lambda-duration", "api-5xx")
        )
        bake = get.int("ENDPOINT_BAKE_SECONDS", 300 if mode == "instance" else 0, 0, 3600)
        termination = get.int("ENDPOINT_TERMINATION_WAIT_SECONDS", 0, 0, 3600)
        max_execution = get.int("ENDPOINT_MAX_EXECUTION_SECONDS", 1800, 600, 28800)
        if max_execution <= bake + termination:
            raise BackendError("ENDPOINT_MAX_EXECUTION_SECONDS must exceed the bake and termination waits together")
        try:
            poll = float(get.text("ENDPOINT_POLL_SECONDS", "15"))
        except ValueError:
            raise BackendError("ENDPOINT_POLL_SECONDS is not a number") from None
        region = env.get("AWS_REGION") or outputs.get("aws_region") or env.get("AWS_DEFAULT_REGION")
        group = get.text("MODEL_PACKAGE_GROUP_NAME", f"{registry_prefix}-models")
        return cls(
            stage=stage,
            region=str(region or DEFAULT_REGION),
            prefix=prefix,
            model_package_group=group,
            # The registry's key, named as its group is (production verifies what staging's pipeline signed).
            signing_key=get.text(
                "REGISTRATION_SIGNING_KEY", f"alias/{group.removesuffix('-models')}-registration-signing"
            ),
            endpoint_name=get.text("ENDPOINT_NAME", f"{prefix}-classifier"),
            variant_name=get.text("ENDPOINT_VARIANT_NAME", "AllTraffic"),
            function_name=get.text("FUNCTION_NAME", f"{prefix}-classify-api"),
            function_alias=get.text("FUNCTION_ALIAS", "live"),
            rest_api_id=get.text("REST_API_ID"),
            rest_api_name=get.text("REST_API_NAME", f"{prefix}-api"),
            stage_name=get.text("STAGE_NAME", stage),
            release_table=get.text("RELEASE_TABLE", f"{prefix}-releases"),
            alarm_names=alarms,
            release_alarm_names=release_alarms,
            auto_rollback=get.text("ENDPOINT_AUTO_ROLLBACK", "true").lower() not in ("0", "false", "no"),
            role_arn=get.text("SAGEMAKER_ROLE_ARN"),
            inference_role_arn=get.text("INFERENCE_ROLE_ARN"),
            endpoint_mode=mode,
            memory_mb=get.int("ENDPOINT_MEMORY_MB", 2048, 1024, 6144),
            max_concurrency=get.int("ENDPOINT_MAX_CONCURRENCY", 5, 1, 200),
            instance_type=get.text("ENDPOINT_INSTANCE_TYPE", "ml.c6i.large"),
            instance_count=get.int("ENDPOINT_INSTANCE_COUNT", 1, 1, 100),
            bake_seconds=bake,
            termination_wait_seconds=termination,
            max_execution_seconds=max_execution,
            endpoint_wait_seconds=get.int("ENDPOINT_WAIT_SECONDS", 3600, 1, 28800),
            poll_seconds=max(0.0, poll),
            lock_ttl_seconds=get.int("LOCK_TTL_SECONDS", 120, 10, 86400),
            lock_wait_seconds=get.int("LOCK_WAIT_SECONDS", 1800, 0, 86400),
            release_bake_seconds=get.int("RELEASE_BAKE_SECONDS", 600 if stage == "production" else 300, 0, 86400),
            metric_delay_seconds=get.int("METRIC_DELAY_SECONDS", 180, 0, 3600),
            api_url=get.text("API_URL").rstrip("/"),
            api_key_id=get.text("API_KEY_ID"),
            artifact_bucket=get.text("ARTIFACT_BUCKET"),
        )


class AwsClients:
    """boto3 clients created on first use and shared; tests may put their own in place with `set`."""

    def __init__(self, region: str, session: boto3.Session | None = None) -> None:
        self.region = region
        self._session = session
        self._clients: dict[str, Any] = {}

    def get(self, service: str) -> Any:
        if service not in self._clients:
            self._session = self._session or boto3.Session(region_name=self.region)
            self._clients[service] = self._session.client(service, region_name=self.region, config=BOTO_CONFIG)
        return self._clients[service]

    def set(self, service: str, client: Any) -> None:
        self._clients[service] = client

    def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()


def error_code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


@contextlib.contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Turn a botocore failure into a one-line BackendError naming what was being done."""
    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise BackendError(f"{what}: {err.get('Code', 'error')}: {err.get('Message', str(exc))}") from exc
    except BotoCoreError as exc:
        raise BackendError(f"{what}: {exc}") from exc


def resource_name(*parts: str, limit: int = 63) -> str:
    """A SageMaker resource name ([a-zA-Z0-9-], at most 63 characters) from its parts."""
    raw = "-".join(p for p in parts if p)
    clean = "".join(c if c.isalnum() else "-" for c in raw).strip("-")
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(clean.encode()).hexdigest()[:8]
    return f"{clean[: limit - 9].rstrip('-')}-{digest}"
