"""The aws backend's API front: Lambda versions behind alias `live`, and the API Gateway REST stage."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from mlops.backends.aws.config import AwsClients, AwsConfig, aws_call, error_code
from mlops.backends.base import BackendError, Release, alias_text

# Deployment descriptions carry the stage variables they were made with, so a restore can put them back.
DESCRIPTION_KEY = "stageVariables"
# While set, the live function mirrors each POST /predict to this endpoint (lambda/classify_api/shadow.py).
SHADOW_VARIABLE = "shadowEndpoint"
# What a release writes into the function's environment before it publishes a version. Terraform manages
# every other variable and ignores these three (infra/lambda.tf, lifecycle.ignore_changes).
RELEASE_VARIABLES = ("MODEL_RELEASE", "MODEL_VERSION", "ENDPOINT_NAME")


def package_sha256(package: bytes) -> str:
    """Lambda's CodeSha256 of a .zip package: the base64 of its SHA-256."""
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


def health_event(stage: str, variables: dict[str, str]) -> dict[str, Any]:
    """An API Gateway REST proxy (v1) event for GET /health, as the stage would send it."""
    request_id = str(uuid.uuid4())
    return {
        "resource": "/health",
        "path": "/health",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json", "User-Agent": "mlops-pre-traffic-check"},
        "multiValueHeaders": {"Accept": ["application/json"], "User-Agent": ["mlops-pre-traffic-check"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": variables,
        "requestContext": {
            "requestId": request_id,
            "stage": stage,
            "resourcePath": "/health",
            "httpMethod": "GET",
            "path": f"/{stage}/health",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "mlops-pre-traffic-check"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


class ApiFront:
    """Publishes function versions, moves the alias, and points the stage at per-release deployments."""

    def __init__(self, clients: AwsClients, cfg: AwsConfig) -> None:
        self.clients = clients
        self.cfg = cfg
        self._rest_api_id = cfg.rest_api_id

    @property
    def fn(self) -> Any:
        return self.clients.get("lambda")

    @property
    def apigw(self) -> Any:
        return self.clients.get("apigateway")

    def stage_variables(self, release: Release) -> dict[str, str]:
        return {
            "release": release.release_id,
            "modelVersion": str(release.model_version),
            "endpointName": self.cfg.endpoint_name,
        }

    # --- function --------------------------------------------------------------------------------
    def _wait_updated(self) -> None:
        try:
            self.fn.get_waiter("function_updated_v2").wait(
                FunctionName=self.cfg.function_name, WaiterConfig={"Delay": 2, "MaxAttempts": 150}
            )
        except WaiterError as exc:
            raise BackendError(f"function {self.cfg.function_name} update did not complete: {exc}") from exc

    def publish(self, release: Release, endpoint: str = "") -> str:
        """Name the release and the endpoint it reaches (default: the stage's) in the function's
        environment, publish a version, and invoke it once.

        The version is published only with the code the release read (PublishVersion's CodeSha256):
        code that replaced $LATEST meanwhile fails the publication instead of being released unseen."""
        name = self.cfg.function_name
        self._wait_updated()
        with aws_call(f"reading the configuration of function {name}"):
            conf = self.fn.get_function_configuration(FunctionName=name)
        variables = dict(conf.get("Environment", {}).get("Variables", {}))
        values = (release.release_id, str(release.model_version), endpoint or self.cfg.endpoint_name)
        variables.update(zip(RELEASE_VARIABLES, values, strict=True))
        with aws_call(f"updating the configuration of function {name}"):
            self.fn.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
        self._wait_updated()
        expected = {"CodeSha256": release.code_id} if release.code_id else {}
        with aws_call(f"publishing a version of function {name} with code {release.code_id or 'as it is'}"):
            version = str(
                self.fn.publish_version(
                    FunctionName=name,
                    Description=f"release {release.release_id}: model version {release.model_version}",
                    **expected,
                )["Version"]
            )
        release.lambda_version = version  # recorded before the check, so a failed version is cleaned up too
        self.pre_traffic_check(version, release)
        return version

    def version_endpoint(self, version: str) -> str:
        """The endpoint a published version's environment names (ENDPOINT_NAME)."""
        with aws_call(f"reading the configuration of function {self.cfg.function_name}:{version}"):
            conf = self.fn.get_function_configuration(FunctionName=self.cfg.function_name, Qualifier=str(version))
        return str((conf.get("Environment") or {}).get("Variables", {}).get("ENDPOINT_NAME", ""))

    def code_sha256(self) -> str:
        """CodeSha256 of $LATEST: the code the next published version carries (set by `mlops lambda update-code`)."""
        with aws_call(f"reading the configuration of function {self.cfg.function_name}"):
            return str(self.fn.get_function_configuration(FunctionName=self.cfg.function_name).get("CodeSha256", ""))

    def update_code(self, package: bytes) -> tuple[str, bool]:
        """Put `package` in $LATEST (nothing published) and wait until the update is done: its CodeSha256,
        and whether the code changed. The caller holds the stage's release lock."""
        name, expected = self.cfg.function_name, package_sha256(package)
        self._wait_updated()
        if self.code_sha256() == expected:
            return expected, False
        with aws_call(f"updating the code of function {name}"):
            got = str(self.fn.update_function_code(FunctionName=name, ZipFile=package, Publish=False)["CodeSha256"])
        self._wait_updated()
        if got != expected:
            raise BackendError(f"function {name} reports code {got} after the update, not the package's {expected}")
        return got, True

    def pre_traffic_check(self, version: str, release: Release) -> None:
        """Invoke the new version with GET /health before the alias moves; raise unless it answers 200."""
        variables = {"lambdaAlias": self.cfg.function_alias, **self.stage_variables(release)}
        event = health_event(self.cfg.stage_name, variables)
        with aws_call(f"invoking function {self.cfg.function_name}:{version}"):
            resp = self.fn.invoke(
                FunctionName=self.cfg.function_name,
                Qualifier=version,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
            raw = resp["Payload"].read() if hasattr(resp.get("Payload"), "read") else resp.get("Payload") or b""
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            payload = {}
        where = f"function version {version} failed its pre-traffic check"
        if resp.get("FunctionError"):
            message = payload.get("errorMessage", "") if isinstance(payload, dict) else ""
            raise BackendError(f"{where}: the handler raised ({resp['FunctionError']}) {message[:200]}".rstrip())
        status = payload.get("statusCode") if isinstance(payload, dict) else None
        if status != 200:
            raise BackendError(f"{where}: GET /health answered {status}")

    def move_alias(self, version: str) -> None:
        self.route(version, {})

    def route(self, version: str, weights: dict[str, float]) -> None:
        """Alias `live` on `version`, plus `weights` (version -> share of requests) on others."""
        what = f"moving alias {self.cfg.function_alias} to version {version}"
        what += "".join(f" and {w:.0%} to version {v}" for v, w in weights.items())
        with aws_call(what):
            self.fn.update_alias(
                FunctionName=self.cfg.function_name,
                Name=self.cfg.function_alias,
                FunctionVersion=str(version),
                RoutingConfig={"AdditionalVersionWeights": {str(v): float(w) for v, w in weights.items()}},
            )

    def stage_variables_now(self) -> dict[str, str]:
        """The stage's variables as API Gateway holds them now."""
        with aws_call(f"reading stage {self.cfg.stage_name}"):
            stage = self.apigw.get_stage(restApiId=self.rest_api_id, stageName=self.cfg.stage_name)
        return {str(k): str(v) for k, v in (stage.get("variables") or {}).items()}

    def set_variables(self, values: dict[str, str | None]) -> None:
        """Set stage variables (None: remove), in one update of what differs. Two are set here:
        `endpointName` goes while two function versions share the stage (the handler prefers it to its
        own ENDPOINT_NAME, and each version must reach the endpoint its environment names), and
        SHADOW_VARIABLE names the candidate's endpoint while the live function mirrors to it."""
        current = self.stage_variables_now()
        ops = []
        for name, value in values.items():
            if value is None and name in current:
                ops.append({"op": "remove", "path": f"/variables/{name}"})
            elif value is not None and current.get(name) != value:
                ops.append({"op": "replace", "path": f"/variables/{name}", "value": value})
        if not ops:
            return
        what = ", ".join(f"{o['path'].rsplit('/', 1)[1]}={o.get('value', '(removed)')}" for o in ops)
        with aws_call(f"setting stage variables {what} on stage {self.cfg.stage_name}"):
            self.apigw.update_stage(restApiId=self.rest_api_id, stageName=self.cfg.stage_name, patchOperations=ops)

    def discard_version(self, version: str) -> str:
        """Delete a published function version that the alias does not point to; returns what was done."""
        if not version or version == "$LATEST":
            return "no function version to delete"
        if str(version) in self.routed_versions():
            return f"kept function version {version}: alias {self.cfg.function_alias} points to it"
        with aws_call(f"deleting function version {version}"):
            try:
                self.fn.delete_function(FunctionName=self.cfg.function_name, Qualifier=str(version))
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":  # already gone counts as deleted
                    raise
        return f"deleted function version {version}"

    def _alias(self) -> dict[str, Any]:
        """{"live": version, "weights": {version: share}}; {} when the alias does not exist."""
        try:
            alias = self.fn.get_alias(FunctionName=self.cfg.function_name, Name=self.cfg.function_alias)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return {}
            raise BackendError(f"reading alias {self.cfg.function_alias}: {exc}") from exc
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return {"live": str(alias["FunctionVersion"]), "weights": {str(k): float(v) for k, v in weights.items()}}

    def current_version(self) -> str:
        """The alias's version, with its weighted candidate (`3+4@10%`) or the endpoint its live
        function mirrors to (`3+shadow <endpoint>`) when it has one."""
        alias = self._alias()
        if alias and (mirror := self.stage_variables_now().get(SHADOW_VARIABLE)):
            alias["mirror"] = mirror
        return alias_text(alias)

    def routed_versions(self) -> set[str]:
        alias = self._alias()
        return {alias["live"], *alias["weights"]} if alias else set()

    # --- API stage -------------------------------------------------------------------------------
    @property
    def rest_api_id(self) -> str:
        if not self._rest_api_id:
            with aws_call("listing REST APIs"):
                pages = self.apigw.get_paginator("get_rest_apis").paginate()
                apis = [a for page in pages for a in page.get("items", [])]
            found = [a["id"] for a in apis if a.get("name") == self.cfg.rest_api_name]
            if len(found) != 1:
                what = "no REST API" if not found else f"{len(found)} REST APIs"
                raise BackendError(f"{what} named {self.cfg.rest_api_name}: set REST_API_ID")
            self._rest_api_id = found[0]
        return self._rest_api_id

    def _point_stage(self, deployment_id: str, variables: dict[str, str]) -> None:
        ops = [{"op": "replace", "path": "/deploymentId", "value": deployment_id}]
        ops += [{"op": "replace", "path": f"/variables/{k}", "value": v} for k, v in variables.items()]
        with aws_call(f"pointing stage {self.cfg.stage_name} at deployment {deployment_id}"):
            self.apigw.update_stage(restApiId=self.rest_api_id, stageName=self.cfg.stage_name, patchOperations=ops)

    def deploy_stage(self, release: Release) -> str:
        variables = self.stage_variables(release)
        description = json.dumps({DESCRIPTION_KEY: variables}, sort_keys=True)
        with aws_call(f"creating a deployment of REST API {self.rest_api_id}"):
            deployment_id = str(self.apigw.create_deployment(restApiId=self.rest_api_id, description=description)["id"])
        self._point_stage(deployment_id, variables)
        return deployment_id

    def restore_stage(self, deployment_id: str) -> None:
        with aws_call(f"reading deployment {deployment_id}"):
            deployment = self.apigw.get_deployment(restApiId=self.rest_api_id, deploymentId=deployment_id)
        try:
            variables = json.loads(deployment.get("description") or "{}").get(DESCRIPTION_KEY, {})
        except (ValueError, AttributeError):
            variables = {}  # a deployment made outside promotion: switch it, keep the variables
        self._point_stage(deployment_id, {str(k): str(v) for k, v in variables.items()})

    def current_deployment(self) -> str:
        with aws_call(f"reading stage {self.cfg.stage_name}"):
            stage = self.apigw.get_stage(restApiId=self.rest_api_id, stageName=self.cfg.stage_name)
            return str(stage.get("deploymentId", ""))

    def api_url(self) -> str:
        if self.cfg.api_url:
            return self.cfg.api_url
        return f"https://{self.rest_api_id}.execute-api.{self.cfg.region}.amazonaws.com/{self.cfg.stage_name}"
