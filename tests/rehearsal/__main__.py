"""`make aws-rehearsal`: the documented AWS flow and the workflows' own steps against the emulator.

Prints each step with its time, then a table; writes build/rehearsal/emulator-state.json. Exits 1
when a step did not go as expected. REHEARSAL_FAULTS (module names, importable from PYTHONPATH)
are imported by every Python process the workflow steps start: tests use it to break the product;
`--breakages` runs the breakages of tests/rehearsal/breakages.py instead of the flow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import inputs
from aws_emulator import Emulator, iam_gate, metrics, sagemaker_pipelines
from aws_emulator.context import TIME_SCALE
from aws_emulator.processes import PROCESSES
from aws_emulator.sagemaker_endpoints import endpoint_state
from aws_emulator.server import NETSHIM

from rehearsal import breakages, checks, oidc, scenario
from rehearsal.runner import Runner, StopFlow, python_shim, table
from rehearsal.workspace import prepare_workspace

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "build" / "rehearsal"))
    p.add_argument("--stop-after", default="", help="end after the first step whose name contains this")
    p.add_argument("--model-artifact", default="", help="register this model.tar.gz as version 1 (no retrain)")
    p.add_argument("--skip-apply", action="append", default=[], help="a stage whose first apply is skipped")
    p.add_argument("--breakages", nargs="*", default=None, help="these breakages (none named: all), not the flow")
    args = p.parse_args(argv)
    # Every call authorized as the role that makes it (aws_emulator.iam_gate): what AWS would refuse fails here.
    os.environ.setdefault("AWS_EMULATOR_IAM", "enforce")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_dir, weights = inputs.data_dir(), inputs.weights_file()
    started = time.monotonic()
    workspace = out / "workspace"
    sha = prepare_workspace(REPO, workspace)
    emu = Emulator(out / "emulator").start()
    emu.code_root = workspace  # the serving image is built from the checkout
    sagemaker_pipelines.CONTAINER_ENV.update(PRETRAINED_WEIGHTS=str(weights))
    try:
        state_bucket = f"catdog-terraform-state-{ACCOUNT}"
        venv_bin = str(REPO / ".venv" / "bin")
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
        faults = os.environ.get("REHEARSAL_FAULTS", "")
        # The checkout's code before the editable install of the shared .venv, which points elsewhere.
        extra = filter(None, [os.environ.get("REHEARSAL_FAULTS_PATH", "")])
        pythonpath = os.pathsep.join([str(NETSHIM), str(workspace), *extra])
        base = {
            "PATH": os.pathsep.join([str(python_shim(out / "setup-python")), *path]),
            "HOME": str((out / "home").resolve()),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **emu.env(),
            "PYTHONPATH": pythonpath,
            "REHEARSAL_FAULTS": faults,
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_SHA": sha, "GITHUB_REF": "refs/heads/main",
            "GITHUB_REPOSITORY": "example-org/catdog-mlops", "GITHUB_ACTOR": "rehearsal", "GITHUB_RUN_ID": "1",
            "GITHUB_EVENT_NAME": "workflow_dispatch", "RUNNER_TEMP": str(out / "runner-temp"),
            "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1",
            # Terraform and its AWS provider are Go: each start of the provider builds its whole schema, seconds
            # of CPU mostly spent collecting garbage. A lazier collector (at the cost of memory) on shared CPUs.
            "GOGC": os.environ.get("GOGC", "400"),
            "TF_VAR_aws_endpoint_url": emu.url, "TF_VAR_emulator": "true", "AWS_ENDPOINT_URL_S3": emu.url,
            "TF_CLI_ARGS_init": " ".join(
                f"-backend-config={s}=true"
                for s in ("use_path_style", "skip_credentials_validation", "skip_requesting_account_id",
                          "skip_metadata_api_check", "skip_region_validation")
            ),
            "DATA_DIR": str(data_dir),
            # The environments' bake time (minutes on AWS): seconds here, the alarms still read by the code.
            "MLOPS_BAKE_SECONDS": os.environ.get("REHEARSAL_BAKE_SECONDS", "5"),
            # CloudWatch's lag as the emulator lets it pass: the metric delay, then the longest alarm window of
            # infra/alarms.tf (3 periods of 60 s). Each verdict waits for it; checks.traffic_split verifies it.
            "MLOPS_SIGNAL_LAG_SECONDS": f"{metrics.signal_lag(3 * 60):g}",
            # SageMaker's waits are scaled down here (AWS_EMULATOR_TIME_SCALE): so are the documented poll
            # intervals of endpoint and pipeline status reads (15 s and 30 s by default).
            "ENDPOINT_POLL_SECONDS": f"{max(0.5, 15 * TIME_SCALE):g}",
            # Every service here is a local process on the same shared CPUs as the tests: the smoke tests'
            # latency says nothing of AWS's (make test's local stack checks the 500 ms budget; AWS, its own),
            # so only what they classify decides here.
            "SMOKE_P95_BUDGET_MS": os.environ.get("REHEARSAL_SMOKE_P95_BUDGET_MS", "5000"),
            "PIPELINE_POLL_SECONDS": f"{max(1.0, 30 * TIME_SCALE):g}",
        }  # fmt: skip
        (out / "home").mkdir(exist_ok=True)
        (out / "runner-temp").mkdir(exist_ok=True)
        role = f"arn:aws:iam::{ACCOUNT}:role/catdog-github"
        variables = {"TF_STATE_BUCKET": state_bucket, "AWS_REGION": REGION, "AWS_DEPLOY_ROLE_ARN": f"{role}-deploy",
                     "AWS_DEPLOY_STAGING_ROLE_ARN": f"{role}-deploy-staging", "AWS_RETRAIN_ROLE_ARN": f"{role}-retrain",
                     "AWS_DEPLOY_PRODUCTION_ROLE_ARN": f"{role}-deploy-production"}  # fmt: skip
        context = {
            "github": {
                "sha": sha,
                "run_id": "1",
                "actor": "rehearsal",
                "repository": "example-org/catdog-mlops",
                "event": {},
                "ref": "refs/heads/main",
            },
            "vars": variables,
            "secrets": {},
            "inputs": {},
        }
        logs = out / "logs"
        logs.mkdir(exist_ok=True)
        runner = Runner(workspace, base, logs, stop_after=args.stop_after)
        runner.assume_role = lambda job, step, ctx: oidc.assume(emu, job, step, ctx)
        runner.refusals = lambda since: iam_gate.refusals_since(emu.workdir, since)
        settings = {
            "state_bucket": state_bucket,
            "account": ACCOUNT,
            "artifact_bucket": f"catdog-staging-artifacts-{ACCOUNT}",
            "data_dir": str(data_dir),
            "train_per_class": int(os.environ.get("REHEARSAL_TRAIN_PER_CLASS", "80")),
            "test_per_class": int(os.environ.get("REHEARSAL_TEST_PER_CLASS", "25")),
            "model_artifact": str(Path(args.model_artifact).resolve()) if args.model_artifact else "",
            "out": str(out),
            "python": str(REPO / ".venv" / "bin" / "python"),
            "skip_apply": tuple(args.skip_apply),
            "operator_env": {"PATH": os.pathsep.join([venv_bin, base["PATH"]]), **variables},
        }
        flow = scenario.Flow(runner, emu, context, settings)
        runner.stand_ins = {"make image-push": flow.image_push, "make venv": flow.install}
        try:
            if args.breakages is None:
                scenario.run(flow)
            else:
                breakages.run(flow, args.breakages)
        except StopFlow as stop:
            print(f"stopped after {stop}")
        finally:
            write_state(emu, out / "emulator-state.json")
    finally:
        emu.stop()
    results = [vars(r) for r in runner.results]
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print()
    print(table(runner.results))
    failed = [r for r in runner.results if not r.ok]
    print(f"\n{len(runner.results) - len(failed)} passed, {len(failed)} failed in {time.monotonic() - started:.0f} s")
    for r in failed:
        print(f"FAILED {r.step} ({r.workflow}): {r.note}")
    return 1 if failed else 0


def write_state(emu: Emulator, path: Path) -> None:
    try:
        state = checks.snapshot(emu)
    except Exception as exc:
        state = {"error": f"{type(exc).__name__}: {exc}"}
    state.update(endpoint_fleets=endpoint_state(ACCOUNT, REGION), processes=PROCESSES.describe())
    path.write_text(json.dumps(state, indent=1, default=str))
    print(f"emulator state written to {path}")


if __name__ == "__main__":
    sys.exit(main())
