"""The int8 serving model: built from calibration photos, served only when it agrees with the float model.

torch and the training modules are imported by the tests that use them: every xdist worker collects this
module, and only the one that runs it pays for the training stack.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from serving.artifact import open_artifact
from serving.predictor import Predictor
from serving.preprocess import Preprocessing, preprocess_bytes
from training.data_manifest import LABELS
from training.photos import list_images, subsample

PREP = Preprocessing(160, 183, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # training.model's ImageNet statistics


def tensors(paths) -> list[np.ndarray]:
    return [preprocess_bytes(p.read_bytes(), PREP) for p in paths]


@pytest.fixture(scope="module")
def probe(data_dir, weights):
    """Pretrained features with a head trained on 160 training photos; calibration and check photos."""
    import torch

    from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model

    assert (PREP.mean, PREP.std) == (IMAGENET_MEAN, IMAGENET_STD)
    torch.manual_seed(0)
    model = build_model(weights_path=weights).eval()
    train = subsample(list_images(data_dir / "train", LABELS), 80, seed=3)
    x = torch.from_numpy(np.stack(tensors(p for p, _ in train)))
    y = torch.tensor([label for _, label in train])
    with torch.no_grad():
        feats = torch.nn.functional.adaptive_avg_pool2d(model.features(x), 1).flatten(1)
    head = model.classifier[1]
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(feats), y).backward()
        opt.step()
    check = subsample(list_images(data_dir / "train", LABELS), 45, seed=4)[-30:]
    return model, tensors(p for p, _ in train[:32]), tensors(p for p, _ in check)


def test_the_artifact_serves_an_int8_model_that_agrees_with_the_float_one(tmp_path, data_dir, probe):
    import training.quantize as quantize
    from training.export import FP32_FILE, write_artifact

    model, calibration, validation = probe
    meta = write_artifact(
        model, tmp_path, PREP, list(LABELS), "int8", {}, calibration=calibration, validation=validation
    )
    q = meta["quantization"]
    assert meta["serving_model"] == quantize.INT8_FILE and meta["reference_model"] == FP32_FILE
    assert q["served"] is True and q["confident_agreement"] >= quantize.MIN_AGREEMENT
    assert q["mean_prob_diff"] <= quantize.MAX_MEAN_PROB_DIFF and 0 < q["confident_photos"] <= q["photos"]
    assert q["calibration_photos"] == 32 and q["photos"] == len(validation)
    assert json.loads((tmp_path / "metadata.json").read_text())["serving_model"] == quantize.INT8_FILE
    assert (tmp_path / quantize.INT8_FILE).stat().st_size * 2.5 < (tmp_path / FP32_FILE).stat().st_size

    art = open_artifact(tmp_path)
    served, reference = Predictor(art), Predictor(art, model_file=art.reference_model_path)
    photos = subsample(list_images(data_dir / "test", LABELS), 20, seed=5)
    batch = np.stack(tensors(p for p, _ in photos))
    got, expected = served.probabilities(batch), reference.probabilities(batch)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.95  # 38 of 40 test photos at least
    assert np.abs(got - expected).mean() < 0.05


def test_an_int8_model_that_disagrees_is_not_served(tmp_path, probe, monkeypatch):
    import training.quantize as quantize
    from training.export import FP32_FILE, write_artifact

    model, calibration, validation = probe
    monkeypatch.setattr(quantize, "MAX_MEAN_PROB_DIFF", 0.0)  # no int8 model can pass this bar
    meta = write_artifact(
        model, tmp_path, PREP, list(LABELS), "float", {}, calibration=calibration, validation=validation
    )
    assert meta["serving_model"] == FP32_FILE
    assert meta["quantization"]["served"] is False and "drift" in meta["quantization"]["reason"]
    assert not (tmp_path / quantize.INT8_FILE).exists()
    assert open_artifact(tmp_path).serving_model_path.name == FP32_FILE
