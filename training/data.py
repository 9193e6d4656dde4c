"""The training stack's view of the photos: augmentation, the serving preprocessing as a transform, a Dataset.

Finding, listing and splitting the photos is training/photos.py (free of torch).
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from serving.preprocess import Preprocessing, resize_center_crop, to_tensor


def train_transform(prep: Preprocessing) -> transforms.Compose:
    """Augmentation for fine-tuning: random crops, flips, mild colour jitter."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(prep.input_size, scale=(0.6, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(0.2, 0.2, 0.2),
            transforms.ToTensor(),
            transforms.Normalize(prep.mean, prep.std),
        ]
    )


def eval_transform(prep: Preprocessing):
    """The serving preprocessing (serving/preprocess.py), so validation sees what the endpoint sees."""

    def apply(img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(to_tensor(resize_center_crop(img, prep), prep))

    return apply


class PhotoDataset(Dataset):
    """A list of (path, label) read as RGB photos through a transform."""

    def __init__(self, samples: list[tuple[Path, int]], transform) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        with Image.open(path) as img:
            return self.transform(img.convert("RGB")), label
