"""The local backend: MLflow registry, model-server processes as the endpoint, local Lambda
execution environments behind alias `live`, and the local API front as the API Gateway stage."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

from mlops import config
from mlops.backends.base import Backend, BackendError, ModelVersion, Release, alias_text
from mlops.backends.local.model_store import keep_copy, kept_path
from mlops.backends.local.registry import LocalRegistry, smoke_folder
from mlops.backends.local.signals import Signals, breaches, read_signals
from mlops.backends.local.stack import LocalStack
from mlops.backends.local.store import ControlState, ReleaseStore, exclusive, write_json
from mlops.backends.local.traffic import LocalTraffic, version_logs
from mlops.standins import processes as procs
from mlops.standins import sagemaker_runtime
from mlops.standins.lambda_runtime import READY_PATH

ENDPOINT_NAME = "catdog-local"
DEFAULT_HANDLER = "classify_api.handler.lambda_handler"
DRAIN_SECONDS = 1.0
BAKE_SECONDS = 5.0  # locally a release is watched for seconds (MLOPS_BAKE_SECONDS overrides)
LOCK_WAIT_SECONDS = 600.0  # a second promotion waits this long for the first (MLOPS_LOCK_WAIT_SECONDS)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


class LocalBackend(LocalStack, LocalTraffic, Backend):
    name = "local"

    def __init__(self, stage: str = "local") -> None:
        self.stage = stage
        self.home = config.state_dir()
        (self.home / "local").mkdir(exist_ok=True)
        self.state = ControlState(self.home / "local" / "control.json")
        self.releases = ReleaseStore(self.home / "releases.db")
        self.routing_path = self.home / "local" / "routing.json"
        self.shadow_log = procs.logs_dir() / "shadow.jsonl"
        self.api_port = _env_int("API_PORT", 8000)
        self._registry: LocalRegistry | None = None

    # --- registry ----------------------------------------------------------------------------
    @property
    def registry(self) -> LocalRegistry:
        if self._registry is None:
            self._registry = LocalRegistry()
        return self._registry

    # --- model host ----------------------------------------------------------------------------
    def _start_model_server(self, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
        taken = {c.get("port") for c in self.state.read()["endpoint_configs"].values() if c.get("pid")}
        port = procs.free_port(_env_int("MODEL_PORT", 8080), taken)
        proc = procs.spawn(
            name,
            ["-m", "serving.server", "--model", cfg["artifact"], "--host", procs.HOST, "--port", str(port)],
            env={"MODEL_VERSION": cfg["model_version"], "MODEL_SHA256": cfg.get("model_sha256", "")},
        )
        url = f"http://{procs.HOST}:{port}"
        try:
            procs.wait_healthy(name, proc.pid, url + "/ping", timeout=60)
        except procs.ProcessStartError as exc:
            procs.stop(proc.pid)
            raise BackendError(f"model server for version {cfg['model_version']} failed: {exc}") from exc
        return {**cfg, "port": port, "pid": proc.pid, "url": url}

    def _config_name(self, version: ModelVersion, release: Release) -> str:
        return f"{ENDPOINT_NAME}-v{version.version}-{release.release_id[-6:]}"

    def _start_config(self, version: ModelVersion, release: Release) -> str:
        """A model server for the release's endpoint config (not yet what the endpoint serves)."""
        name = self._config_name(version, release)
        cfg = self._start_model_server(name, self._server_config(version))
        with self.state.edit() as st:
            st["endpoint_configs"][name] = cfg
        return name

    def deploy_endpoint(self, version: ModelVersion, release: Release) -> str:
        name = self._config_name(version, release)
        if name in self.state.read()["endpoint_configs"]:  # the candidate's own model server, already up
            self.restore_endpoint(name)
            return name
        cfg = self._start_model_server(name, self._server_config(version))
        with self.state.edit() as st:
            st["endpoint_configs"][name] = cfg
            st["endpoint"] = {"name": ENDPOINT_NAME, "config": name}
        return name

    def _ensure_model_server(self, name: str) -> dict[str, Any]:
        cfg: dict[str, Any] | None = self.state.read()["endpoint_configs"].get(name)
        if cfg is None:
            raise BackendError(f"unknown endpoint config {name}")
        if procs.alive(cfg.get("pid")) and procs.healthy(cfg["url"] + "/ping"):
            return cfg
        cfg = self._start_model_server(name, cfg)
        with self.state.edit() as st:
            st["endpoint_configs"][name] = cfg
        return cfg

    def restore_endpoint(self, endpoint_config: str) -> None:
        self._ensure_model_server(endpoint_config)
        with self.state.edit() as st:
            st["endpoint"] = {"name": ENDPOINT_NAME, "config": endpoint_config}

    def current_endpoint_config(self) -> str:
        return str(self.state.read()["endpoint"].get("config", ""))

    def remove_endpoint(self) -> None:
        """No config serves any more: the model server of the current one is stopped."""
        with self.state.edit() as st:
            cfg = st["endpoint_configs"].get(st["endpoint"].get("config", ""))
            if cfg:
                procs.stop(cfg.get("pid"))
                cfg["pid"] = None
            st["endpoint"] = {}

    # --- function versions and alias -----------------------------------------------------------
    def _start_function(self, version: str, fn: dict[str, Any]) -> dict[str, Any]:
        model = self._ensure_model_server(fn["endpoint_config"])
        name = f"lambda-v{version}"
        taken = {f.get("port") for f in self.state.read()["functions"].values() if f.get("pid")}
        port = procs.free_port(_env_int("LAMBDA_PORT", 9000), taken)
        env = {
            **fn["environment"],
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_runtime.endpoint_url(model["url"], model["pid"]),
            "AWS_LAMBDA_FUNCTION_VERSION": version,
        }
        args = ["--handler", fn["handler"], "--port", str(port), "--version", version]
        proc = procs.spawn(name, ["-m", "mlops.standins.lambda_runtime", *args], env=env)
        url = f"http://{procs.HOST}:{port}"
        try:
            procs.wait_healthy(name, proc.pid, url + READY_PATH, timeout=30)
            self._pre_traffic_check(version, url)
        except (procs.ProcessStartError, BackendError) as exc:
            procs.stop(proc.pid)
            raise BackendError(f"function version {version} failed its pre-traffic check: {exc}") from exc
        return {**fn, "port": port, "pid": proc.pid, "url": url, "model_url": model["url"]}

    def publish_function(self, release: Release) -> str:
        endpoint_config = self.state.read()["endpoint"].get("config", "")
        cand = release.candidate
        if cand.get("endpoint_config") == endpoint_config and cand.get("function_version"):
            # the candidate's version already reaches this model: the same function, checked before traffic
            self._ensure_function(cand["function_version"])
            return str(cand["function_version"])
        return self._publish(release, endpoint_config)

    def _publish(self, release: Release, endpoint_config: str) -> str:
        environment = {
            "ENDPOINT_NAME": ENDPOINT_NAME,
            "MODEL_RELEASE": release.release_id,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "catdog-api",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("LAMBDA_LOG_LEVEL", "WARNING"),
            "ALLOW_HTTP_IMAGE_URLS": os.environ.get("ALLOW_HTTP_IMAGE_URLS", "false"),
        }
        handler = os.environ.get("LAMBDA_HANDLER", DEFAULT_HANDLER)
        with self.state.edit() as st:
            version = str(st["next_function_version"])
            st["next_function_version"] += 1
        fn = self._start_function(
            version,
            {
                "handler": handler,
                "environment": environment,
                "endpoint_config": endpoint_config,
                "release": release.release_id,
            },
        )
        with self.state.edit() as st:
            st["functions"][version] = fn
        return version

    def _ensure_function(self, version: str) -> dict[str, Any]:
        st = self.state.read()
        fn: dict[str, Any] | None = st["functions"].get(version)
        if fn is None:
            raise BackendError(f"unknown function version {version}")
        model = st["endpoint_configs"].get(fn["endpoint_config"], {})
        if procs.alive(fn.get("pid")) and procs.alive(model.get("pid")) and fn.get("model_url") == model.get("url"):
            return fn
        procs.stop(fn.get("pid"))
        fn = self._start_function(version, fn)
        with self.state.edit() as s:
            s["functions"][version] = fn
        return fn

    def move_alias(self, function_version: str) -> None:
        self._ensure_function(function_version)
        with self.state.edit() as st:
            st["alias"] = {"live": function_version}
        self._write_routing()

    def current_function_version(self) -> str:
        """The alias's version, with its weighted or mirrored candidate when it has one (e.g. `3+4@10%`)."""
        return alias_text(self.state.read()["alias"])

    def function_code_id(self) -> str:
        """SHA-256 over the handler setting and the function's source files (what a zip would carry)."""
        digest = hashlib.sha256(os.environ.get("LAMBDA_HANDLER", DEFAULT_HANDLER).encode())
        for path in sorted((config.REPO_ROOT / "lambda" / "classify_api").rglob("*.py")):
            digest.update(path.relative_to(config.REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()

    # --- stage --------------------------------------------------------------------------------
    def deploy_stage(self, release: Release) -> str:
        deployment = "d" + uuid.uuid4().hex[:8]
        variables = {
            "release": release.release_id,
            "modelVersion": release.model_version,
            "endpointName": ENDPOINT_NAME,
        }
        with self.state.edit() as st:
            st["deployments"][deployment] = {"stage_variables": variables, "created": time.time()}
            st["stage"] = {"name": self.stage, "deployment": deployment}
        self._write_routing()
        return deployment

    def restore_stage(self, deployment_id: str) -> None:
        with self.state.edit() as st:
            if deployment_id not in st["deployments"]:
                raise BackendError(f"unknown stage deployment {deployment_id}")
            st["stage"] = {"name": self.stage, "deployment": deployment_id}
        self._write_routing()

    def current_deployment(self) -> str:
        return str(self.state.read()["stage"].get("deployment", ""))

    def _write_routing(self) -> None:
        """routing.json for the front: the alias's version, its weighted candidate and its mirror."""
        st = self.state.read()
        alias = st["alias"]
        live = alias.get("live")
        fn = st["functions"].get(live or "", {})
        deployment = st["stage"].get("deployment", "")
        routing: dict[str, Any] = {
            "function_version": live,
            "function_url": fn.get("url"),
            "deployment_id": deployment,
            "stage_variables": st["deployments"].get(deployment, {}).get("stage_variables", {}),
        }
        for version, weight in alias.get("weights", {}).items():
            url = st["functions"].get(version, {}).get("url")
            routing["candidate"] = {"function_version": version, "function_url": url, "weight": weight}
        if alias.get("mirror"):
            url = st["functions"].get(alias["mirror"], {}).get("url")
            routing["mirror"] = {"function_version": alias["mirror"], "function_url": url}
            routing["shadow_log"] = str(self.shadow_log)
        write_json(self.routing_path, routing)

    def api_url(self) -> str:
        return f"http://{procs.HOST}:{self.api_port}"

    def smoke_set(self, version: ModelVersion) -> Path:
        return smoke_folder(version)

    def keep_model(self, version: ModelVersion) -> str:
        return keep_copy(version, self._kept_path(version)).as_uri()

    def _kept_path(self, version: ModelVersion) -> Path:
        return kept_path(self.home, self.stage, version)

    def fetch_model(self, version: ModelVersion, into: Path) -> Path:
        path = self._kept_path(version)
        if not path.exists():
            raise BackendError(f"model version {version.version}: the {self.stage} copy {path} is missing")
        return path

    def _server_config(self, version: ModelVersion) -> dict[str, Any]:
        """What a model server for `version` is started with (and restarted with, from the saved state): the
        stage's copy of the artifact, made now only when no promotion made it (the preview of `mlops up`)."""
        path = self._kept_path(version)
        if not path.exists():
            self.keep_model(version)
        return {"model_version": version.version, "artifact": str(path), "model_sha256": version.model_sha256}

    # --- records, lock, processes ------------------------------------------------------------------
    def save_release(self, release: Release) -> None:
        self.releases.save(release)

    def list_releases(self) -> list[Release]:
        return self.releases.all()

    def record_qualification(self, target: str, release: Release) -> None:
        self.releases.qualify(target, release)

    def qualifications(self) -> list[Release]:
        return self.releases.qualifications(self.stage)

    def lock(self, owner: str) -> contextlib.AbstractContextManager[None]:
        """A file lock: the OS frees it when its holder dies, so a killed promotion never blocks the next."""
        wait = float(os.environ.get("MLOPS_LOCK_WAIT_SECONDS") or LOCK_WAIT_SECONDS)
        return exclusive(self.home / "promote.lock", owner, wait)

    # --- the bake's signals ------------------------------------------------------------------------
    def bake_seconds(self) -> float:
        return BAKE_SECONDS

    def watch(self, release: Release, since: float) -> list[str]:
        return breaches(self._signals(release, since))

    def requests_served(self, release: Release, since: float) -> int:
        return self._signals(release, since).invocations

    def _signals(self, release: Release, since: float) -> Signals:
        version = release.lambda_version or str(release.candidate.get("function_version", ""))
        return read_signals(version_logs(version), since)

    def retire(self, release: Release) -> None:
        """Stop a release's processes once nothing routes to them (after a short drain)."""
        st = self.state.read()
        fn_live, cfg_live = st["alias"].get("live"), st["endpoint"].get("config")
        in_use = {st["functions"].get(fn_live or "", {}).get("endpoint_config"), cfg_live}
        time.sleep(DRAIN_SECONDS)
        with self.state.edit() as s:
            fn = s["functions"].get(release.lambda_version)
            if fn and release.lambda_version != fn_live:
                procs.stop(fn.get("pid"))
                fn["pid"] = None
            cfg = s["endpoint_configs"].get(release.endpoint_config)
            if cfg and release.endpoint_config not in in_use:
                procs.stop(cfg.get("pid"))
                cfg["pid"] = None
