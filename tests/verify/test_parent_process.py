"""verify's parent in a second process (`verify/parent_process.py`) must give the very report
the parent loaded in verify's own process gives: passes, failures, weight digests and the
weights they stand for, the search for the first diverging layer, and the parent's errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from keras_cut.core.errors import KerasCutError, Option, RunError
from keras_cut.cut.cutting import cut_model
from keras_cut.verify.parent_process import SWITCH, ChildFailed, ParentProcess
from keras_cut.verify.verification import verify_models
from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli, run_process
from tests.verify.test_verify import find_layer, rewrite_keras

pytestmark = pytest.mark.heavy

CASES = [
    ("cnn", ["intermediate_dense"], [], ".keras"),
    ("cnn_h5", ["flatten"], ["max_pooling2d"], ".h5"),  # a tf.keras 2 parent, head and tail
    ("residual", [], ["res_b"], ".keras"),  # a crossing input fed from the parent
    ("nested", [], ["backbone/stem_relu"], ".keras"),
    ("two_heads", ["regression_output", "classification_output"], [], ".keras"),
    ("text", [], ["embedding_layer"], ".keras"),
    ("shared", ["shared_dense@1"], [], ".keras"),
]


def nudge_conv2d_1(h5):
    """One value of the cnn sample's conv2d_1 kernel moved by 0.05, inside the weights file."""
    group = next(g for g in h5["layers"].values() if g["vars"].attrs.get("name") == "conv2d_1")
    value = group["vars/0"][...]
    value.flat[0] += 0.05
    group["vars/0"][...] = value


def both_ways(monkeypatch, *args, **kwargs):
    """The report with the parent here and with it in the second process (which must have
    been asked for the parent's activations, not merely started)."""
    from keras_cut.verify import parent_process

    asked = []
    real = parent_process.ParentProcess.request
    monkeypatch.setattr(parent_process.ParentProcess, "request",
                        lambda self, *a: asked.append(a) or real(self, *a))
    reports = []
    for switch in ("0", "1"):
        monkeypatch.setenv(SWITCH, switch)
        reports.append(verify_models(*args, **kwargs).to_dict())
        assert len(asked) == int(switch)
    return reports


@pytest.mark.parametrize("sample,outputs,inputs,suffix", CASES,
                         ids=[f"{c[0]}:{'+'.join(c[1]) or 'end'}<-{'+'.join(c[2]) or 'in'}"
                              for c in CASES])
def test_the_same_report_either_way(sample, outputs, inputs, suffix, tmp_path, monkeypatch):
    sub = tmp_path / f"sub{suffix}"
    cut_model(BY_NAME[sample].path, sub, outputs, inputs)
    here, there = both_ways(monkeypatch, BY_NAME[sample].path, sub, samples=12, batch_size=5)
    assert here["passed"] and here == there
    assert here["weights"]["checked"] > 0 or sample == "text"


def test_golden_files_are_the_same_either_way(tmp_path, monkeypatch):
    sub = tmp_path / "sub.keras"
    cut_model(BY_NAME["residual"].path, sub, [], ["res_b"])
    files = []
    for switch in ("0", "1"):
        monkeypatch.setenv(SWITCH, switch)
        files.append(tmp_path / f"g{switch}.npz")
        assert verify_models(BY_NAME["residual"].path, sub, samples=9, batch_size=4,
                             save_golden=files[-1]).passed
    a, b = np.load(files[0]), np.load(files[1])
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def test_a_tampered_weight_is_named_with_its_difference(tmp_path, monkeypatch):
    """The second process sends digests; a weight that differs is fetched whole to say by how
    much, exactly as when the parent is loaded here."""
    good = tmp_path / "good.keras"
    cut_model(BY_NAME["cnn"].path, good, ["intermediate_dense"], [])

    bad = rewrite_keras(good, tmp_path / "nudged.keras", weights=nudge_conv2d_1)
    here, there = both_ways(monkeypatch, BY_NAME["cnn"].path, bad, samples=8)
    assert not here["passed"] and here == there
    (mismatch,) = there["weights"]["mismatched"]
    assert "conv2d_1/kernel: differs (max abs 0.05" in mismatch


def test_a_failing_output_is_traced_to_its_layer(tmp_path, monkeypatch):
    """The layer-by-layer search needs the parent here: it is loaded once a failure is seen."""
    good = tmp_path / "good.keras"
    cut_model(BY_NAME["cnn"].path, good, ["intermediate_dense"], [])

    def linear(config):
        find_layer(config, "intermediate_dense")["config"]["activation"] = "linear"
        return config

    bad = rewrite_keras(good, tmp_path / "linear.keras", config=linear)
    # the config gate fails it too; the outputs must fail and be traced as well
    here, there = both_ways(monkeypatch, BY_NAME["cnn"].path, bad, samples=8)
    assert not here["passed"] and here == there
    assert there["divergence"]["layer"] == "intermediate_dense"
    assert not there["outputs"][0]["passed"]


def test_the_parents_error_comes_back_as_one_line(tmp_path, monkeypatch, capsys):
    """Ids outside the parent's vocabulary: the parent (in the second process) cannot run,
    and the user gets keras-cut's one-line error naming it and --inputs, exit 2."""
    sub = tmp_path / "sub.keras"
    cut_model(BY_NAME["text"].path, sub, [], ["embedding_layer"])
    ids = json.loads(run_cli(capsys, "inspect", BY_NAME["text"].path, "--json").out)
    shape = next(layer for layer in ids["layers"] if layer["class_name"] == "InputLayer")
    length = shape["output_shape"][0][-1] if isinstance(shape["output_shape"][0], list) \
        else shape["output_shape"][-1]
    bad = tmp_path / "ids.npz"
    np.savez(bad, **{shape["name"]: np.full((4, length), 10**6, dtype="int32")})
    monkeypatch.setenv(SWITCH, "1")
    result = run_cli(capsys, "verify", BY_NAME["text"].path, sub, "--inputs", bad)
    assert_one_line_error(result, str(BY_NAME["text"].path), "could not run", "--inputs")


def test_errors_cross_processes_whole():
    error = RunError("m.keras: Keras could not run the model; check the arrays in ",
                     Option.INPUTS, layer="emb")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RunError and copy.parts == error.parts and copy.layer == "emb"
    assert copy.text(lambda o: f"--{o.value}").endswith("check the arrays in --inputs")
    assert isinstance(copy, KerasCutError) and str(copy) == str(error)


def test_a_child_that_dies_is_a_bug_not_a_verdict():
    child = ParentProcess()
    try:
        child._child.kill()
        with pytest.raises(ChildFailed, match="ended unexpectedly"):
            child.load_note()
    finally:
        child.close()


def test_the_command_line_with_its_second_process(tmp_path, monkeypatch):
    """As a user runs it (a fresh process that picks the second process itself where it has
    two cores): the result is complete on stdout after the quick exit, and the exit code is
    the verdict's."""
    good = tmp_path / "good.keras"
    cut_model(BY_NAME["cnn"].path, good, ["intermediate_dense"], [])

    bad = rewrite_keras(good, tmp_path / "nudged.keras", weights=nudge_conv2d_1)
    monkeypatch.delenv(SWITCH)
    ok = run_process("verify", BY_NAME["cnn"].path, good, "--json", "--samples", "8")
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["passed"] is True
    differs = run_process("verify", BY_NAME["cnn"].path, bad, "--samples", "8")
    assert differs.code == 1, differs.err
    assert differs.out.rstrip().splitlines()[-1].startswith("FAILED")
