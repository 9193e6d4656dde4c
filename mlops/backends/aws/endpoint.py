"""The SageMaker endpoint as the aws backend's model host: a model and endpoint config per release.

One EndpointHost per endpoint: the stage's endpoint, and the candidate endpoint that a canary,
linear or shadow release brings up beside it (named `<endpoint>-candidate`, on the same config).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from mlops.backends.aws.config import AwsClients, AwsConfig, aws_call, resource_name
from mlops.backends.aws.watch import firing_alarms
from mlops.backends.base import BackendError

# Statuses an endpoint passes through while SageMaker works on it; anything else is where it settled.
BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


class EndpointHost:
    """Creates models and endpoint configs, and switches the one endpoint between them."""

    def __init__(
        self,
        clients: AwsClients,
        cfg: AwsConfig,
        role_arn: Callable[[], str],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        self.name = name or cfg.endpoint_name
        self.clients = clients
        self.cfg = cfg
        self.role_arn = role_arn
        self.sleep = sleep
        self.clock = clock

    @property
    def sm(self) -> Any:
        return self.clients.get("sagemaker")

    # --- request shapes --------------------------------------------------------------------------
    def variant(self, model_name: str) -> dict[str, Any]:
        variant: dict[str, Any] = {"VariantName": self.cfg.variant_name, "ModelName": model_name}
        if self.cfg.endpoint_mode == "serverless":
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": self.cfg.memory_mb,
                "MaxConcurrency": self.cfg.max_concurrency,
            }
        else:
            variant.update(
                InstanceType=self.cfg.instance_type,
                InitialInstanceCount=self.cfg.instance_count,
                InitialVariantWeight=1.0,
            )
        return variant

    def deployment_config(self) -> dict[str, Any]:
        """Blue/green, all traffic at once, with the endpoint alarms as auto-rollback triggers.

        Serverless endpoints accept blue/green with all-at-once shifting only (no rolling update, no
        canary/linear steps and no baking period), so they get a zero wait and no termination wait."""
        serverless = self.cfg.endpoint_mode == "serverless"
        policy: dict[str, Any] = {
            "TrafficRoutingConfiguration": {
                "Type": "ALL_AT_ONCE",
                "WaitIntervalInSeconds": 0 if serverless else self.cfg.bake_seconds,
            },
            "MaximumExecutionTimeoutInSeconds": self.cfg.max_execution_seconds,
        }
        if not serverless:
            policy["TerminationWaitInSeconds"] = self.cfg.termination_wait_seconds
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
        # An alarm already in ALARM (an incident this update may fix) would make SageMaker undo the update
        # whatever it serves: it is left to the bake, which judges it on the release's own datapoints.
        firing = set(firing_alarms(self.clients, self.cfg.alarm_names)) if self.cfg.auto_rollback else set()
        alarms = [a for a in self.cfg.alarm_names if a not in firing]
        if self.cfg.auto_rollback and alarms:
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
        return config

    # --- reads -----------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any] | None:
        """The endpoint's description, or None when it does not exist (yet)."""
        try:
            return cast(dict[str, Any], self.sm.describe_endpoint(EndpointName=self.name))
        except ClientError as exc:
            if "Could not find endpoint" in exc.response.get("Error", {}).get("Message", ""):
                return None
            raise BackendError(f"describing endpoint {self.name}: {exc}") from exc
        except BotoCoreError as exc:
            raise BackendError(f"describing endpoint {self.name}: {exc}") from exc

    def current_config(self) -> str:
        desc = self.describe()
        return desc.get("EndpointConfigName", "") if desc else ""

    def config_name(self, version: str, release_id: str) -> str:
        """The name of a release's model and endpoint config."""
        return resource_name(self.cfg.endpoint_name, f"v{version}", release_id)

    # --- switches --------------------------------------------------------------------------------
    def deploy(self, container: dict[str, Any], version: str, release_id: str, config_ready: bool = False) -> str:
        """A model + endpoint config for the release (unless `config_ready`: a candidate endpoint made
        them), then create or blue/green-update the endpoint."""
        current = self.describe()
        if current is not None and current["EndpointStatus"] in BUSY:
            raise BackendError(
                f"endpoint {self.name} is {current['EndpointStatus']}: wait until it settles, then retry"
            )
        name = self.config_name(version, release_id)
        tags = [{"Key": "release", "Value": release_id}, {"Key": "model_version", "Value": str(version)}]
        if not config_ready:
            self._create_config(name, container, version, release_id, tags)
        return self._deploy_rest(name, current, tags)

    def _create_config(
        self, name: str, container: dict[str, Any], version: str, release_id: str, tags: list[dict[str, Any]]
    ) -> None:
        with aws_call(f"creating model {name}"):
            self.sm.create_model(
                ModelName=name,
                PrimaryContainer={
                    "Image": container["Image"],
                    "ModelDataUrl": container["ModelDataUrl"],
                    "Environment": {
                        **container.get("Environment", {}),
                        "MODEL_VERSION": str(version),
                        "MODEL_RELEASE": release_id,
                    },
                },
                ExecutionRoleArn=self.role_arn(),
                Tags=tags,
            )
        with aws_call(f"creating endpoint config {name}"):
            self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[self.variant(name)], Tags=tags)

    def _deploy_rest(self, name: str, current: dict[str, Any] | None, tags: list[dict[str, Any]]) -> str:
        if current is not None and current["EndpointStatus"] == "Failed":
            # A Failed endpoint (its creation failed) cannot be updated, only deleted and created again.
            self._delete_failed()
            current = None
        if current is None:
            with aws_call(f"creating endpoint {self.name}"):
                self.sm.create_endpoint(EndpointName=self.name, EndpointConfigName=name, Tags=tags)
        else:
            with aws_call(f"updating endpoint {self.name} to {name}"):
                self.sm.update_endpoint(
                    EndpointName=self.name,
                    EndpointConfigName=name,
                    DeploymentConfig=self.deployment_config(),
                )
        self.wait_for(name)
        return name

    def restore(self, endpoint_config: str) -> None:
        """Switch back to a previous config.

        No auto-rollback alarms here: they may be firing because of the release being undone, and
        SageMaker would then roll the restore itself back."""
        current = self.describe()
        if current is None:
            raise BackendError(f"endpoint {self.name} does not exist: nothing to restore")
        if current["EndpointStatus"] in BUSY:
            current = self._settle()
        if current["EndpointStatus"] == "InService" and current.get("EndpointConfigName") == endpoint_config:
            return
        with aws_call(f"restoring endpoint {self.name} to {endpoint_config}"):
            self.sm.update_endpoint(EndpointName=self.name, EndpointConfigName=endpoint_config)
        self.wait_for(endpoint_config)

    def discard(self, endpoint_config: str) -> str:
        """Delete a release's endpoint config and model unless the endpoint is on (or moving to) it.

        Returns what was done, in words. Only rolled-back releases are discarded: a superseded
        release keeps its config, the target of `mlops rollback`."""
        current = self.describe()
        if current is not None and current["EndpointStatus"] in BUSY:
            return f"kept {endpoint_config}: endpoint {self.name} is {current['EndpointStatus']}"
        if current is not None and current.get("EndpointConfigName") == endpoint_config:
            return f"kept {endpoint_config}: the endpoint is on it"
        with aws_call(f"deleting endpoint config {endpoint_config}"):
            _ignore_missing(lambda: self.sm.delete_endpoint_config(EndpointConfigName=endpoint_config))
        with aws_call(f"deleting model {endpoint_config}"):
            _ignore_missing(lambda: self.sm.delete_model(ModelName=endpoint_config))
        return f"deleted endpoint config and model {endpoint_config}"

    def _settle(self) -> dict[str, Any]:
        deadline = self.clock() + self.cfg.endpoint_wait_seconds
        while True:
            desc = self.describe()
            if desc is None:
                raise BackendError(f"endpoint {self.name} disappeared")
            if desc["EndpointStatus"] not in BUSY:
                return desc
            if self.clock() >= deadline:
                raise BackendError(
                    f"endpoint {self.name} is still {desc['EndpointStatus']} after {self.cfg.endpoint_wait_seconds} s"
                )
            self.sleep(self.cfg.poll_seconds)

    def wait_for(self, endpoint_config: str) -> None:
        """Return once the endpoint is InService on `endpoint_config`; raise with SageMaker's reason otherwise."""
        desc = self._settle()
        status, on = desc["EndpointStatus"], desc.get("EndpointConfigName", "")
        if status == "InService" and on == endpoint_config:
            return
        reason = desc.get("FailureReason") or f"the endpoint is {status} on {on or 'no config'}"
        stays = f"; the endpoint stays on {on}" if status == "InService" and on else ""
        raise BackendError(f"endpoint {self.name} did not switch to {endpoint_config}: {reason}{stays}")

    def remove(self) -> None:
        """Delete the endpoint (its configs and models stay): nothing serves until the next release."""
        current = self.describe()
        if current is None:
            return
        if current["EndpointStatus"] in BUSY:
            self._settle()
        self._delete_failed("deleting endpoint")

    def _delete_failed(self, what: str = "deleting failed endpoint") -> None:
        with aws_call(f"{what} {self.name}"):
            self.sm.delete_endpoint(EndpointName=self.name)
        deadline = self.clock() + self.cfg.endpoint_wait_seconds
        while self.describe() is not None:
            if self.clock() >= deadline:
                raise BackendError(f"endpoint {self.name} is still being deleted")
            self.sleep(self.cfg.poll_seconds)


def _ignore_missing(call: Callable[[], Any]) -> None:
    """Run a SageMaker delete call; a resource already gone counts as deleted."""
    try:
        call()
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        if "Could not find" not in message and "does not exist" not in message:
            raise
