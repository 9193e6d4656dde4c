"""Run workflow steps as a GitHub runner would: one job's `run:` steps in order, in the job's environment.

What the runner provides is stood in for: `actions/checkout` is the rehearsal's copy of the
repository (GITHUB_WORKSPACE); `actions/setup-python` puts a Python 3.11 on PATH;
`hashicorp/setup-terraform` is the terraform on PATH (with the local provider mirror as
mk/infra.mk finds it); `aws-actions/configure-aws-credentials` exports fake credentials, the
region and the emulator's endpoint (AWS_ENDPOINT_URL, and for Terraform TF_VAR_aws_endpoint_url,
TF_VAR_emulator and the S3 backend settings an emulator needs). Steps a runner does with tools this
machine lacks are replaced, by the text of their command, with what they leave behind (STAND_INS).
Each `run:` is executed by `bash --noprofile --norc -eo pipefail`, as GitHub does; GITHUB_ENV,
GITHUB_PATH, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY are files, read back after each step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rehearsal.cancel import Cancel, start_cancelling
from rehearsal.workflows import Job, Step, read_jobs, should_run, substitute

STEP_TIMEOUT = float(os.environ.get("REHEARSAL_STEP_TIMEOUT", "1200"))


class StopFlow(Exception):
    """Raised after the step the run was asked to stop after."""


@dataclass
class Result:
    step: str
    workflow: str  # file:line
    ok: bool
    seconds: float
    note: str = ""
    log: str = ""  # the step's output, for steps that ran a command


@dataclass
class Runner:
    workspace: Path
    base_env: dict[str, str]
    log_dir: Path
    stand_ins: dict[str, Callable[[Step, dict[str, str]], str]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    echo: Callable[[str], None] = print
    stop_after: str = ""
    log_prefix: str = ""  # told apart from the main flow's logs: a step run beside it
    # aws-actions/configure-aws-credentials: the job's role session (rehearsal.oidc.assume); None keeps
    # the environment's credentials.
    assume_role: Callable[[Job, Step, dict], dict[str, str]] | None = None
    # What IAM refused since a moment (time.time()): a failed step's note names it.
    refusals: Callable[[float], list[str]] | None = None

    def record(self, name: str, where: str, ok: bool, seconds: float, note: str = "") -> Result:
        if not ok and self.refusals is not None:
            refused = self.refusals(time.time() - seconds - 1)
            note = "; ".join([note, *refused[:3]]) if refused else note
        result = Result(name, where, ok, seconds, note)
        self.results.append(result)
        mark = "ok" if ok else "FAILED"
        self.echo(f"<<< {mark} in {seconds:.1f} s: {name} ({where}){' - ' + note if note else ''}")
        return result

    def maybe_stop(self) -> None:
        if self.stop_after and self.results and self.stop_after in self.results[-1].step:
            raise StopFlow(self.stop_after)

    def action(self, name: str, where: str, fn: Callable[[], str | None]) -> bool:
        """A step that is not in a workflow (a documented manual step, or a check of the emulator's state)."""
        self.echo(f">>> {name} ({where})")
        started = time.monotonic()
        try:
            note = fn() or ""
            ok = True
        except Exception as exc:
            note, ok = f"{type(exc).__name__}: {exc}", False
        self.record(name, where, ok, time.monotonic() - started, note)
        self.maybe_stop()
        return ok

    def job(
        self,
        workflow: Path,
        context: dict,
        expect_failure: str | None = None,
        skip: tuple[str, ...] = (),
        cancel: Cancel | None = None,
    ) -> bool:
        """Run every job of the workflow; `expect_failure` names the one step expected to fail, `skip` steps
        (by name) that changed nothing in an earlier run of the same commit and are left out, `cancel` the
        step during which the job is cancelled (rehearsal.cancel).

        Returns whether the job went as expected (a failing step that was expected counts as passed)."""
        all_ok = True
        for job in read_jobs(workflow, self.workspace):
            all_ok = self._run_job(job, context, expect_failure, skip, cancel) and all_ok
        return all_ok

    def _run_job(
        self, job: Job, context: dict, expect_failure: str | None, skip: tuple[str, ...], cancel: Cancel | None
    ) -> bool:
        files = {
            k: self.log_dir / f"{job.workflow.replace('/', '_')}-{k}" for k in ("env", "path", "output", "summary")
        }
        for f in files.values():
            f.write_text("")
        env = dict(self.base_env)
        env.update(
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_ENV=str(files["env"]),
            GITHUB_PATH=str(files["path"]),
            GITHUB_OUTPUT=str(files["output"]),
            GITHUB_STEP_SUMMARY=str(files["summary"]),
            GITHUB_WORKFLOW=job.workflow,
            GITHUB_JOB=job.name,
        )
        context = {**context, "_ok": True}
        env.update({k: substitute(v, context) for k, v in job.env.items()})
        if self.assume_role is not None:  # a job starts without AWS credentials, as on GitHub
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                env.pop(name, None)
        as_expected = True
        for step in job.steps:
            if step.uses and "configure-aws-credentials" in step.uses and self.assume_role is not None:
                if should_run(step, context):
                    context["_ok"] = self._credentials(job, step, env, context) and context["_ok"]
                    as_expected = as_expected and bool(context["_ok"])
                continue
            if step.run is None:
                continue  # `uses:` steps: stood in for by the environment (see the module docstring)
            if not should_run(step, context):
                self.echo(f"--- skipped: {step.name} ({step.where})")
                continue
            if any(name in step.name for name in skip):
                self.record(step.name, step.where, True, 0.0, "left out: an earlier run of this commit did it")
                continue
            self._read_env_files(files, env)
            step_env = {**env, **{k: substitute(v, context) for k, v in step.env.items()}}
            cancel_on = cancel.when if cancel is not None and cancel.step in step.name else ""
            ok, note = self._run_step(step, step_env, context, cancel_on)
            if cancel_on:  # the step was cancelled (or ended before its line): the job is, as on GitHub
                context["_cancelled"], passed = True, note.startswith("cancelled")
                self.results[-1].ok, self.results[-1].note = passed, note
                as_expected = as_expected and passed
                continue
            context["_ok"] = context["_ok"] and ok  # a failed step fails the job, as on GitHub
            if expect_failure is not None and expect_failure in step.name:
                passed = not ok
                note = ("failed as expected" if passed else "expected to fail, but passed") + (
                    f" ({note})" if note else ""
                )
                self.echo(f"<<< {'ok' if passed else 'FAILED'}: {step.name}: {note}")
            else:
                passed = ok
            self.results[-1].ok, self.results[-1].note = passed, note
            as_expected = as_expected and passed
            self.maybe_stop()
        return as_expected

    def _credentials(self, job: Job, step: Step, env: dict[str, str], context: dict) -> bool:
        """The role session of the job (its OIDC token exchanged at STS), or a failed step naming why."""
        assert self.assume_role is not None
        name = f"Assume {step.with_.get('role-to-assume', 'a role')} (OIDC)"
        self.echo(f">>> {name} ({step.where})")
        started = time.monotonic()
        try:
            env.update(self.assume_role(job, step, context))
            role = env.get("AWS_ACCESS_KEY_ID", "")[:8]
            note, ok = (
                f"session credentials {role}... for {substitute(step.with_.get('role-to-assume', ''), context)}",
                True,
            )
        except Exception as exc:
            note, ok = f"{type(exc).__name__}: {exc}", False
        self.record(substitute(name, context), step.where, ok, time.monotonic() - started, note)
        return ok

    def _read_env_files(self, files: dict[str, Path], env: dict[str, str]) -> None:
        for line in files["path"].read_text().splitlines():
            if line.strip() and line.strip() not in env["PATH"].split(os.pathsep):
                env["PATH"] = line.strip() + os.pathsep + env["PATH"]
        for line in files["env"].read_text().splitlines():
            if "=" in line:
                key, _, value = line.partition("=")
                env[key] = value

    def _run_step(self, step: Step, env: dict[str, str], context: dict, cancel_on: str = "") -> tuple[bool, str]:
        self.echo(f">>> {step.name} ({step.where})")
        started = time.monotonic()
        stand_in = next((fn for text, fn in self.stand_ins.items() if text in (step.run or "")), None)
        if stand_in is not None:
            try:
                note, ok = "stood in: " + stand_in(step, env), True
            except Exception as exc:
                note, ok = f"stand-in failed: {exc}", False
            return ok, self.record(step.name, step.where, ok, time.monotonic() - started, note).note
        missing = sorted(k for k, v in env.items() if v is None)
        if missing:
            raise ValueError(f"no value for {', '.join(missing)}")
        script = substitute(step.run or "", context)
        log = self.log_dir / f"{self.log_prefix}{len(self.results):02d}-{Path(step.workflow).stem}-{step.index}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=self.workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=bool(cancel_on),  # a cancelled step's tree is killed as one process group
            )  # fmt: skip
            assert proc.stdout is not None
            cancelled_at = ""
            for line in proc.stdout:
                out.write(line)
                self.echo("    " + line.rstrip())
                if cancel_on and not cancelled_at and cancel_on in line:
                    cancelled_at = line.strip()[:120]
                    self.echo(f"--- cancelling the job: SIGINT to the step's process at {cancelled_at!r}")
                    start_cancelling(proc)
            try:
                code = proc.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = -9
        note = "" if code == 0 else f"exit {code}; log {log}"
        if cancelled_at:
            note = f"cancelled at {cancelled_at!r}: exit {code}; log {log}"
        elif cancel_on:
            note = f"not cancelled: {cancel_on!r} never printed; exit {code}; log {log}"
        result = self.record(step.name, step.where, code == 0, time.monotonic() - started, note)
        result.log = str(log)
        return code == 0, result.note  # with what IAM refused during the step, if it failed


def table(results: list[Result]) -> str:
    width = max([len(r.step) for r in results] + [4])
    where = max([len(r.workflow) for r in results] + [8])
    lines = [f"{'step':<{width}}  {'workflow':<{where}}  {'result':<6}  {'seconds':>7}", "-" * (width + where + 25)]
    for r in results:
        lines.append(
            f"{r.step:<{width}}  {r.workflow:<{where}}  {'passed' if r.ok else 'FAILED':<6}  {r.seconds:>7.1f}"
        )
    return "\n".join(lines)


def python_shim(folder: Path) -> Path:
    """actions/setup-python: `python` and `python3` of the interpreter the virtualenv was made from."""
    folder.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    for name in ("python", "python3"):
        target = folder / name
        target.unlink(missing_ok=True)
        target.symlink_to(base)
    return folder
