"""`mlops demo`: the whole lifecycle on this machine, stage by stage, with the time of each stage."""

from __future__ import annotations

import json
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import urllib3

from mlops.cli_common import console

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


def classify(api_url: str, photos: list[tuple[Path, str]]) -> list[dict]:
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


def run_demo(
    data_dir: Path, threshold: float, train_per_class: int, eval_per_class: int, finetune_epochs: int | None
) -> dict:
    from mlops.backends.local import LocalBackend
    from mlops.cli_pipeline import local_workspace
    from mlops.release import PromotionFailed, approve, promote, status
    from mlops.smoke import SmokeConfig, smoke_photos
    from pipelines.local_runner import run_pipeline

    backend = LocalBackend()
    summary: dict = {}
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
        release = promote(backend, result.version, "demo", smoke, log=lambda m: console.print(f"  {m}"))
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
