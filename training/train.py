"""Fine-tune MobileNetV2 on cats vs dogs: the SageMaker training-job entry point.

Contract (same in a SageMaker training job and locally):
  SM_CHANNEL_TRAIN      folder with train/{cat,dog} (or {cat,dog} directly)
  SM_CHANNEL_MANIFEST   folder with the data set's manifest.json (training/data_manifest.py): the photos
                        are checked against it before training, and its SHA-256 goes into metadata.json
  SM_MODEL_DIR          where the serving artifact is written (packed as model.tar.gz afterwards)
  SM_OUTPUT_DATA_DIR    extra outputs (training history)
  hyperparameters       CLI arguments (--finetune-epochs 3 ...)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from serving.preprocess import Preprocessing
from training import tracking
from training.data import PhotoDataset, eval_transform, train_transform
from training.data_manifest import MANIFEST, DataManifestError, verify_split
from training.export import write_artifact
from training.hyperparameters import DEFAULTS as HP
from training.model import IMAGENET_MEAN, IMAGENET_STD, LABELS, WeightsUnavailableError, build_model, set_trainable
from training.photos import DataUnavailableError, list_images, split_train_val

log = logging.getLogger("train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=HP["image-size"])
    p.add_argument("--warmup-epochs", type=int, default=HP["warmup-epochs"], help="head-only epochs on cached features")
    p.add_argument(
        "--finetune-epochs", type=int, default=HP["finetune-epochs"], help="epochs that also train the top blocks"
    )
    p.add_argument(
        "--finetune-blocks", type=int, default=HP["finetune-blocks"], help="feature blocks unfrozen for fine-tuning"
    )
    p.add_argument("--batch-size", type=int, default=HP["batch-size"])
    p.add_argument("--lr-head", type=float, default=1e-3)
    p.add_argument("--lr-finetune", type=float, default=1e-4)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--max-images-per-class", type=int, default=0, help="0 = all (a small slice for quick runs)")
    p.add_argument("--seed", type=int, default=HP["seed"])
    p.add_argument(
        "--quantize", choices=("int8", "none"), default="int8", help="serve an int8 model when it matches the float one"
    )
    p.add_argument("--calibration-images", type=int, default=128, help="training photos that calibrate int8")
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--version", default=os.environ.get("TRAINING_JOB_NAME", ""))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", ""))
    p.add_argument(
        "--data-manifest",
        default=_channel_manifest(),
        help="the data set's manifest.json: the training photos must match it (empty: no check)",
    )
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--output-data-dir", default=os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    p.add_argument("--pretrained-weights", default=os.environ.get("PRETRAINED_WEIGHTS", ""))
    return p.parse_args(argv)


def _channel_manifest() -> str:
    channel = os.environ.get("SM_CHANNEL_MANIFEST", "")
    return str(Path(channel) / MANIFEST) if channel else ""


def _train_root(channel: str) -> Path:
    root = Path(channel)
    return root / "train" if (root / "train").is_dir() else root


@torch.no_grad()
def _features(model: nn.Module, loader: DataLoader, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled backbone features for every photo (the frozen-backbone warm-up trains on these)."""
    model.eval()
    feats, labels = [], []
    for x, y in tqdm(loader, desc=desc, unit="batch", leave=False):
        f = model.features(x)  # type: ignore[attr-defined]
        feats.append(nn.functional.adaptive_avg_pool2d(f, 1).flatten(1))
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def _accuracy(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    model.eval()
    correct, total, loss = 0, 0, 0.0
    for x, y in loader:
        out = model(x)
        loss += nn.functional.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        total += len(y)
    return correct / total, loss / total


def warmup_head(model: nn.Module, train_feats, val_feats, args, run) -> float:
    """Train the new head on cached features of the frozen backbone; returns validation accuracy."""
    head: nn.Module = model.classifier  # type: ignore[assignment]
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr_head, weight_decay=1e-4)
    data = DataLoader(TensorDataset(*train_feats), batch_size=args.batch_size, shuffle=True)
    val_acc = 0.0
    for epoch in tqdm(range(1, args.warmup_epochs + 1), desc="warm-up (head)", unit="epoch"):
        head.train()
        total = 0.0
        for f, y in data:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(head(f), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
        head.eval()
        with torch.no_grad():
            out = head(val_feats[0])
            val_acc = (out.argmax(1) == val_feats[1]).float().mean().item()
            val_loss = nn.functional.cross_entropy(out, val_feats[1]).item()
        run.log_metrics(
            {"train_loss": total / len(data.dataset), "val_accuracy": val_acc, "val_loss": val_loss}, step=epoch
        )
    return val_acc


def finetune(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, args, run, step0: int) -> float:
    """Train the top feature blocks and the head on augmented photos; returns validation accuracy."""
    params = set_trainable(model, args.finetune_blocks)
    opt = torch.optim.AdamW(params, lr=args.lr_finetune, weight_decay=1e-4)
    steps = max(1, args.finetune_epochs * len(train_loader))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr_finetune, total_steps=steps, pct_start=0.2)
    frozen = list(model.features.children())[: len(model.features) - args.finetune_blocks]  # type: ignore[attr-defined]
    val_acc = 0.0
    for epoch in range(1, args.finetune_epochs + 1):
        model.train()
        for block in frozen:
            block.eval()
        for module in model.modules():  # small data: keep every BatchNorm's ImageNet statistics
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        total, n = 0.0, 0
        for x, y in tqdm(train_loader, desc=f"fine-tune {epoch}/{args.finetune_epochs}", unit="batch"):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y, label_smoothing=0.05)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(y)
            n += len(y)
        val_acc, val_loss = _accuracy(model, val_loader)
        run.log_metrics({"train_loss": total / n, "val_accuracy": val_acc, "val_loss": val_loss}, step=step0 + epoch)
        log.info("fine-tune epoch %d: val_accuracy=%.4f", epoch, val_acc)
    return val_acc


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    prep = Preprocessing(args.image_size, round(args.image_size / 0.875), IMAGENET_MEAN, IMAGENET_STD)
    root = _train_root(args.train)
    data_sha = verify_split(Path(args.data_manifest), "train", root, LABELS) if args.data_manifest else ""
    samples = list_images(root, LABELS)
    train_s, val_s = split_train_val(samples, args.val_fraction, args.seed, args.max_images_per_class)
    model = build_model(weights_path=args.pretrained_weights or None)
    run = tracking.active_run()
    run.log_params(
        {k: v for k, v in vars(args).items() if k not in {"train", "model_dir", "output_data_dir", "data_manifest"}}
        | {"train_images": len(train_s), "val_images": len(val_s), "data_manifest_sha256": data_sha or "none"}
    )
    started = time.perf_counter()
    plain = dict(batch_size=64, num_workers=args.num_workers)
    val_loader = DataLoader(PhotoDataset(val_s, eval_transform(prep)), **plain)
    train_plain = DataLoader(PhotoDataset(train_s, eval_transform(prep)), **plain)
    set_trainable(model, 0)
    val_acc = warmup_head(
        model, _features(model, train_plain, "features"), _features(model, val_loader, "val"), args, run
    )
    log.info("warm-up: val_accuracy=%.4f", val_acc)
    best_state, best_acc = {k: v.clone() for k, v in model.state_dict().items()}, val_acc
    if args.finetune_epochs > 0:
        aug = DataLoader(
            PhotoDataset(train_s, train_transform(prep)),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.num_workers,
            drop_last=len(train_s) > args.batch_size,
        )
        val_acc = finetune(model, aug, val_loader, args, run, args.warmup_epochs)
        if val_acc < best_acc:  # fine-tuning must earn its place on the validation split
            model.load_state_dict(best_state)
            log.info(
                "fine-tuning did not beat the warm-up (%.4f < %.4f): keeping the warm-up weights", val_acc, best_acc
            )
        best_acc = max(best_acc, val_acc)
    metrics = {"val_accuracy": best_acc, "train_seconds": round(time.perf_counter() - started, 1)}
    run.log_metrics(metrics)
    version = args.version or run.run_id or time.strftime("%Y%m%d%H%M%S")
    meta = write_artifact(
        model,
        Path(args.model_dir),
        prep,
        list(LABELS),
        version,
        metrics,
        extra={"mlflow_run_id": run.run_id or "", **({"data_manifest_sha256": data_sha} if data_sha else {})},
        **_quantization_data(args, prep, train_s, val_s),
    )
    if "quantization" in meta:
        run.log_metrics(
            {f"int8_{k}": meta["quantization"][k] for k in ("label_agreement", "confident_agreement", "mean_prob_diff")}
        )
    out = Path(args.output_data_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps({"metrics": metrics, "metadata": meta}, indent=2) + "\n")
    return meta


def _quantization_data(
    args: argparse.Namespace, prep: Preprocessing, train_s: list[tuple[Path, int]], val_s: list[tuple[Path, int]]
) -> dict[str, list]:
    """Calibration (training photos) and check (validation photos) tensors, preprocessed as served."""
    if args.quantize == "none" or args.calibration_images <= 0:
        return {}
    import random

    from serving.preprocess import preprocess_bytes

    picked = random.Random(args.seed).sample(train_s, min(args.calibration_images, len(train_s)))
    return {
        "calibration": [preprocess_bytes(path.read_bytes(), prep) for path, _ in picked],
        "validation": [preprocess_bytes(path.read_bytes(), prep) for path, _ in val_s],
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        if not args.train:
            args.train = str(_resolve_default_train())
        with tracking.run_context():
            meta = train(args)
    except (DataUnavailableError, DataManifestError, WeightsUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"version": meta["version"], "val_accuracy": meta["metrics"]["val_accuracy"]}))
    return 0


def _resolve_default_train() -> Path:
    from training.photos import resolve_data_dir

    return resolve_data_dir()


if __name__ == "__main__":
    sys.exit(main())
