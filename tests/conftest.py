"""Shared fixtures: the photo folders, a small trained artifact (one per session, shared by the xdist
workers), and how the workers split the suite: one test module per work unit, the longest first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import inputs
import pytest
import tiers
from session_share import built_once

REPO = Path(__file__).resolve().parents[1]
# Terraform and its AWS provider (Go) spend most of each provider start collecting garbage while they build
# the provider's schema: a lazier collector saves a third of their CPU, for memory the suite has to spare.
os.environ.setdefault("GOGC", "400")


def pytest_configure(config: pytest.Config) -> None:
    from cpu_report import CpuReport

    config.pluginmanager.register(CpuReport(), "cpu-report")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its folder's tier (tests/tiers.py): pytest -m unit|integration|e2e; and put the
    longest work units first, so that no xdist worker starts one of them last."""
    for item in items:
        tier = tiers.tier_of(item.path)
        if tier is not None:  # a module outside the tier folders fails tests/unit/test_tiers.py
            item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=lambda item: tiers.start_rank(item.path.stem))  # stable: a module's own order is kept


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """With --dist loadscope (make test): one work unit per test module (its module fixtures start once) or
    per group of modules that share processes (tests/tiers.py), handed out in collection order."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return tiers.work_unit(Path(nodeid.split("::", 1)[0]).stem)

    return ByWorkUnit(config, log)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = inputs.data_dir()
    assert (root / "train" / "cat").is_dir(), f"photos not found at {root}: set DATA_DIR"
    return root


@pytest.fixture(scope="session")
def weights() -> Path:
    path = inputs.weights_file()
    assert path.is_file(), f"pretrained weights not found at {path}: set PRETRAINED_WEIGHTS"
    return path


def train_artifact(out: Path, data_dir: Path, weights: Path, per_class: int, finetune_epochs: int) -> Path:
    """Run training/train.py with the SageMaker contract and pack model.tar.gz, as the pipeline does."""
    from training.model_tar import pack_model_dir

    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(data_dir / "train"),
        "SM_MODEL_DIR": str(out / "model"),
        "SM_OUTPUT_DATA_DIR": str(out / "output"),
        "PRETRAINED_WEIGHTS": str(weights),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_RUN_ID", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training.train",
            f"--max-images-per-class={per_class}",
            "--image-size=160",  # small and fast: the default size is for the full data set
            "--warmup-epochs=10",
            f"--finetune-epochs={finetune_epochs}",
            "--num-workers=0",
        ],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return pack_model_dir(out / "model", out / "artifact" / "model.tar.gz")


@pytest.fixture(scope="session")
def small_artifact(tmp_path_factory, data_dir, weights) -> Path:
    """A real model trained on 100 photos per class (frozen-backbone warm-up): good enough to tell cats from dogs.
    Trained once per session, by whichever xdist worker asks first."""
    return built_once(
        tmp_path_factory,
        "small-model",
        lambda out: train_artifact(out, data_dir, weights, per_class=100, finetune_epochs=0),
    )


@pytest.fixture(autouse=True)
def _cli_consoles_follow_columns() -> None:
    """The CLI's rich consoles fix their width when built if COLUMNS is set then, as it is inside another
    test's CliRunner call (a worker runs many modules in one process): each test starts with consoles that
    read COLUMNS, or the terminal, whenever they print."""
    common = sys.modules.get("mlops.cli.common")
    if common is not None:
        for console in (common.console, common.err):
            console.width = None  # type: ignore[assignment]  # rich's setter: None means measure when printing


@pytest.fixture(autouse=True)
def _mlflow_environment_restored() -> object:
    """MLflow's set_tracking_uri writes MLFLOW_TRACKING_URI into the environment: no test may leave it
    changed, or later in-process registrations would go to another store than the CLI's."""
    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID")
    before = {k: os.environ.get(k) for k in keys}
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
