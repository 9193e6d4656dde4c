"""The inputs every suite reads: the cats-vs-dogs photos and the pretrained MobileNetV2 weights.

DATA_DIR and PRETRAINED_WEIGHTS when set; else the shared folder beside the checkout (offline
machines); else what the product itself downloads where there is internet (GitHub's runners): the
public cats-vs-dogs archive (training.photos, cached) and torchvision's ImageNet weights (torch hub cache).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def data_dir() -> Path:
    configured = os.environ.get("DATA_DIR", "").strip()
    if configured:
        return Path(configured)
    shared = SHARED / "datasets" / "cats-vs-dogs"
    if (shared / "train").is_dir():
        return shared
    from training.photos import resolve_data_dir

    return resolve_data_dir(timeout=60.0)


def weights_file() -> Path:
    configured = os.environ.get("PRETRAINED_WEIGHTS", "").strip()
    if configured:
        return Path(configured)
    shared = SHARED / "weights" / "mobilenet_v2_imagenet_features.pth"
    if shared.is_file():
        return shared
    import torch
    from torchvision.models import MobileNet_V2_Weights

    url = MobileNet_V2_Weights.IMAGENET1K_V1.url
    torch.hub.load_state_dict_from_url(url, progress=False, map_location="cpu")  # cached after the first call
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
