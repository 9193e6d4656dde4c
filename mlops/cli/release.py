"""`mlops approve|reject|promote|smoke|rollback|repair|status`: the release lifecycle over either backend."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlops.cli.common import BackendName, BackendOpt, StageOpt, console, err, fail, print_json
from mlops.cli.common import open_backend as _backend

if TYPE_CHECKING:
    from mlops.smoke import SmokeConfig


def _who(by: str | None) -> str:
    return by or os.environ.get("GITHUB_ACTOR") or getpass.getuser()


def _smoke_config(photos: Path | None, budget: float | None) -> SmokeConfig:
    from mlops.smoke import SmokeConfig

    cfg = SmokeConfig(photos_dir=photos)
    if budget is not None:
        cfg.p95_budget_ms = budget
    return cfg


def register(app: typer.Typer) -> None:
    @app.command()
    def approve(
        version: str,
        backend: BackendOpt = BackendName.local,
        stage: StageOpt = None,
        by: Annotated[str | None, typer.Option(help="Who approves (default: GITHUB_ACTOR or user)")] = None,
        reason: Annotated[str, typer.Option(help="Why")] = "approved for release",
    ) -> None:
        """Approve a model version (the manual gate's action)."""
        _set_status(version, backend, stage, by, reason, reject=False)

    @app.command()
    def reject(
        version: str,
        backend: BackendOpt = BackendName.local,
        stage: StageOpt = None,
        by: Annotated[str | None, typer.Option(help="Who rejects")] = None,
        reason: Annotated[str, typer.Option(help="Why")] = "rejected",
    ) -> None:
        """Reject a model version."""
        _set_status(version, backend, stage, by, reason, reject=True)

    @app.command()
    def promote(
        version: Annotated[
            str | None, typer.Argument(help="Default: the newest Approved version (no-op when it is live)")
        ] = None,
        backend: BackendOpt = BackendName.local,
        stage: StageOpt = None,
        by: Annotated[str | None, typer.Option(help="Who promotes")] = None,
        photos: Annotated[
            Path | None, typer.Option(envvar="SMOKE_PHOTOS_DIR", help="Photos (cat/, dog/), not the version's set")
        ] = None,
        p95_budget_ms: Annotated[float | None, typer.Option(help="Smoke latency budget")] = None,
        strategy: Annotated[
            str | None,
            typer.Option(
                envvar="MLOPS_STRATEGY",
                help="all-at-once | canary | linear | shadow (default: canary in production, else all-at-once)",
            ),
        ] = None,
        canary_percent: Annotated[float, typer.Option(help="canary: share of requests to the candidate")] = 10.0,
        linear_step_percent: Annotated[float, typer.Option(help="linear: share added at each step")] = 25.0,
        step_seconds: Annotated[
            float | None, typer.Option(help="Watch per step (default MLOPS_STEP_SECONDS, else the bake time)")
        ] = None,
        shadow_min_requests: Annotated[int, typer.Option(help="shadow: mirrored requests compared, at least")] = 50,
        shadow_min_agreement: Annotated[float, typer.Option(help="shadow: share of identical labels")] = 0.97,
        qualify_for: Annotated[
            str | None,
            typer.Option(help="Record in this next stage's records that the release passed (production's gate)"),
        ] = None,
    ) -> None:
        """Release a version: canary/linear/shadow phase, switch, smoke-test, bake; roll back on failure."""
        from mlops.backends.base import BackendError
        from mlops.release import PromotionFailed, PromotionRefused
        from mlops.release import promote as do_promote
        from mlops.release.traffic import TrafficPlan

        b = _backend(backend, stage)
        smoke = _smoke_config(photos, p95_budget_ms)
        plan = TrafficPlan(
            strategy=strategy,
            canary_percent=canary_percent,
            linear_step_percent=linear_step_percent,
            step_seconds=step_seconds,
            shadow_min_requests=shadow_min_requests,
            shadow_min_agreement=shadow_min_agreement,
            p95_budget_ms=smoke.p95_budget_ms,
        )
        try:
            with b.session():
                release = do_promote(
                    b,
                    version,
                    _who(by),
                    smoke,
                    log=lambda m: console.print(f"  {m}"),
                    plan=plan,
                    qualify_for=qualify_for,
                )
        except (PromotionRefused, PromotionFailed, BackendError, FileNotFoundError) as exc:
            fail(str(exc))
        if release is None:
            return
        console.print(
            f"[green]version {release.model_version} is live[/] (release {release.release_id}, "
            f"function version {release.lambda_version}, deployment {release.deployment_id})"
        )

    @app.command()
    def rollback(
        backend: BackendOpt = BackendName.local,
        stage: StageOpt = None,
        by: Annotated[str | None, typer.Option(help="Who rolls back")] = None,
    ) -> None:
        """Return endpoint, alias and stage to the previous release (or to the live one, if the stage drifted)."""
        from mlops.backends.base import BackendError
        from mlops.release import PromotionFailed, PromotionRefused
        from mlops.release import rollback as do_rollback

        b = _backend(backend, stage)
        try:
            with b.session():
                target = do_rollback(b, _who(by), log=lambda m: console.print(f"  {m}"))
        except (PromotionRefused, PromotionFailed, BackendError) as exc:
            fail(str(exc))
        console.print(f"[green]version {target.model_version} is live again[/] (release {target.release_id})")

    @app.command()
    def repair(
        backend: BackendOpt = BackendName.local,
        stage: StageOpt = None,
        by: Annotated[str | None, typer.Option(help="Who repairs")] = None,
    ) -> None:
        """Bring the stage back to its last good release when what it serves differs from the records."""
        from mlops.backends.base import BackendError, StageNotDeployed
        from mlops.release import PromotionFailed
        from mlops.release import repair as do_repair

        b = _backend(backend, stage)
        try:
            with b.session():
                target, found = do_repair(b, _who(by), log=lambda m: console.print(f"  {m}"))
        except StageNotDeployed as exc:  # e.g. the job's first apply failed: no release ever ran here
            console.print(f"nothing to repair: {exc}")
            return
        except (PromotionFailed, BackendError) as exc:
            fail(str(exc))
        if found:
            what = f"version {target.model_version} (release {target.release_id})" if target else "nothing"
            console.print(f"[green]repaired[/]: the stage serves {what} again")

    @app.command()
    def smoke(
        backend: BackendOpt = BackendName.local,
        stage: StageOpt = None,
        api_url: Annotated[str | None, typer.Option(help="Default: the backend's API URL")] = None,
        photos: Annotated[
            Path | None, typer.Option(envvar="SMOKE_PHOTOS_DIR", help="Photos (cat/, dog/), not the version's set")
        ] = None,
        p95_budget_ms: Annotated[float | None, typer.Option(help="Latency budget")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Smoke-test the public API: real photos, a bad request, p95 latency."""
        from mlops.backends.base import BackendError
        from mlops.smoke import live_photos, run_smoke

        b = _backend(backend, stage)
        cfg = _smoke_config(photos, p95_budget_ms)
        try:
            with b.session():
                result = run_smoke(api_url or b.api_url(), cfg, live_photos(cfg, b))
        except (FileNotFoundError, BackendError) as exc:
            fail(str(exc))
        if as_json:
            print_json(result.to_dict())
        else:
            console.print(
                f"{result.correct}/{result.total} photos right, p50 {result.p50_ms} ms, p95 {result.p95_ms} ms"
            )
        if not result.passed:
            fail("smoke tests failed: " + "; ".join(result.failures))

    @app.command()
    def status(
        backend: BackendOpt = BackendName.local,
        stage: StageOpt = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        markdown: Annotated[bool, typer.Option("--markdown", help="A Markdown table (job summaries)")] = False,
    ) -> None:
        """What is live: model version, endpoint config, function version, stage deployment, API URL."""
        from mlops.backends.base import BackendError
        from mlops.release import status as live_status

        b = _backend(backend, stage)
        try:
            data = live_status(b)
        except BackendError as exc:
            fail(str(exc))
        if hasattr(b, "processes"):
            data["processes"] = b.processes()
        if as_json:
            print_json(data)
        elif markdown:
            typer.echo("| | |\n|---|---|")
            for k, v in data.items():
                if k != "processes":
                    typer.echo(f"| {k} | {v or '—'} |")
        else:
            for k, v in data.items():
                if k != "processes":
                    console.print(f"{k:>18}: {v}")
        if data["drift"] or data["needs_repair"]:
            err.print(f"[yellow]the stage differs from its live release: run `mlops repair --backend {b.name}`[/]")


def _set_status(version: str, backend: str, stage: str | None, by: str | None, reason: str, reject: bool) -> None:
    from mlops.backends.base import BackendError
    from mlops.release import approve as do_approve

    b = _backend(backend, stage)
    try:
        mv = do_approve(b, version, _who(by), reason, reject=reject)
    except BackendError as exc:
        fail(str(exc))
    console.print(f"version {mv.version}: [bold]{mv.status}[/] by {mv.approved_by or _who(by)} ({reason})")
