"""The documented AWS flow, in order: bootstrap from docs/deploy-aws.md, then the workflows' own steps.

state bucket → bootstrap → deploy.yml (applies staging; nothing approved yet) → the operator
applies production while retrain.yml runs (real training and evaluation: version 1) → approve 1,
deploy.yml promotes it (its re-apply changes nothing; the next two runs of the commit leave the apply
out) → a broken candidate (version 2) is rolled back by deploy.yml → version 3 released → manual
rollback → the broken candidate refused by a shadow test while a client sends requests → promote.yml
takes version 1 to production (its first release) → version 3 released to staging in linear steps,
then by promote.yml to production as a canary, each while a client sends requests (how many requests
each version answered is checked) → an ordinary push changes nothing, its apply included → teardown
as documented, leaving nothing behind.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rehearsal import checks
from rehearsal.cancel import Cancel
from rehearsal.runner import Runner
from rehearsal.teardown import TeardownSteps
from rehearsal.versions import VersionSteps
from rehearsal.workflows import Step

DOCS = "docs/deploy-aws.md"
# The guide's bootstrap step (`make bootstrap-apply` asks for confirmation: given as -auto-approve).
BOOTSTRAP = "### 3. The bootstrap stack, with administrator credentials (once)"
WORKFLOWS = ".github/workflows"
SAME_COMMIT = ("Terraform apply",)  # what a deploy run of a commit already applied may leave out


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


class Flow(VersionSteps, TeardownSteps):
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

    def beside(self, name: str, where: str, script: str) -> Callable[[], bool]:
        """Start a documented shell step that runs beside the next ones (its output goes to its log only);
        the returned call waits for it, prints its output and records it in the table."""
        path, line = where.rsplit(":", 1)
        step = Step(path, "docs", 0, int(line) if line.isdigit() else 0, name, script, None, None)
        env = {**self.runner.base_env, **self.settings["operator_env"]}
        lines: list[str] = []
        side = dataclasses.replace(self.runner, results=[], echo=lines.append, stop_after="", log_prefix="beside-")
        pool = ThreadPoolExecutor(1)
        future = pool.submit(side._run_step, step, env, self.context)
        self.runner.echo(f">>> {name} ({where}), beside the next steps")

        def join() -> bool:
            ok, _ = future.result()
            pool.shutdown()
            self.runner.echo("\n".join(lines))
            self.runner.results.extend(side.results)
            return ok

        return join

    def doc_step(self, name: str, heading: str, extra: dict[str, str] | None = None) -> bool:
        """Run the first bash block under `heading` of the deployment guide."""
        try:
            script, line = doc_block(self.ws, heading)
        except StopIteration:
            self.runner.record(name, DOCS, False, 0.0, f"no bash block under {heading!r}")
            return False
        return self.shell(name, f"{DOCS}:{line}", script, extra)

    def workflow(
        self,
        file: str,
        context: dict | None = None,
        expect_failure: str | None = None,
        skip: tuple[str, ...] = (),
        cancel: Cancel | None = None,
    ) -> bool:
        where = self.ws / WORKFLOWS / file
        return self.runner.job(where, {**self.context, **(context or {})}, expect_failure, skip, cancel)

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

    def photo_subset(self) -> str:
        """The rehearsal's share of the photos (train_per_class, test_per_class): a folder of symlinks that the
        documented upload step reads as DATA_DIR."""
        root, subset = Path(self.settings["data_dir"]), Path(self.settings["out"]) / "photos"
        shutil.rmtree(subset, ignore_errors=True)
        for split in ("train", "test"):
            for label in ("cat", "dog"):
                (subset / split / label).mkdir(parents=True)
                for path in sorted((root / split / label).glob("*.jpg"))[: self.settings[f"{split}_per_class"]]:
                    (subset / split / label / path.name).symlink_to(path.resolve())
        return str(subset)

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

    def shadow_refused(self, version: str, live: str) -> bool:
        """Shadow-test a labels-swapped version in staging while a client sends requests: the promotion
        is refused (its agreement printed), nothing moves, and no client ever got the candidate's answer."""
        name = f"Shadow test of version {version} (staging), refused"
        command = f"mlops promote {version} --backend aws --stage staging --strategy shadow --shadow-min-requests 20"
        with checks.client_traffic(self.emu, self.ws, "staging", self.photo) as seen:
            refused = not self.shell(name, doc_line(self.ws, "--strategy shadow"), command)
        result = self.runner.results[-1]
        said = Path(result.log).read_text() if result.log else ""
        result.ok = refused and "agreement" in said and "refused" in said
        result.note = "refused as expected" if result.ok else f"expected a refusal naming the agreement ({result.log})"
        self.runner.echo(f"<<< {'ok' if result.ok else 'FAILED'}: {name}: {result.note}")

        def clients() -> str:
            wrong = {k: n for k, n in seen.items() if k != f"200 version {live}"}
            if not seen or wrong:
                raise AssertionError(f"clients got {seen}: every answer should be 200 from version {live}")
            return f"{sum(seen.values())} client requests during the shadow test, all answered by version {live}"

        return self.check(f"No client saw version {version} during its shadow test", clients) and result.ok

    def with_clients(self, stage: str, release: Callable[[], bool]) -> bool:
        """A release while a client sends requests through the stage's public API; then how many requests each
        function version answered while the alias split them (the emulator's record), in the table."""
        started = time.time()
        with checks.client_traffic(self.emu, self.ws, stage, self.photo) as seen:
            ok = release()
        split = self.check(
            f"Requests each version answered ({stage})",
            lambda: checks.traffic_split(self.emu, self.ws, stage, started, seen),
        )
        return split and ok

    def infra_unchanged(self, stage: str) -> str:
        """The last Terraform apply of the stage re-applied a stack that was already applied: no change."""
        name = f"Terraform apply ({stage})"
        last = next((r for r in reversed(self.runner.results) if r.step == name and r.log), None)
        if last is None:
            raise AssertionError(f"no {name!r} step ran")
        text = Path(last.log).read_text()
        if "Resources: 0 added, 0 changed, 0 destroyed" not in text and "No changes." not in text:
            found = re.findall(r"Resources: \d+ added, \d+ changed, \d+ destroyed|Plan: .*", text)
            raise AssertionError(f"the re-apply was not clean: {found[-1] if found else 'no summary'} ({last.log})")
        return f"{last.workflow}: no changes"

    def promote_was_noop(self) -> str:
        last = next((r for r in reversed(self.runner.results) if r.step.startswith("Promote") and r.log), None)
        text = Path(last.log).read_text() if last else ""
        if "is already live" not in text:
            raise AssertionError(f"the promotion of an ordinary push did something ({last.log if last else 'no log'})")
        return f"{last.workflow}: " + next(line.strip() for line in text.splitlines() if "already live" in line)

    def serving(self, stage: str, version: str) -> bool:
        return self.check(
            f"{stage} serves version {version}",
            lambda: checks.expect_serving(self.emu, self.ws, stage, version, self.photo),
        )


def run(flow: Flow) -> None:
    """The whole flow; each part runs even when an earlier one failed, so the table shows every step."""
    ws, f = flow.ws, flow
    f.doc_step("Create the state bucket", "### 1. The state bucket")
    f.doc_step("Bootstrap stack", BOOTSTRAP, {"TF_CLI_ARGS_apply": "-auto-approve"})
    f.runner.record("Subject template of GitHub's OIDC tokens", doc_line(ws, "gh api -X PUT"), True, 0.0,
                    "stood in: tokens carry that subject; STS checks it against each role's trust policy")  # fmt: skip
    f.workflow("deploy.yml")  # the first run applies staging
    production = lambda: True  # noqa: E731
    if "production" not in f.settings.get("skip_apply", ()):
        # Terraform mostly waits on AWS (e.g. S3 lifecycle settling): the operator applies production
        # while the pipeline trains.
        where = doc_line(ws, "make infra-apply ENV=production")
        production = f.beside("Apply production (operator)", where, "make infra-apply ENV=production")
    try:
        f.doc_step("Upload the training photos", "## The training photos", {"DATA_DIR": f.photo_subset()})
        if f.settings.get("model_artifact"):
            f.runner.action("Register version 1 (prebuilt model)", "rehearsal", f.prebuilt_version)
        else:
            f.workflow("retrain.yml")
            f.runner.action("Keep the trained model", "rehearsal", f.keep_trained)
    finally:
        production()
    f.runner.maybe_stop()
    approve = doc_line(ws, "mlops approve N")
    f.shell("Approve version 1", approve, 'mlops approve 1 --backend aws --by rehearsal --reason "gate passed"')
    # The commit is unchanged since the first run applied staging: the runs until the last leave the apply
    # out. The last run, after every release (the first one included), applies again and must change nothing.
    f.workflow("deploy.yml", skip=SAME_COMMIT)
    f.serving("staging", "1")
    f.runner.action("Register a broken candidate (version 2)", "rehearsal", f.broken_candidate)
    f.shell("Approve version 2", approve, 'mlops approve 2 --backend aws --by rehearsal --reason "broken on purpose"')
    f.workflow("deploy.yml", expect_failure="Promote", skip=SAME_COMMIT)
    f.serving("staging", "1")
    f.runner.action("Register version 3", "rehearsal", f.second_good_candidate)
    f.shell("Approve version 3", approve, 'mlops approve 3 --backend aws --by rehearsal --reason "good"')
    f.workflow("deploy.yml", skip=SAME_COMMIT)
    f.serving("staging", "3")
    f.shell(
        "Manual rollback (staging)",
        doc_line(ws, "mlops rollback --backend aws"),
        "mlops rollback --backend aws --stage staging",
    )
    f.serving("staging", "1")
    f.shadow_refused("2", live="1")
    f.serving("staging", "1")
    # Production's first release goes all at once (nothing live to share traffic with); staging serves 1 already.
    f.workflow("promote.yml", {"inputs": {"model_version": "1", "reason": "rehearsal"}})
    f.serving("production", "1")
    linear = ("Linear release of version 3 (staging)", doc_line(ws, "--strategy"),
              "mlops promote 3 --backend aws --stage staging --strategy linear --linear-step-percent 40")  # fmt: skip
    f.with_clients("staging", lambda: f.shell(*linear))
    f.serving("staging", "3")
    canary = {"inputs": {"model_version": "3", "reason": "rehearsal"}}  # production's default strategy
    f.with_clients("production", lambda: f.workflow("promote.yml", canary))
    f.serving("staging", "3")
    f.serving("production", "3")
    repository = f.context["github"]["repository"]
    f.check("Staging's roles cannot change what production serves or trusts",
            lambda: checks.own_model(f.emu, ws, repository))  # fmt: skip
    f.workflow("deploy.yml")
    f.check("The apply after the releases changed nothing", lambda: f.infra_unchanged("staging"))
    f.check("An ordinary push released nothing", f.promote_was_noop)
    f.serving("staging", "3")
    f.runner.action("Delete what releases created", doc_line(ws, "Delete first what releases"), f.release_resources)
    f.runner.action(
        "Empty the buckets, deletion protection off", doc_line(ws, "Empty the buckets"), f.empty_for_teardown
    )
    destroy = {"TF_CLI_ARGS_destroy": "-auto-approve"}
    f.doc_step("Destroy both environments", "## Tearing down", destroy)
    f.doc_step("Destroy the bootstrap stack", "Destroy the bootstrap stack last", destroy)
    f.check("Nothing left behind", f.nothing_left)
