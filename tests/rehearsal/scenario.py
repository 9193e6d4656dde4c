"""The documented AWS flow, in order: bootstrap from docs/deploy-aws.md, then the workflows' own steps.

state bucket → infra apply (staging, production) → training photos → deploy.yml (nothing approved
yet) → retrain.yml (real training and evaluation: version 1) → approve 1, deploy.yml promotes it →
a broken candidate (version 2) is rolled back by deploy.yml → version 3 released → manual rollback
→ promote.yml takes version 3 through staging to production → an ordinary push changes nothing →
teardown as documented, leaving nothing behind.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rehearsal import checks
from rehearsal.runner import Runner
from rehearsal.workflows import Step

DOCS = "docs/deploy-aws.md"
WORKFLOWS = ".github/workflows"


def doc_line(workspace: Path, text: str) -> str:
    for number, line in enumerate((workspace / DOCS).read_text().splitlines(), 1):
        if text in line:
            return f"{DOCS}:{number}"
    return f"{DOCS} (no line mentions {text!r})"


def doc_block(workspace: Path, heading: str) -> tuple[str, int]:
    """The first ```bash block after `heading` in the deployment guide, and its line number."""
    lines = (workspace / DOCS).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == heading or line.startswith(heading))
    begin = next(i for i in range(start, len(lines)) if lines[i].startswith("```bash"))
    end = next(i for i in range(begin + 1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[begin + 1 : end]), begin + 2


class Flow:
    def __init__(self, runner: Runner, emu: Any, context: dict, settings: dict) -> None:
        self.runner, self.emu, self.context, self.settings = runner, emu, context, settings
        self.ws = runner.workspace
        self.photo = Path(settings["data_dir"]) / "test" / "cat"
        self.photo = sorted(self.photo.glob("*.jpg"))[0]

    # --- helpers ----------------------------------------------------------------------------------
    def shell(self, name: str, where: str, script: str, extra: dict[str, str] | None = None) -> bool:
        path, line = where.rsplit(":", 1) if ":" in where else (where, "0")
        step = Step(path, "docs", 0, int(line) if line.isdigit() else 0, name, script, None, None)
        env = {**self.runner.base_env, **self.settings["operator_env"], **(extra or {})}
        ok, _ = self.runner._run_step(step, env, self.context)
        self.runner.maybe_stop()
        return ok

    def doc_step(self, name: str, heading: str, extra: dict[str, str] | None = None) -> bool:
        """Run the first bash block under `heading` of the deployment guide."""
        try:
            script, line = doc_block(self.ws, heading)
        except StopIteration:
            self.runner.record(name, DOCS, False, 0.0, f"no bash block under {heading!r}")
            return False
        return self.shell(name, f"{DOCS}:{line}", script, extra)

    def workflow(self, file: str, context: dict | None = None, expect_failure: str | None = None) -> bool:
        return self.runner.job(self.ws / WORKFLOWS / file, {**self.context, **(context or {})}, expect_failure)

    def check(self, name: str, fn: Any) -> bool:
        return self.runner.action(name, "rehearsal check", fn)

    # --- documented manual steps -----------------------------------------------------------------
    def state_bucket(self) -> str:
        s3, bucket = self.emu.client("s3"), self.settings["state_bucket"]
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.emu.region})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
        block = dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        )
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
        return f"s3://{bucket}"

    def upload_photos(self) -> str:
        bucket = checks.outputs(self.ws, "staging").get("artifact_bucket") or self.settings["artifact_bucket"]
        s3, root, uploads = self.emu.client("s3"), Path(self.settings["data_dir"]), []
        for split, per_class in (
            ("train", self.settings["train_per_class"]),
            ("test", self.settings["test_per_class"]),
        ):
            for label in ("cat", "dog"):
                for path in sorted((root / split / label).glob("*.jpg"))[:per_class]:
                    uploads.append((f"data/cats-vs-dogs/{split}/{label}/{path.name}", path))
        with ThreadPoolExecutor(4) as pool:
            done = pool.map(lambda u: s3.put_object(Bucket=bucket, Key=u[0], Body=u[1].read_bytes()), uploads)
            count = len(list(done))
        return f"{count} photos to s3://{bucket}/data/cats-vs-dogs"

    def image_push(self, step: Step, env: dict[str, str]) -> str:
        """make image-push needs Docker: put an image manifest with the commit tag into the stage's ECR."""
        stage = re.search(r"ENV=(\w+)", step.run or "")
        out = checks.outputs(self.ws, stage.group(1) if stage else "staging")
        repo = out["ecr_repository_url"].split("/", 1)[1]
        tag = env.get("IMAGE_TAG") or self.context["github"]["sha"]
        config = {
            "digest": "sha256:" + "0" * 64,
            "size": 0,
            "mediaType": "application/vnd.docker.container.image.v1+json",
        }
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
        manifest.update(config=config, layers=[])
        ecr = self.emu.client("ecr")
        existing = ecr.list_images(repositoryName=repo)["imageIds"]
        if not any(i.get("imageTag") == tag for i in existing):
            ecr.put_image(repositoryName=repo, imageManifest=json.dumps(manifest), imageTag=tag)
        return f"image manifest {repo}:{tag} put into ECR (no Docker on this machine)"

    def install(self, step: Step, env: dict[str, str]) -> str:
        """make venv would rebuild the shared virtualenv: check the target only (make -n)."""
        cmd = (step.run or "").replace("make ", "make -n ", 1)
        done = subprocess.run(["bash", "-c", cmd], cwd=self.ws, env=env, capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"{cmd}: {done.stderr.strip()[-300:]}")
        return "the checkout's .venv is used; `make -n` resolved the install target"

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
        return self._register(group, first, f"s3://{bucket}/{broken_key}")

    def second_good_candidate(self) -> str:
        """Version 3: version 1's model registered again (as a retrain on the same photos would give)."""
        sm = self.emu.client("sagemaker")
        group = checks.outputs(self.ws, "staging")["model_package_group_name"]
        first = sm.describe_model_package(ModelPackageName=f"{self._group_arn(group)}/1")
        return self._register(group, first, first["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])

    def _group_arn(self, group: str) -> str:
        return f"arn:aws:sagemaker:{self.emu.region}:{self.settings['account']}:model-package/{group}"

    def _register(self, group: str, like: dict, data_url: str) -> str:
        spec = like["InferenceSpecification"]
        container = {**spec["Containers"][0], "ModelDataUrl": data_url}
        arn = self.emu.client("sagemaker").create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={**spec, "Containers": [container]},
            ModelApprovalStatus="PendingManualApproval",
            ModelMetrics=like.get("ModelMetrics", {}),
            CustomerMetadataProperties=like.get("CustomerMetadataProperties", {}),
        )["ModelPackageArn"]
        return f"registered {arn.rsplit('/', 1)[-1]} from {data_url}"

    def empty_for_teardown(self) -> str:
        s3, ddb = self.emu.client("s3"), self.emu.client("dynamodb")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] != self.settings["state_bucket"]]
        for name in names:
            s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={})
        for name in names:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
                items = page.get("Versions", []) + page.get("DeleteMarkers", [])
                for start in range(0, len(items), 1000):
                    batch = [{"Key": i["Key"], "VersionId": i["VersionId"]} for i in items[start : start + 1000]]
                    s3.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
        for table in ddb.list_tables()["TableNames"]:
            ddb.update_table(TableName=table, DeletionProtectionEnabled=False)
        return f"emptied {len(names)} buckets; deletion protection off"

    def release_resources(self) -> str:
        """Delete what releases and the pipeline created (endpoints, models, images, packages), as the guide says."""
        sm, done = self.emu.client("sagemaker"), []
        for e in sm.list_endpoints()["Endpoints"]:
            sm.delete_endpoint(EndpointName=e["EndpointName"])
            done.append(e["EndpointName"])
        for c in sm.list_endpoint_configs()["EndpointConfigs"]:
            sm.delete_endpoint_config(EndpointConfigName=c["EndpointConfigName"])
        for m in sm.list_models()["Models"]:
            sm.delete_model(ModelName=m["ModelName"])
        for p in sm.list_pipelines()["PipelineSummaries"]:
            sm.delete_pipeline(PipelineName=p["PipelineName"])
        ecr = self.emu.client("ecr")
        for repo in ecr.describe_repositories()["repositories"]:
            images = ecr.list_images(repositoryName=repo["repositoryName"])["imageIds"]
            if images:
                ecr.batch_delete_image(repositoryName=repo["repositoryName"], imageIds=images)
        packages = 0
        for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]:
            listed = sm.list_model_packages(ModelPackageGroupName=g["ModelPackageGroupName"])
            for package in listed["ModelPackageSummaryList"]:
                sm.delete_model_package(ModelPackageName=package["ModelPackageArn"])
                packages += 1
        return f"deleted endpoints {done}, their configs and models, the pipeline, images, {packages} model packages"

    def nothing_left(self) -> str:
        left = checks.leftovers(self.emu, {self.settings["state_bucket"]})
        if left:
            raise AssertionError(f"left behind: {left}")
        return "nothing left but the state bucket"

    def serving(self, stage: str, version: str) -> bool:
        return self.check(
            f"{stage} serves version {version}",
            lambda: checks.expect_serving(self.emu, self.ws, stage, version, self.photo),
        )


def run(flow: Flow) -> None:
    """The whole flow; each part runs even when an earlier one failed, so the table shows every step."""
    ws, f = flow.ws, flow
    f.doc_step("Create the state bucket", "### 1. The state bucket")
    # `make bootstrap-apply` asks for confirmation: the answer is given as Terraform's -auto-approve.
    bootstrap = "### 3. The bootstrap stack, with administrator credentials (once)"
    f.doc_step("Bootstrap stack", bootstrap, {"TF_CLI_ARGS_apply": "-auto-approve"})
    f.runner.record("Subject template of GitHub's OIDC tokens", doc_line(ws, "gh api -X PUT"), True, 0.0,
                    "stood in: no GitHub here (the emulator does not check tokens)")  # fmt: skip
    f.workflow("deploy.yml")  # the first run applies staging
    if "production" not in f.settings.get("skip_apply", ()):
        where = doc_line(ws, "make infra-apply ENV=production")
        f.shell("Apply production (operator)", where, "make infra-apply ENV=production")
    f.runner.action("Upload the training photos", "rehearsal (no documented step)", f.upload_photos)
    if f.settings.get("model_artifact"):
        f.runner.action("Register version 1 (prebuilt model)", "rehearsal", f.prebuilt_version)
    else:
        f.workflow("retrain.yml")
        f.runner.action("Keep the trained model", "rehearsal", f.keep_trained)
    approve = doc_line(ws, "mlops approve N")
    f.shell("Approve version 1", approve, 'mlops approve 1 --backend aws --by rehearsal --reason "gate passed"')
    f.workflow("deploy.yml")
    f.serving("staging", "1")
    f.runner.action("Register a broken candidate (version 2)", "rehearsal", f.broken_candidate)
    f.shell("Approve version 2", approve, 'mlops approve 2 --backend aws --by rehearsal --reason "broken on purpose"')
    f.workflow("deploy.yml", expect_failure="Promote")
    f.serving("staging", "1")
    f.runner.action("Register version 3", "rehearsal", f.second_good_candidate)
    f.shell("Approve version 3", approve, 'mlops approve 3 --backend aws --by rehearsal --reason "good"')
    f.workflow("deploy.yml")
    f.serving("staging", "3")
    f.shell(
        "Manual rollback (staging)",
        doc_line(ws, "mlops rollback --backend aws"),
        "mlops rollback --backend aws --stage staging",
    )
    f.serving("staging", "1")
    f.workflow("promote.yml", {"inputs": {"model_version": "3", "reason": "rehearsal"}})
    f.serving("staging", "3")
    f.serving("production", "3")
    f.workflow("deploy.yml")
    f.serving("staging", "3")
    f.runner.action("Delete what releases created", doc_line(ws, "Delete first what releases"), f.release_resources)
    f.runner.action(
        "Empty the buckets, deletion protection off", doc_line(ws, "Empty the buckets"), f.empty_for_teardown
    )
    destroy = {"TF_CLI_ARGS_destroy": "-auto-approve"}
    f.doc_step("Destroy both environments", "## Tearing down", destroy)
    f.doc_step("Destroy the bootstrap stack", "Destroy the bootstrap stack last", destroy)
    f.check("Nothing left behind", f.nothing_left)


def link_venv(shared: Path, venv: Path, extras: set[str]) -> None:
    """The checkout's .venv: links to the shared virtualenv, with stamp files and a bin/ of its own.

    `make` targets that depend on `venv` find it installed (a stamp per EXTRAS the workflows name);
    `uv` is replaced by a stub that fails, so nothing from the checkout can re-sync the shared
    environment (a sync would repoint its editable install at the checkout)."""
    venv.mkdir()
    for entry in shared.iterdir():
        if entry.name in (".lock", "bin") or entry.name.startswith((".installed", ".uv-")):
            continue
        (venv / entry.name).symlink_to(entry)
    for stamp in [p.name for p in shared.glob(".uv-*")] + [".installed"]:
        (venv / stamp).touch()  # newer than every file of the fresh clone
    for extra in extras - {"all"}:
        (venv / f".installed-{'-'.join(extra.split())}").touch()
    (venv / "bin").mkdir()
    for entry in (shared / "bin").iterdir():
        if entry.name != "uv":
            (venv / "bin" / entry.name).symlink_to(entry)
    stub = venv / "bin" / "uv"
    stub.write_text(
        "#!/bin/sh\necho 'rehearsal: packages are not installed here (the shared .venv is used)' >&2\nexit 3\n"
    )
    stub.chmod(0o755)


def workflow_extras(workspace: Path) -> set[str]:
    """Every EXTRAS value the workflows set (`EXTRAS: x y` or `EXTRAS=x`)."""
    found = set()
    for path in (workspace / WORKFLOWS).glob("*.yml"):
        for match in re.finditer(r"EXTRAS(?::\s*|=)[\"']?([a-z][a-z \-]*[a-z])", path.read_text()):
            found.add(match.group(1).strip())
    return found


def prepare_workspace(repo: Path, workspace: Path) -> str:
    """actions/checkout: a clone of the repository's HEAD, with the shared .venv linked in; returns the SHA."""
    if workspace.exists():
        shutil.rmtree(workspace)
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(repo), str(workspace)], check=True)
    link_venv(repo / ".venv", workspace / ".venv", workflow_extras(workspace))
    lambda_zip = repo / "build" / "lambda.zip"  # reuse what `make lambda-zip` built when it is current
    sources = [p for d in ("lambda", "serving") for p in (repo / d).rglob("*") if p.is_file()]
    sources.append(repo / "infra" / "tools" / "lambda_zip.py")
    if lambda_zip.is_file() and all(p.stat().st_mtime <= lambda_zip.stat().st_mtime for p in sources):
        (workspace / "build").mkdir(exist_ok=True)
        shutil.copyfile(lambda_zip, workspace / "build" / "lambda.zip")  # newer than the fresh clone
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workspace, capture_output=True, text=True, check=True)
    return sha.stdout.strip()
