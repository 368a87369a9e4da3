"""Shared fixtures: the sample registry, Keras (imported lazily), and real architectures built
small with weights=None, saved once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# verify's parent runs in this process unless a test asks for the second process (both ways
# are tested in tests/verify/test_parent_process.py)
os.environ.setdefault("KERAS_CUT_PARENT_PROCESS", "0")
# a shell's COLUMNS sets the width of piped output: the tests read the unwrapped form
os.environ.pop("COLUMNS", None)

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from sample_models.registry import SAMPLES  # noqa: E402
from tests.cli_helpers import ROOT  # noqa: E402


@pytest.fixture(scope="session")
def keras():
    import keras

    return keras


@pytest.fixture(scope="session")
def app_dir(tmp_path_factory, keras) -> Path:
    """MobileNetV2 (96x96, alpha 0.35), ResNet50 (64x64) and MobileNetV2 nested as a
    backbone, each as .keras and .h5, with seeded random weights (no download)."""
    import numpy as np

    d = tmp_path_factory.mktemp("apps")
    keras.utils.set_random_seed(7)
    mobilenet = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10
    )
    resnet = keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None, classes=10)
    backbone = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, weights=None, include_top=False
    )
    backbone.name = "backbone"
    inp = keras.Input((96, 96, 3), name="image")
    x = backbone(inp)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(4, name="head")(x)
    wrapped = keras.Model(inp, out, name="wrapped_mobilenet")
    rng = np.random.default_rng(0)
    for model in (mobilenet, resnet, wrapped):
        for w in model.weights:
            if "moving_variance" in w.path:
                w.assign(rng.uniform(0.5, 1.5, tuple(w.shape)).astype("float32"))
            elif "moving_mean" in w.path or "beta" in w.path or "bias" in w.path:
                w.assign(rng.normal(0, 0.1, tuple(w.shape)).astype("float32"))
    for name, model in (("mobilenetv2", mobilenet), ("resnet50", resnet),
                        ("wrapped_mobilenet", wrapped)):
        model.save(d / f"{name}.keras")
        model.save(d / f"{name}.h5")
    return d


@pytest.fixture(scope="session")
def legacy_dir(tmp_path_factory):
    """tf.keras 2 `.h5` files and tf.keras 2's own answers (tests/legacy_models.py)."""
    out = tmp_path_factory.mktemp("legacy")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "tests.legacy_models", str(out)], check=True,
                   env=env, cwd=ROOT, capture_output=True, timeout=600)
    return out


def sample_paths() -> list[Path]:
    return [s.path for s in SAMPLES]


def pytest_collection_modifyitems(items):
    """Tests on real architectures (the applications and tf.keras 2 fixtures) are heavy: `make
    test` runs them, `make test-fast` skips them."""
    for item in items:
        if {"app_dir", "legacy_dir"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)
