"""`mlops demo`: the whole lifecycle on this machine, stage by stage, with the time of each stage."""

from __future__ import annotations

import json
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3

from mlops.cli.common import console

if TYPE_CHECKING:
    from mlops.backends.base import Release
    from mlops.backends.local import LocalBackend
    from mlops.smoke import SmokeConfig
    from pipelines.local_runner import RunResult

REVIEWER = "demo (standing in for the human reviewer)"


@contextmanager
def stage(title: str) -> Iterator[None]:
    console.rule(f"[bold]{title}")
    started = time.perf_counter()
    yield
    console.print(f"[dim]  ✓ {title} — {time.perf_counter() - started:.1f} s[/]")


def swapped_labels_artifact(good: Path, dest_dir: Path) -> Path:
    """A copy of a good artifact whose metadata swaps the labels: it answers dog for cats."""
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(good, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        meta_path = Path(tmp) / "metadata.json"
        meta = json.loads(meta_path.read_text())
        meta["labels"] = list(reversed(meta["labels"]))
        meta["version"] = f"{meta['version']}-broken"
        meta_path.write_text(json.dumps(meta, indent=2))
        dest_dir.mkdir(parents=True, exist_ok=True)
        out = dest_dir / "model.tar.gz"
        with tarfile.open(out, "w:gz") as tar:
            for f in sorted(Path(tmp).iterdir()):
                tar.add(f, arcname=f.name)
    return out


def classify(api_url: str, photos: list[tuple[Path, str]]) -> list[dict[str, Any]]:
    http = urllib3.PoolManager(timeout=10.0, retries=False)
    rows = []
    for path, truth in photos:
        started = time.perf_counter()
        resp = http.request(
            "POST", api_url + "/predict", body=path.read_bytes(), headers={"Content-Type": "image/jpeg"}
        )
        ms = (time.perf_counter() - started) * 1000
        data = json.loads(resp.data)
        rows.append(
            {
                "photo": path.name,
                "truth": truth,
                "status": resp.status,
                "label": data.get("label"),
                "confidence": data.get("confidence"),
                "latency_ms": round(ms, 1),
                "model_version": data.get("model_version"),
            }
        )
        mark = "[green]✓[/]" if data.get("label") == truth else "[red]✗[/]"
        conf = data.get("confidence") or 0.0
        console.print(
            f"  {mark} {path.name:<14} → {data.get('label')!s:<4} confidence {conf:.3f}  "
            f"{ms:6.1f} ms  (model version {data.get('model_version')})"
        )
    return rows


@contextmanager
def steady_client(api_url: str, photo: Path) -> Iterator[dict[str, Any]]:
    """Clients keep sending a photo while a release shifts traffic; counts answers by model version."""
    counts: dict[str, Any] = {"answers": {}, "failed": 0}
    halt = threading.Event()

    def loop() -> None:
        http = urllib3.PoolManager(timeout=10.0, retries=False)
        while not halt.is_set():
            resp = http.request(
                "POST", api_url + "/predict", body=photo.read_bytes(), headers={"Content-Type": "image/jpeg"}
            )
            if resp.status == 200:
                version = json.loads(resp.data).get("model_version")
                counts["answers"][version] = counts["answers"].get(version, 0) + 1
            else:
                counts["failed"] += 1
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        halt.set()
        thread.join(timeout=15)


def released(release: Release | None) -> Release:
    """promote() returns None only when there is nothing to release; each demo stage has a version to release."""
    if release is None:
        raise RuntimeError("promote released nothing")
    return release


def progressive_demo(
    backend: LocalBackend,
    result: RunResult,
    broken: Path,
    photo: Path,
    smoke: SmokeConfig,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """One canary release of a good candidate and one shadow refusal of a labels-swapped one."""
    from mlops.release import approve, promote
    from mlops.release.traffic import ShadowRefused, TrafficPlan

    out: dict[str, Any] = {}
    with stage("7. Canary: 10 % of requests to a new version, watched, then all of it"):
        good = backend.registry.register(result.run_id, result.artifact.as_uri(), result.accuracy, "demo-canary")
        approve(backend, good.version, REVIEWER, "demo: canary release")
        with steady_client(backend.api_url(), photo) as seen:
            release = released(
                promote(backend, good.version, "demo", smoke, log=log, plan=TrafficPlan(strategy="canary"))
            )
        step = release.traffic["steps"][0]
        console.print(
            f"  canary step: {step['served']['candidate']} of {sum(step['served'].values())} requests "
            f"({step['share']:.1%}) served by version {good.version}; no breach; now live"
        )
        console.print(f"  client answers by model version: {seen['answers']}, failed: {seen['failed']}")
        out["canary"] = {"version": good.version, "step": step, "client": seen}
    with stage("8. Shadow: a labels-swapped candidate gets a copy of live requests and is refused"):
        bad = backend.registry.register(result.run_id, broken.as_uri(), result.accuracy, "demo-shadow")
        approve(backend, bad.version, REVIEWER, "demo: deliberately broken candidate")
        plan = TrafficPlan(strategy="shadow", shadow_min_requests=20, p95_budget_ms=smoke.p95_budget_ms)
        with steady_client(backend.api_url(), photo) as seen:
            try:
                promote(backend, bad.version, "demo", smoke, log=log, plan=plan)
                raise RuntimeError("the labels-swapped candidate passed its shadow test")
            except ShadowRefused as exc:
                console.print(f"  [yellow]{exc}[/]")
        record = next(r for r in reversed(backend.list_releases()) if r.model_version == bad.version)
        shadow = record.traffic["shadow"]
        console.print(
            f"  agreement {shadow['agreement']:.1%} over {shadow['compared']} mirrored requests; "
            f"live×candidate {shadow['confusion']}; p95 live {shadow['live_p95_ms']} ms, "
            f"candidate {shadow['candidate_p95_ms']} ms"
        )
        console.print(f"  client answers by model version: {seen['answers']}, failed: {seen['failed']}")
        out["shadow"] = {"version": bad.version, **shadow, "client": seen}
    return out


def run_demo(
    data_dir: Path, threshold: float, train_per_class: int, eval_per_class: int, finetune_epochs: int | None
) -> dict[str, Any]:
    from mlops.backends.local import LocalBackend
    from mlops.cli.pipeline import local_workspace
    from mlops.release import PromotionFailed, approve, promote, status
    from mlops.smoke import SmokeConfig, smoke_photos
    from pipelines.local_runner import run_pipeline

    backend = LocalBackend()
    summary: dict[str, Any] = {}
    t0 = time.perf_counter()
    with stage("1. Local stack: API front"):
        from mlops.stack import bring_up

        info = bring_up()
        live_now = f"serving model version {info['model_version']}" if info["model_version"] else "no model yet"
        console.print(f"  API front on {info['api_url']} ({live_now})")
    with stage("2. Pipeline: train → evaluate → accuracy gate → register"):
        hp = {}
        if train_per_class:
            hp["max-images-per-class"] = str(train_per_class)
        if finetune_epochs is not None:
            hp["finetune-epochs"] = str(finetune_epochs)
        result = run_pipeline(
            data_dir, threshold, hp, eval_per_class, lambda s: console.print(f"  ▶ {s}"), workspace=local_workspace()
        )
        console.print(
            f"  test accuracy {result.accuracy:.4f} ≥ threshold {result.threshold:.2f}: registered version "
            f"{result.version} as PendingManualApproval"
        )
        summary["version"], summary["accuracy"] = result.version, result.accuracy
    with stage(f"3. Manual approval of version {result.version}"):
        mv = approve(backend, result.version, REVIEWER, "demo run")
        console.print(f"  version {mv.version}: {mv.status} by {REVIEWER}")
    smoke = SmokeConfig(photos_dir=data_dir / "test")
    with stage(f"4. Promote version {result.version} (blue/green) and smoke-test through the API"):
        release = released(promote(backend, result.version, "demo", smoke, log=lambda m: console.print(f"  {m}")))
        console.print(
            f"  smoke: {release.smoke.get('correct')}/{release.smoke.get('total')} photos right, "
            f"p95 {release.smoke.get('p95_ms')} ms"
        )
    photos = smoke_photos(SmokeConfig(photos_dir=data_dir / "test", photos_per_class=3))
    with stage("5. Classify photos through the API"):
        summary["answers"] = classify(backend.api_url(), photos)
    with stage("6. Safety net: a broken candidate (labels swapped) is promoted and rolled back"):
        broken = swapped_labels_artifact(result.artifact, backend.home / "models" / f"broken-{result.run_id}")
        bad = backend.registry.register(result.run_id, broken.as_uri(), result.accuracy, "demo-broken")
        approve(backend, bad.version, REVIEWER, "demo: deliberately broken candidate")
        console.print(f"  registered and approved version {bad.version} (labels swapped on purpose)")
        try:
            promote(backend, bad.version, "demo", smoke, log=lambda m: console.print(f"  {m}"))
            raise RuntimeError("the broken candidate passed its smoke tests")
        except PromotionFailed as exc:
            console.print(f"  [yellow]{exc}[/]")
        summary["rolled_back_version"] = bad.version
        console.print("  the good version still answers:")
        summary["after_rollback"] = classify(backend.api_url(), photos[:1] + photos[-1:])
    summary.update(progressive_demo(backend, result, broken, photos[0][0], smoke, lambda m: console.print(f"  {m}")))
    live = status(backend)
    summary["live"] = live
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    console.rule("[bold green]Done")
    console.print(
        f"  live: model version {live['model_version']} (release {live['release_id']}); total {summary['seconds']} s"
    )
    console.print(f"  web page:   {backend.api_url()}/")
    console.print(
        f"  MLflow UI:  make mlflow-ui   (or: mlflow ui --backend-store-uri sqlite:///{backend.home}/mlflow.db)"
    )
    console.print("  stop:       make down")
    return summary
