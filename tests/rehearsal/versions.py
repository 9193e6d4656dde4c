"""The model versions the rehearsal registers besides the pipeline's: as the pipeline registers them.

Version 1 comes from retrain.yml (or, for quick runs, a prebuilt model evaluated by the project's
training/evaluate.py); version 2 is version 1 with its labels swapped (a broken candidate);
version 3 is version 1 registered again, as a retrain on the same photos would give. Each is signed as the
pipeline's Evaluate job signs (training/attestation.py), with the registration key, as the pipeline role.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from rehearsal import checks
from serving.artifact import artifact_sha256
from training import attestation


class VersionSteps:
    """Mixed into the flow: needs emu, ws, settings, context and runner."""

    emu: Any
    ws: Path
    settings: dict
    context: dict
    runner: Any

    def prebuilt_version(self) -> str:
        """Instead of retrain.yml (quick runs): version 1 from a prebuilt model.tar.gz, evaluated by the
        project's training/evaluate.py on the offline test photos and registered as the pipeline registers."""
        out, s3 = checks.outputs(self.ws, "staging"), self.emu.client("s3")
        bucket, key, prefix = out["artifact_bucket"], "models/prebuilt/output/model.tar.gz", "evaluation/prebuilt"
        artifact = Path(self.settings["model_artifact"])
        s3.put_object(Bucket=bucket, Key=key, Body=artifact.read_bytes())
        folder = Path(self.settings["out"]) / "prebuilt-evaluation"
        shutil.rmtree(folder, ignore_errors=True)
        test = Path(self.settings["data_dir"]) / "test"
        cmd = [self.settings["python"], "-m", "training.evaluate", "--model", str(artifact), "--test", str(test),
               "--max-images-per-class", str(self.settings["test_per_class"]), "--output", str(folder)]  # fmt: skip
        env = {"PATH": self.runner.base_env["PATH"], "HOME": self.runner.base_env["HOME"], "PYTHONPATH": str(self.ws)}
        done = subprocess.run(cmd, cwd=self.ws, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"training/evaluate.py: {done.stderr.strip()[-400:]}")
        report = json.loads((folder / "evaluation.json").read_text())
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes())
        image = f"{out['ecr_repository_url']}:{self.context['github']['sha']}"
        like = {
            "InferenceSpecification": {
                "Containers": [{"Image": image, "ModelDataUrl": ""}],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{bucket}/{prefix}/evaluation.json",
                    }
                }
            },
            "CustomerMetadataProperties": {
                "git_sha": self.context["github"]["sha"],
                "mlflow_run_id": report["model"]["mlflow_run_id"],
                "smoke_set": f"s3://{bucket}/{prefix}/{report['smoke_set']['path']}",
                "smoke_manifest_sha256": report["smoke_set"]["manifest_sha256"],
                "model_sha256": report["model"]["sha256"],
            },
        }
        return self._register(out["model_package_group_name"], like, f"s3://{bucket}/{key}")

    def keep_trained(self) -> str:
        """Version 1's model.tar.gz under the output folder: the breakage test registers it instead of training."""
        sm, s3 = self.emu.client("sagemaker"), self.emu.client("s3")
        group = checks.outputs(self.ws, "staging")["model_package_group_name"]
        first = sm.describe_model_package(ModelPackageName=f"{self._group_arn(group)}/1")
        bucket, _, key = first["InferenceSpecification"]["Containers"][0]["ModelDataUrl"][5:].partition("/")
        target = Path(self.settings["out"]) / "trained" / "model.tar.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return f"kept {target}"

    def broken_candidate(self) -> str:
        """Version 2: version 1's model with its labels swapped, registered as the pipeline registers."""
        sm, s3 = self.emu.client("sagemaker"), self.emu.client("s3")
        group = checks.outputs(self.ws, "staging")["model_package_group_name"]
        first = sm.describe_model_package(ModelPackageName=f"{self._group_arn(group)}/1")
        container = first["InferenceSpecification"]["Containers"][0]
        bucket, _, key = container["ModelDataUrl"].removeprefix("s3://").partition("/")
        raw = io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        out = io.BytesIO()
        with tarfile.open(fileobj=raw) as source, tarfile.open(fileobj=out, mode="w:gz") as tar:
            for member in source.getmembers():
                data = source.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
                if member.name.endswith("metadata.json") and data is not None:
                    meta = json.loads(data)
                    meta["labels"] = list(reversed(meta["labels"]))
                    data = json.dumps(meta).encode()
                    member.size = len(data)
                tar.addfile(member, io.BytesIO(data) if data is not None else None)
        broken_key = key.rsplit("/", 1)[0] + "-broken/model.tar.gz"
        s3.put_object(Bucket=bucket, Key=broken_key, Body=out.getvalue())
        # Its evaluation would have scored this content: the registration names its own content SHA-256.
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "model.tar.gz").write_bytes(out.getvalue())
            sha = artifact_sha256(Path(tmp) / "model.tar.gz")
        props = {**first.get("CustomerMetadataProperties", {}), "model_sha256": sha}
        return self._register(group, {**first, "CustomerMetadataProperties": props}, f"s3://{bucket}/{broken_key}")

    def second_good_candidate(self) -> str:
        """Version 3: version 1's model registered again (as a retrain on the same photos would give)."""
        sm = self.emu.client("sagemaker")
        group = checks.outputs(self.ws, "staging")["model_package_group_name"]
        first = sm.describe_model_package(ModelPackageName=f"{self._group_arn(group)}/1")
        return self._register(group, first, first["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])

    def _group_arn(self, group: str) -> str:
        return f"arn:aws:sagemaker:{self.emu.region}:{self.settings['account']}:model-package/{group}"

    def _sign(self, group: str, props: dict[str, str]) -> dict[str, str]:
        """The properties with the signature the pipeline's Evaluate job makes: the registration key, used as
        the pipeline role (infra/bootstrap/signing.tf; the only role allowed kms:Sign on it)."""
        prefix = group.removesuffix("-models")
        role = f"arn:aws:iam::{self.settings['account']}:role/{prefix}-pipeline"
        kms = self.emu.client_as(role, "sagemaker.amazonaws.com", "kms")
        body = attestation.of_properties(group, props)
        alias = f"alias/{prefix}-registration-signing"
        return {**props, attestation.SIGNATURE_KEY: attestation.sign_with_kms(kms, alias, body)}

    def _register(self, group: str, like: dict, data_url: str) -> str:
        spec = like["InferenceSpecification"]
        container = {**spec["Containers"][0], "ModelDataUrl": data_url}
        arn = self.emu.client("sagemaker").create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={**spec, "Containers": [container]},
            ModelApprovalStatus="PendingManualApproval",
            ModelMetrics=like.get("ModelMetrics", {}),
            CustomerMetadataProperties=self._sign(group, like.get("CustomerMetadataProperties", {})),
        )["ModelPackageArn"]
        return f"registered {arn.rsplit('/', 1)[-1]} from {data_url}"
