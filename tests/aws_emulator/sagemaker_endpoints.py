"""SageMaker hosting for the emulator: endpoints that provision a real model server, blue/green updates.

How SageMaker behaves, and what is reproduced here:
- CreateEndpoint answers at once with the endpoint `Creating`; SageMaker then provisions the
  config's model (pulls model.tar.gz, starts the container, waits for GET /ping) and the endpoint
  becomes `InService`, or `Failed` with a FailureReason when the model does not start.
- UpdateEndpoint (moto 5.2.5 lacks it) needs an endpoint that is InService; it goes `Updating`
  while the new config's fleet is provisioned, traffic keeps going to the old fleet; with a
  blue/green policy, traffic shifts to the new fleet, which bakes for WaitIntervalInSeconds while the
  AutoRollbackConfiguration alarms are watched: an alarm in ALARM rolls back (`RollingBack`, then
  `InService` on the old config with a FailureReason). A fleet that cannot start also leaves the
  endpoint InService on the old config, with a FailureReason. Success: InService on the new config.
- InvokeEndpoint goes to the fleet of the endpoint's current config; a container error answers
  424 ModelError with the container's status and message.
- A fleet reads its model.tar.gz when it is provisioned: a fleet is keyed by the model and the S3
  object's ETag, so an object replaced behind the same URL is served by the next fleet provisioned
  (a new endpoint, or an update to a config), never by one started from the old bytes, while a
  fleet already serving keeps what it read.
Waits are real seconds multiplied by AWS_EMULATOR_TIME_SCALE (default 0.02).
"""

from __future__ import annotations

import json
import tarfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import sagemaker_backends

from aws_emulator import context, metrics
from aws_emulator.processes import PROCESSES, REPO, Proc, base_env, free_port, python, spawn

_fleets: dict[str, dict[str, tuple[str, Any]]] = {}  # endpoint ARN → {config: (process key, its start)}


def _backend(account: str, region: str) -> Any:
    return sagemaker_backends[account][region]


def _model_data(backend: Any, config_name: str) -> tuple[str, dict]:
    """(model name, primary container) of a config's first variant."""
    config = backend.endpoint_configs[config_name]
    model_name = config.production_variants[0]["ModelName"]
    model = backend._models.get(model_name)
    if model is None:
        raise RuntimeError(f"model {model_name} of endpoint config {config_name} does not exist")
    container = model.primary_container or (model.containers[0] if model.containers else {})
    return model_name, container


def _object(data_url: str) -> tuple[str, str]:
    bucket, _, object_key = data_url.removeprefix("s3://").partition("/")
    return bucket, object_key


def _start_model(container: dict, key: str, etag: str, s3: Any) -> Proc:
    emu = context.emulator()
    folder = emu.workdir / "models" / key.replace(":", "_").replace("/", "_")[-120:]
    folder.mkdir(parents=True, exist_ok=True)
    archive, data_url = folder / "model.tar.gz", container.get("ModelDataUrl", "")
    if not archive.is_file():
        bucket, object_key = _object(data_url)
        try:
            got = s3.get_object(Bucket=bucket, Key=object_key)
        except Exception as exc:
            raise RuntimeError(f"Failed to download model data from {data_url}: {exc}") from exc
        if got["ETag"].strip('"') != etag:
            raise RuntimeError(f"Failed to download model data from {data_url}: it changed while being read")
        archive.write_bytes(got["Body"].read())
    model_dir = folder / "model"
    if not model_dir.is_dir():
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
    port = free_port()
    env = base_env()
    env.update({str(k): str(v) for k, v in (container.get("Environment") or {}).items()})  # the container's
    code = getattr(emu, "code_root", REPO)  # the serving image's code: the checkout being rehearsed
    env.update(PYTHONPATH=str(code), SAGEMAKER_BIND_TO_PORT=str(port), SM_MODEL_DIR=str(model_dir))
    args = [python(), "-m", "serving.server", "serve", "--model", str(model_dir), "--host", "127.0.0.1"]
    args += ["--port", str(port)]
    return spawn(key, args, env, code, "/ping", port, folder / "server.log")


def provision(endpoint: Any, backend: Any, config_name: str) -> Proc:
    """A fleet for the config's model as its model data is now (the S3 object's ETag: a new object behind
    the same URL is a new fleet), remembered as what the endpoint serves while on that config."""
    model_name, container = _model_data(backend, config_name)
    bucket, object_key = _object(container.get("ModelDataUrl", ""))
    # SageMaker reads the model data as the model's execution role (its inference role).
    role = backend._models[model_name].execution_role_arn
    try:
        s3 = context.emulator().client_as(role, "sagemaker.amazonaws.com", "s3")
        etag = s3.head_object(Bucket=bucket, Key=object_key)["ETag"].strip('"')
    except Exception as exc:
        raise RuntimeError(f"Failed to download model data from {container.get('ModelDataUrl')}: {exc}") from exc
    key = f"model:{model_name}:{etag}"
    fleet = (key, lambda: _start_model(container, key, etag, s3))
    proc = PROCESSES.get(*fleet)
    _fleets.setdefault(endpoint.arn, {})[config_name] = fleet
    return proc


def serving(endpoint: Any, backend: Any) -> Proc:
    """The fleet of the endpoint's current config, with the model data it was provisioned with."""
    fleet = _fleets.get(endpoint.arn, {}).get(endpoint.endpoint_config_name)
    return PROCESSES.get(*fleet) if fleet else provision(endpoint, backend, endpoint.endpoint_config_name)


def _alarms_firing(account: str, region: str, names: list[str]) -> list[str]:
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[account][region].alarms
    return [n for n in names if n in alarms and alarms[n].state_value == "ALARM"]


def _provision(endpoint: Any, backend: Any, config_name: str) -> None:
    try:
        provision(endpoint, backend, config_name)
        endpoint.endpoint_status, endpoint.failure_reason = "InService", None
    except Exception as exc:
        endpoint.endpoint_status, endpoint.failure_reason = "Failed", str(exc)[:1024]
    endpoint.last_modified_time = utcnow()


def _update(endpoint: Any, backend: Any, account: str, region: str, config_name: str, deployment: dict) -> None:
    old = endpoint.endpoint_config_name
    try:
        provision(endpoint, backend, config_name)
    except Exception as exc:
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = f"Failed to update endpoint: the new fleet did not start: {str(exc)[:800]}"
        endpoint.last_modified_time = utcnow()
        return
    policy = deployment.get("BlueGreenUpdatePolicy", {})
    wait = float(policy.get("TrafficRoutingConfiguration", {}).get("WaitIntervalInSeconds", 0))
    alarms = [a["AlarmName"] for a in deployment.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
    endpoint.endpoint_config_name = config_name  # traffic shifts to the new fleet, which bakes
    deadline = time.monotonic() + context.scaled(wait)
    while True:
        firing = _alarms_firing(account, region, alarms)
        if firing:
            endpoint.endpoint_status = "RollingBack"
            time.sleep(context.scaled(30))
            endpoint.endpoint_config_name = old
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = f"Update rolled back: alarm(s) {', '.join(firing)} in ALARM during the bake"
            endpoint.last_modified_time = utcnow()
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    config = backend.endpoint_configs[config_name]
    endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
    endpoint.endpoint_status, endpoint.failure_reason = "InService", None
    endpoint.last_deployment_config = deployment
    endpoint.last_modified_time = utcnow()


def create_endpoint(self: Any) -> ActionResult:
    """Replaces SageMakerResponse.create_endpoint: Creating, then InService or Failed."""
    backend = self.sagemaker_backend
    config_name = self._get_param("EndpointConfigName")
    endpoint = backend.create_endpoint(
        endpoint_name=self._get_param("EndpointName"), endpoint_config_name=config_name, tags=self._get_param("Tags")
    )
    endpoint.endpoint_status = "Creating"
    _fleets.pop(endpoint.arn, None)  # a new endpoint of an old name provisions its own fleet
    threading.Thread(target=_provision, args=(endpoint, backend, config_name), daemon=True).start()
    return ActionResult({"EndpointArn": endpoint.arn})


def update_endpoint(self: Any) -> ActionResult:
    backend = self.sagemaker_backend
    name, config_name = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        raise ValidationError(f"Could not find endpoint '{name}'.")
    if config_name not in backend.endpoint_configs:
        raise ValidationError(f"Could not find endpoint configuration '{config_name}'.")
    if endpoint.endpoint_status != "InService":
        raise ValidationError(f"Cannot update in-progress endpoint '{endpoint.arn}'.")
    endpoint.endpoint_status, endpoint.failure_reason = "Updating", None
    endpoint.last_modified_time = utcnow()
    deployment = self._get_param("DeploymentConfig") or {}
    args = (endpoint, backend, self.current_account, self.region, config_name, deployment)
    threading.Thread(target=_update, args=args, daemon=True).start()
    return ActionResult({"EndpointArn": endpoint.arn})


def invoke_endpoint(self: Any) -> tuple[int, dict, bytes | str]:
    """Replaces SageMakerRuntimeResponse.invoke_endpoint: the request goes to the current fleet."""
    name = self.path.split("/")[2]
    backend = _backend(self.current_account, self.region)
    endpoint = backend.endpoints.get(name)
    if endpoint is None or endpoint.endpoint_status not in ("InService", "Updating", "RollingBack"):
        message = f"Endpoint {name} of account {self.current_account} not found."
        if endpoint is not None:
            message = f"Endpoint {name} is {endpoint.endpoint_status}: it cannot be invoked."
        return 400, {"status": "400", "x-amzn-ErrorType": "ValidationError"}, json.dumps({"message": message})
    try:
        proc = serving(endpoint, backend)
    except Exception as exc:
        return 500, {"status": "500", "x-amzn-ErrorType": "InternalFailure"}, json.dumps({"message": str(exc)[:500]})
    raw = getattr(self, "raw_body", self.body)
    body = raw if isinstance(raw, bytes) else (raw or "").encode()
    headers = {"Content-Type": self.headers.get("Content-Type") or "application/octet-stream"}
    if self.headers.get("Accept"):
        headers["Accept"] = self.headers["Accept"]
    req = urllib.request.Request(proc.url + "/invocations", data=body, headers=headers, method="POST")
    variant = backend.endpoint_configs[endpoint.endpoint_config_name].production_variants[0]["VariantName"]
    started = time.monotonic()
    status, headers, out = _forward(req, variant, name, self.region, self.current_account)
    metrics.endpoint_invocation(self.region, name, variant, status, (time.monotonic() - started) * 1e6)
    return status, headers, out


def _forward(req: urllib.request.Request, variant: str, name: str, region: str, account: str) -> tuple[int, dict, Any]:
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            out = resp.read()
            ctype = resp.headers.get("Content-Type", "application/json")
        return 200, {"Content-Type": ctype, "x-Amzn-Invoked-Production-Variant": variant}, out
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")[:1000]
        doc = {
            "message": f'Received client error ({exc.code}) from primary with message "{text}".',
            "OriginalStatusCode": exc.code,
            "OriginalMessage": text,
            "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}",
        }
        return 424, {"status": "424", "x-amzn-ErrorType": "ModelError"}, json.dumps(doc)
    except OSError as exc:
        doc = {"message": f"model container: {exc}"}
        return 424, {"status": "424", "x-amzn-ErrorType": "ModelError"}, json.dumps(doc)


def endpoint_state(account: str, region: str) -> list[dict]:
    backend = _backend(account, region)
    return [
        {
            "name": e.endpoint_name,
            "status": e.endpoint_status,
            "config": e.endpoint_config_name,
            "failure_reason": e.failure_reason,
        }
        for e in backend.endpoints.values()
    ]
