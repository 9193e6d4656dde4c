"""The aws backend: SageMaker Model Registry and endpoint, Lambda alias `live`, API Gateway stage, DynamoDB."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from functools import partial, wraps
from pathlib import Path
from typing import Any

from mlops.backends.aws.config import AwsClients, AwsConfig, aws_call, resource_name
from mlops.backends.aws.endpoint import EndpointHost
from mlops.backends.aws.front import SHADOW_VARIABLE, ApiFront
from mlops.backends.aws.image import pin_image
from mlops.backends.aws.records import ReleaseTable
from mlops.backends.aws.registry import SageMakerRegistry
from mlops.backends.aws.shadow import read_pairs
from mlops.backends.aws.traffic import alias_invocations, candidate_metrics
from mlops.backends.aws.watch import alarm_breaches, alarm_window_seconds
from mlops.backends.base import Backend, BackendError, ModelVersion, Release

log = logging.getLogger(__name__)


def leased(method: Callable[..., Any]) -> Callable[..., Any]:
    """A call that changes what the stage serves, or watches it: first, the lease must still be ours
    (mlops/backends/aws/lease.py): a holder that lost the lock stops at its next step."""

    @wraps(method)
    def call(self: AwsBackend, *args: Any, **kwargs: Any) -> Any:
        self.records.check_lease()
        return method(self, *args, **kwargs)

    return call


class AwsBackend(Backend):
    """One environment (staging or production) of the Terraform stack in infra/."""

    name = "aws"
    mirrors_code = False  # the live function mirrors to the candidate's endpoint: models are compared, not code

    def __init__(
        self, stage: str = "staging", clients: AwsClients | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.stage = stage
        self._env = env
        self.cfg = AwsConfig.from_env(stage, env)
        self.clients = clients or AwsClients(self.cfg.region)
        self._registry = SageMakerRegistry(self.clients, self.cfg.model_package_group, self.cfg.signing_key)
        self.host = EndpointHost(self.clients, self.cfg, self.role_arn)
        candidate_name = resource_name(self.cfg.endpoint_name, "candidate")
        self.candidate_host = EndpointHost(self.clients, self.cfg, self.role_arn, name=candidate_name)
        self.front = ApiFront(self.clients, self.cfg)
        self.records = ReleaseTable(self.clients, self.cfg.release_table, stage, self.cfg.lock_ttl_seconds)
        self._role_arn = self.cfg.inference_role_arn

    def _caller(self) -> tuple[str, str]:
        """(partition, account) of the caller's identity."""
        with aws_call("reading the caller identity"):
            arn = self.clients.get("sts").get_caller_identity()["Arn"]
        return arn.split(":")[1], arn.split(":")[4]

    def role_arn(self) -> str:
        """The endpoint models' execution role (read-only on the stage's kept models): INFERENCE_ROLE_ARN, the
        Terraform output inference_role_arn, else the bootstrap stack's name <prefix>-inference."""
        if not self._role_arn:
            partition, account = self._caller()
            self._role_arn = f"arn:{partition}:iam::{account}:role/{self.cfg.prefix}-inference"
        return self._role_arn

    def _kept_uri(self, version: ModelVersion) -> str:
        """The stage's copy of a version's model: released/ of the stage's own artifact bucket (ARTIFACT_BUCKET,
        the Terraform output artifact_bucket, else <prefix>-artifacts-<account>), under the stage's own key.
        Only the stage's release role writes there; its inference role reads nothing else."""
        if not self.cfg.artifact_bucket:
            self.cfg = replace(self.cfg, artifact_bucket=f"{self.cfg.prefix}-artifacts-{self._caller()[1]}")
        sha = version.model_sha256[:16] or "unhashed"
        return f"s3://{self.cfg.artifact_bucket}/released/v{version.version}-{sha}/model.tar.gz"

    @property
    def registry(self) -> SageMakerRegistry:
        return self._registry

    # --- model host ----------------------------------------------------------------------------------
    def _container(self, version: ModelVersion, release: Release) -> dict[str, Any]:
        container = self.registry.container(version.version)
        if not release.image:
            release.image = pin_image(self.clients, container["Image"], release.release_id)
        # The model server refuses an artifact whose content is not the registered one (serving.artifact).
        environment = {"MODEL_SHA256": version.model_sha256} if version.model_sha256 else {}
        return {
            **container,
            "Image": release.image,
            "ModelDataUrl": self._kept_uri(version),
            "Environment": environment,
        }

    @leased
    def deploy_endpoint(self, version: ModelVersion, release: Release) -> str:
        ready = bool(release.candidate.get("own_model"))  # the candidate endpoint made model and config
        return self.host.deploy(self._container(version, release), version.version, release.release_id, ready)

    @leased
    def restore_endpoint(self, endpoint_config: str) -> None:
        self.host.restore(endpoint_config)

    def current_endpoint_config(self) -> str:
        return self.host.current_config()

    @leased
    def remove_endpoint(self) -> None:
        self.host.remove()

    # --- API front -----------------------------------------------------------------------------------
    @leased
    def publish_function(self, release: Release) -> str:
        return self.front.publish(release)

    @leased
    def move_alias(self, function_version: str) -> None:
        """The alias on one version, nothing weighted and nothing mirrored."""
        self.front.move_alias(function_version)
        self.front.set_variables({SHADOW_VARIABLE: None})

    def current_function_version(self) -> str:
        return self.front.current_version()

    @leased
    def deploy_stage(self, release: Release) -> str:
        return self.front.deploy_stage(release)

    @leased
    def restore_stage(self, deployment_id: str) -> None:
        self.front.restore_stage(deployment_id)

    def current_deployment(self) -> str:
        return self.front.current_deployment()

    def function_code_id(self) -> str:
        return self.front.code_sha256()

    def update_function_code(self, package: bytes, owner: str) -> tuple[str, bool]:
        """`mlops lambda update-code`: $LATEST's code replaced under the stage's release lock (the one
        promotion, rollback and repair take), so no release reads or publishes the code meanwhile."""
        with self.lock(owner):
            return self.front.update_code(package)

    def api_url(self) -> str:
        return self.front.api_url()

    def smoke_set(self, version: ModelVersion) -> Path:
        return self.registry.fetch_smoke_set(version)

    def keep_model(self, version: ModelVersion) -> str:
        return self.registry.copy_model(version, self._kept_uri(version))

    def fetch_model(self, version: ModelVersion, into: Path) -> Path:
        return self.registry.fetch_model(version, into, self._kept_uri(version))

    # --- records and lock ----------------------------------------------------------------------------
    def save_release(self, release: Release) -> None:
        self.records.save(release)

    def list_releases(self) -> list[Release]:
        return self.records.all()

    def _table_of(self, stage: str) -> ReleaseTable:
        if stage == self.stage:
            return self.records
        other = AwsConfig.from_env(stage, self._env)
        return ReleaseTable(self.clients, other.release_table, stage, other.lock_ttl_seconds)

    def releases_of(self, stage: str) -> list[Release]:
        """Another stage's records, from that stage's table (read-only)."""
        return self._table_of(stage).all()

    def record_qualification(self, target: str, release: Release) -> None:
        """In `target`'s table: only `target`'s release roles (the production deploy role) may write it."""
        self.records.check_lease()
        self._table_of(target).qualify(release)

    def qualifications(self) -> list[Release]:
        return self.records.qualifications()

    def lock(self, owner: str) -> contextlib.AbstractContextManager[None]:
        return self.records.lock(owner, wait_s=self.cfg.lock_wait_seconds)

    # --- the bake's signals ----------------------------------------------------------------------------
    def bake_seconds(self) -> float:
        return self.cfg.release_bake_seconds

    def bake_seconds_of(self, stage: str) -> float:
        return self.bake_seconds() if stage == self.stage else AwsConfig.from_env(stage, self._env).release_bake_seconds

    @leased
    def watch(self, release: Release, since: float) -> list[str]:
        switched = float(release.bake.get("watched_from") or since)  # a live release baked again: its own switch
        return alarm_breaches(self.clients, self.cfg.alarm_names + self.cfg.release_alarm_names, switched)

    def requests_served(self, release: Release, since: float) -> int:
        return alias_invocations(self.clients, self.cfg, since)

    def signal_lag_seconds(self) -> float:
        """CloudWatch's metric delay (METRIC_DELAY_SECONDS), then the longest EvaluationPeriods × Period of
        the watched alarms: how late a breach since the switch can turn an alarm to ALARM."""
        names = self.cfg.alarm_names + self.cfg.release_alarm_names
        return self.cfg.metric_delay_seconds + alarm_window_seconds(self.clients, names)

    # --- progressive delivery: the candidate's own endpoint and function version ---------------------
    @leased
    def stage_candidate(self, version: ModelVersion, release: Release, same_model: bool) -> str:
        """Same model: the candidate's function reaches the stage's endpoint. Otherwise its own endpoint
        (`<endpoint>-candidate`) on the release's config, and a function version whose ENDPOINT_NAME names it."""
        if same_model:
            endpoint, config = self.cfg.endpoint_name, self.current_endpoint_config()
        else:
            endpoint = self.candidate_host.name
            release.candidate = {"endpoint": endpoint, "own_model": True}
            container = self._container(version, release)
            config = self.candidate_host.deploy(container, version.version, release.release_id)
        release.candidate = {"endpoint": endpoint, "endpoint_config": config, "own_model": not same_model}
        candidate = self.front.publish(release, endpoint=endpoint)
        release.candidate["function_version"] = candidate
        release.lambda_version = ""  # the final switch publishes the release's own version
        return candidate

    @leased
    def route(self, primary: str, candidate: str = "", weight: float = 0.0, mirror: str = "") -> None:
        """The alias's weights decide the split; a mirror is the stage variable naming the candidate's
        endpoint, which the live function (`primary`) then sends a copy of each POST /predict to."""
        if mirror and self.candidate_host.describe() is None:
            raise BackendError(f"cannot mirror to version {mirror}: endpoint {self.candidate_host.name} does not exist")
        variables: dict[str, str | None] = {SHADOW_VARIABLE: self.candidate_host.name if mirror else None}
        if candidate or self.front.version_endpoint(primary) != self.cfg.endpoint_name:
            variables["endpointName"] = None  # each version now follows its own ENDPOINT_NAME
        # The variables before the alias: a version the alias starts sending requests to must never find
        # `endpointName` still naming another endpoint (a candidate answered by the live model).
        self.front.set_variables(variables)
        self.front.route(primary, {candidate: weight} if candidate and weight > 0 else {})

    def candidate_signals(self, release: Release, since: float) -> tuple[list[str], dict[str, int]]:
        cand = str(release.candidate.get("function_version", ""))
        primary = self.front.routed_versions() - {cand}
        endpoint = str(release.candidate.get("endpoint", ""))
        return candidate_metrics(self.clients, self.cfg, cand, min(primary, default=""), endpoint, since)

    def shadow_pairs(self, release: Release, since: float) -> list[dict[str, Any]]:
        """The live function's `shadow pair` log records for the candidate's endpoint since `since`."""
        endpoint = str(release.candidate.get("endpoint", ""))
        version = str(release.candidate.get("function_version", ""))
        return read_pairs(self.clients, self.cfg, endpoint, version, since) if endpoint else []

    @leased
    def drop_candidate(self, release: Release) -> None:
        """Delete the candidate endpoint (its config is the release's: retire or the stage keeps it) and
        the candidate's function version unless the alias routes to it."""
        if release.candidate.get("own_model"):
            self.candidate_host.remove()
        version = str(release.candidate.get("function_version", ""))
        if version and version != release.lambda_version:
            log.info("release %s: %s", release.release_id, self.front.discard_version(version))

    # --- housekeeping ------------------------------------------------------------------------------
    @leased
    def retire(self, release: Release) -> None:
        """Delete a rolled-back release's endpoint config, model and function version.

        What is live (or that the endpoint is still moving to) is kept. A failure here is reported
        and left: the rollback it follows has already happened, and the resources can go later."""
        # A deployment that failed part-way has no recorded config, but may have created one by this name.
        config = release.endpoint_config or self.host.config_name(release.model_version, release.release_id)
        steps: list[tuple[str, Callable[[], str]]] = [("endpoint config and model", partial(self.host.discard, config))]
        if release.lambda_version:
            steps.append(("function version", partial(self.front.discard_version, release.lambda_version)))
        for what, step in steps:
            try:
                log.info("release %s: %s", release.release_id, step())
            except BackendError as exc:
                log.warning("release %s: %s left in place: %s", release.release_id, what, exc)

    # --- session ------------------------------------------------------------------------------------
    def api_key(self) -> str:
        """The clients' API key: API_KEY, else its value read from API Gateway by API_KEY_ID (an output)."""
        if os.environ.get("API_KEY") or not self.cfg.api_key_id:
            return os.environ.get("API_KEY", "")
        with aws_call(f"reading API key {self.cfg.api_key_id}"):
            key = self.clients.get("apigateway").get_api_key(apiKey=self.cfg.api_key_id, includeValue=True)
            return str(key["value"])

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """One set of clients for a command; for its duration the smoke tests find the API key in API_KEY."""
        exported = False
        try:
            if not os.environ.get("API_KEY") and self.cfg.api_key_id:
                os.environ["API_KEY"] = self.api_key()
                exported = True
            yield
        finally:
            if exported:
                os.environ.pop("API_KEY", None)
            self.clients.close()
