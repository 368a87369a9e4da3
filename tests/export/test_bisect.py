"""`--bisect`: fresh exports of ever longer prefixes, proven one after another, pin where a
converter goes wrong, in O(log n) exports, even where no name ties the artifact's tensors to
layers. The converter is made wrong on purpose (it writes res_c's bias wrong whenever res_c is
in what it converts, and strips every tensor name), so the culprit is known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sample_models.registry import BY_NAME
from tests.cli_helpers import run_cli
from tests.export.artifacts import tamper
from tests.export.test_locate import strip_names

pytestmark = pytest.mark.heavy
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

RESIDUAL = BY_NAME["residual"].path
LAYERS = 7  # the residual sample's layers (its input aside)


@pytest.fixture
def wrong_converter(monkeypatch, keras):
    """A converter that writes res_c's bias wrong where it converts res_c, and keeps no
    tensor name."""
    from keras_cut.backend.keras import exporting

    real = exporting.export_file
    bias = keras.saving.load_model(RESIDUAL, compile=False).get_layer("res_c").get_weights()[1]

    def convert(cut_file, path, fmt, *args, **kwargs):
        order = real(cut_file, path, fmt, *args, **kwargs)
        if Path(path).read_bytes().find(bias.astype("<f4").tobytes()) >= 0:
            tamper(Path(path), RESIDUAL, "res_c")
        strip_names(Path(path), Path(path))
        return order

    monkeypatch.setattr(exporting, "export_file", convert)


def test_bisection_pins_the_layer_a_converter_gets_wrong(wrong_converter, tmp_path, capsys):
    result = run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.onnx", "--bisect",
                     "--json")
    assert result.code == 1, result.err
    found = json.loads(result.out)["bisect"]
    assert found["first_failing_layer"] == "res_c"
    assert found["first_failing_class"] == "Conv2D"
    assert found["whole_fresh_export_passes"] is False
    assert found["exports"] <= math.ceil(math.log2(LAYERS)) + 1
    verdicts = {t["last"]: t["proven"] for t in found["tried"]}
    assert verdicts["res_out"] is False  # the whole, first
    assert all(proven for last, proven in verdicts.items() if last in ("res_a", "res_b"))
    # every prefix's outputs are the tensors later layers read: res_a feeds res_add too
    res_b = next((t for t in found["tried"] if t["last"] == "res_b"), None)
    if res_b is not None:
        assert sorted(res_b["outputs"]) == ["res_a", "res_b"]


def test_a_file_damaged_after_export_is_not_the_converter(tmp_path, capsys, keras):
    from keras_cut.export.exporting import export_model

    good = tmp_path / "m.onnx"
    export_model(RESIDUAL, good)
    tamper(good, RESIDUAL, "res_b")
    result = run_cli(capsys, "verify", RESIDUAL, good, "--bisect", "--json")
    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert report["locate"]["first_failing_layer"] == "res_b"  # the file's own tensors
    found = report["bisect"]
    assert found["whole_fresh_export_passes"] is True and found["exports"] == 1
    assert found["first_failing_layer"] is None


def test_prefix_outputs_follow_branches():
    """Every layer up to the point, with an output for each tensor read after it."""
    from keras_cut.export.bisect import _frontiers
    from keras_cut.model.flatgraph import FlatGraph
    from keras_cut.model.opening import open_model

    _, graph = open_model(RESIDUAL, None, False, "read")
    flat = FlatGraph(graph)
    calls = [c for c in flat.nodes if not flat.layer(c).is_input]
    labels = [flat.label(c) for c in calls]
    ends = dict(zip(labels, _frontiers(flat, calls, [flat.top.outputs[0]]), strict=True))
    assert ends["res_a"] == ["res_a"]
    assert ends["res_b"] == ["res_a", "res_b"] and ends["res_c"] == ["res_a", "res_c"]
    assert ends["res_add"] == ["res_add"] and ends["res_out"] == ["res_out"]
    assert np.array_equal(labels, ["res_a", "res_b", "res_c", "res_add", "res_relu",
                                   "res_pool", "res_out"])
