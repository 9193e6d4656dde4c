"""The network: torchvision MobileNetV2 with ImageNet features and a new two-class head."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

from training.data_manifest import LABELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could neither be read from a file nor downloaded."""


def build_model(
    num_classes: int = len(LABELS),
    weights_path: str | os.PathLike | None = None,
    pretrained: bool = True,
    dropout: float = 0.2,
) -> nn.Module:
    """MobileNetV2 with pretrained features (from weights_path, else torchvision's download)."""
    model = mobilenet_v2()
    if pretrained:
        state = _pretrained_state(weights_path)
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("classifier.") for k in missing):
            raise WeightsUnavailableError(
                f"pretrained weights do not fit mobilenet_v2: missing={missing[:3]} unexpected={unexpected[:3]}"
            )
    model.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(model.last_channel, num_classes))
    return model


def _pretrained_state(weights_path: str | os.PathLike | None) -> dict[str, torch.Tensor]:
    path = weights_path or os.environ.get("PRETRAINED_WEIGHTS")
    if path:
        if not Path(path).is_file():
            raise WeightsUnavailableError(f"PRETRAINED_WEIGHTS file not found: {path}")
        return torch.load(path, map_location="cpu", weights_only=True)
    try:
        return MobileNet_V2_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as exc:  # network errors come in many types
        raise WeightsUnavailableError(
            "cannot download torchvision's IMAGENET1K_V1 weights (offline?); "
            "set PRETRAINED_WEIGHTS to a mobilenet_v2 state_dict file"
        ) from exc


def set_trainable(model: nn.Module, top_blocks: int) -> list[nn.Parameter]:
    """Freeze the backbone except its last `top_blocks` feature blocks; the head always trains."""
    for p in model.parameters():
        p.requires_grad = False
    features = model.features  # type: ignore[attr-defined]
    blocks = list(features.children())[len(features) - top_blocks :] if top_blocks > 0 else []
    for block in blocks:
        for p in block.parameters():
            p.requires_grad = True
    for p in model.classifier.parameters():  # type: ignore[attr-defined]
        p.requires_grad = True
    return [p for p in model.parameters() if p.requires_grad]
