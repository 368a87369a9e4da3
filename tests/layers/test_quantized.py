"""Models Keras quantized (`model.quantize("int8" | "int4" | "float8")`), saved and loaded by
Keras: inspect reads their arrays (no "broken" finding) and counts params and trainable params as
Keras does; cuts keep them; verify proves them against the parent and fails on a nudged
quantized kernel."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_cut.inspect.inspection import inspect_model
from tests.cli_helpers import run_cli
from tests.verify.test_verify_awkward import cut, edit, nudge, verify

pytestmark = pytest.mark.heavy  # builds and runs models through TensorFlow


@pytest.fixture(scope="module", params=["int8", "int4", "float8"])
def quantized(request, tmp_path_factory, keras):
    mode = request.param
    keras.utils.set_random_seed(5)
    L = keras.layers
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    h = L.Embedding(40, 8, name="emb")(tokens)
    h = L.EinsumDense("abc,cd->abd", (6, 12), bias_axes="d", name="ein")(h)
    h = L.Dense(16, activation="relu", name="hidden")(L.Flatten(name="flat")(h))
    model = keras.Model(tokens, L.Dense(3, name="out")(h))
    model.quantize(mode)
    path = tmp_path_factory.mktemp(f"q_{mode}") / f"{mode}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    trainable = sum(int(np.prod(w.shape)) for w in loaded.trainable_weights)
    return mode, path, loaded.count_params(), trainable


def test_params_as_keras_counts_them(quantized):
    mode, path, params, trainable = quantized
    report = inspect_model(path)
    assert not [f for f in report.findings if f.severity == "broken"], report.findings
    assert (report.total_params, report.trainable_params) == (params, trainable), mode


def test_cuts_verify_and_a_nudged_kernel_fails(quantized, tmp_path, capsys):
    mode, path, _, _ = quantized
    for name, outputs, inputs in (("prefix", ["hidden"], []), ("head", ["out"], ["ein"])):
        sub = cut(path, tmp_path, name, outputs, inputs)
        code, doc = verify(capsys, path, sub)
        assert code == 0, (mode, name, doc["configs"], doc["weights"])
    sub = tmp_path / "head.keras"
    bad = edit(sub, tmp_path / "nudged.keras", weights=nudge("layers/dense", by=1))
    code, doc = verify(capsys, path, bad)
    assert code == 1 and any(m.startswith("hidden/") for m in doc["weights"]["mismatched"])
    result = run_cli(capsys, "inspect", sub, "--json")
    assert json.loads(result.out)["findings"] == []
