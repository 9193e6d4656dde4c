"""Hyperparameter defaults of training/train.py, defined once: its parser and both pipelines read them."""

from __future__ import annotations

# Passed to training/train.py as `--name=value` arguments, by SageMaker and by the local runner.
DEFAULTS: dict[str, int] = {
    "image-size": 224,  # docs/benchmarks.md, "Accuracy by input size and schedule"
    "warmup-epochs": 15,
    "finetune-epochs": 0,  # the head alone reaches 0.98 at 224 px; an epoch is another full pass over the photos
    "finetune-blocks": 4,
    "batch-size": 32,
    "seed": 42,
}
