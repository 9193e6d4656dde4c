"""ONNX Runtime and PyTorch give the same probabilities on real photos (tolerance 1e-4 absolute)."""

from __future__ import annotations

import numpy as np

from serving.artifact import open_artifact
from serving.predictor import Predictor
from serving.preprocess import Preprocessing, preprocess_bytes
from training.photos import list_images, subsample

TOLERANCE = 1e-4  # absolute difference between class probabilities


def test_onnx_matches_pytorch_on_real_photos(tmp_path, data_dir, weights):
    import torch  # here, not at the top: every xdist worker collects this module, one runs it

    from training.export import write_artifact
    from training.model import IMAGENET_MEAN, IMAGENET_STD, LABELS, build_model, set_trainable

    torch.manual_seed(0)
    prep = Preprocessing(160, 183, IMAGENET_MEAN, IMAGENET_STD)
    model = build_model(weights_path=weights)
    train = subsample(list_images(data_dir / "train", LABELS), 8, seed=1)
    x = torch.from_numpy(np.stack([preprocess_bytes(p.read_bytes(), prep) for p, _ in train]))
    y = torch.tensor([label for _, label in train])
    opt = torch.optim.SGD(set_trainable(model, 2), lr=0.01)
    model.train()
    for _ in range(2):  # a short fine-tune, so the exported weights are not the initial ones
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    write_artifact(model, tmp_path, prep, list(LABELS), "parity", {})
    predictor = Predictor(open_artifact(tmp_path))
    photos = subsample(list_images(data_dir / "test", LABELS), 10, seed=2)
    batch = np.stack([preprocess_bytes(p.read_bytes(), prep) for p, _ in photos])
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(batch)), dim=1).numpy()
    got = predictor.probabilities(batch)
    assert got.shape == (20, 2)
    assert np.abs(got - expected).max() < TOLERANCE
    assert (got.argmax(1) == expected.argmax(1)).all()
