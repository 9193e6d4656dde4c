"""Hyperparameter defaults of training/train.py, defined once: its parser and both pipelines read them."""

from __future__ import annotations

# Passed to training/train.py as `--name=value` arguments, by SageMaker and by the local runner.
DEFAULTS: dict[str, int] = {
    "image-size": 160,
    "warmup-epochs": 15,
    "finetune-epochs": 1,
    "finetune-blocks": 4,
    "batch-size": 32,
    "seed": 42,
}
