"""`keras-cut cut` as a user runs it: summary, JSON, every refusal, and nothing ever lost."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from sample_models.registry import BY_NAME
from tests.cli_helpers import ROOT, assert_one_line_error, run_cli

RESIDUAL = BY_NAME["residual"].path


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def no_partials(folder) -> bool:
    return not [p for p in os.listdir(folder) if ".partial" in p]


def test_summary_and_notice(tmp_path, capsys):
    result = run_cli(capsys, "cut", RESIDUAL, "-o", tmp_path / "head.keras",
                     "--input-layer", "res_b")
    assert result.code == 0, result.err
    for text in ("res_b", "cut here", "res_a", "crosses the cut", "res_out", "Layers: 5 kept",
                 "Params: 611", "Saved:"):
        assert text in result.out, text
    assert "Notice: added input 'res_a'" in result.err


def test_json_document(tmp_path, capsys, keras):
    result = run_cli(capsys, "cut", BY_NAME["two_heads"].path, "-o", tmp_path / "p.keras",
                     "--output-layer", "regression_output", "--output-layer",
                     "classification_output", "--json", "--freeze")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert {"output", "inputs", "outputs", "layers", "params", "trainable_params",
            "frozen"} <= set(doc)
    assert [o["name"] for o in doc["outputs"]] == ["regression_output", "classification_output"]
    assert doc["inputs"] == [{"name": "features", "shape": [None, 128], "dtype": "float32",
                              "source": "features", "kind": "parent_input"}]
    assert doc["frozen"] is True and doc["trainable_params"] == 0
    sub = keras.saving.load_model(doc["output"], compile=False)
    assert doc["params"] == sub.count_params()


REFUSALS = [
    (["--output-layer", "res_bb"], ["res_bb", "did you mean", "res_b"]),
    (["--output-layer", "backbone/res_b"], ["backbone/res_b", "no layer"]),
    (["--input-layer", "res_out", "--output-layer", "res_a"], ["does not depend", "res_out"]),
    (["--input-layer", "res_a", "--input-layer", "res_c", "--output-layer", "res_b"],
     ["--input-layer 'res_c' is not on the way"]),
    (["--output-layer", "res_b", "--output-layer", "res_b"], ["given twice"]),
    ([], ["at least one"]),
]


@pytest.mark.parametrize("args,words", REFUSALS, ids=[" ".join(a) or "none" for a, _ in REFUSALS])
def test_impossible_cuts_are_explained(args, words, tmp_path, capsys):
    before = digest(RESIDUAL)
    result = run_cli(capsys, "cut", RESIDUAL, "-o", tmp_path / "x.keras", *args)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "x.keras").exists() and no_partials(tmp_path)
    assert digest(RESIDUAL) == before


def test_ambiguous_shared_layer_lists_calls(tmp_path, capsys):
    result = run_cli(capsys, "cut", BY_NAME["shared"].path, "-o", tmp_path / "x.keras",
                     "--output-layer", "shared_dense")
    assert_one_line_error(result, "ambiguous", "shared_dense@0", "shared_dense@1", "NAME@N")
    ok = run_cli(capsys, "cut", BY_NAME["shared"].path, "-o", tmp_path / "x.keras",
                 "--output-layer", "shared_dense@1")
    assert ok.code == 0


def test_output_refusals_write_nothing(tmp_path, capsys):
    model = tmp_path / "m.keras"
    shutil.copy(RESIDUAL, model)
    before = digest(model)
    cases = [
        (model, ["input model", "never writes over"]),
        (tmp_path / "x.onnx", [".onnx", ".keras or .h5"]),
        (tmp_path / "missing" / "x.keras", ["does not exist"]),
        (tmp_path, ["is a directory"]),
    ]
    for output, words in cases:
        for extra in ([], ["--force"]):
            result = run_cli(capsys, "cut", model, "-o", output, "--input-layer", "res_b", *extra)
            assert_one_line_error(result, *words)
    existing = tmp_path / "old.keras"
    existing.write_bytes(b"precious")
    result = run_cli(capsys, "cut", model, "-o", existing, "--input-layer", "res_b")
    assert_one_line_error(result, "already exists", "--force")
    assert existing.read_bytes() == b"precious"
    assert digest(model) == before and no_partials(tmp_path)
    forced = run_cli(capsys, "cut", model, "-o", existing, "--input-layer", "res_b", "--force")
    assert forced.code == 0 and existing.read_bytes() != b"precious"


def test_failed_save_leaves_old_output_intact(tmp_path, capsys, monkeypatch):
    existing = tmp_path / "out.keras"
    existing.write_bytes(b"old")

    def broken_save(parent, sub, path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("keras_cut.cut.cutting.write_submodel", broken_save)
    result = run_cli(capsys, "cut", RESIDUAL, "-o", existing, "--input-layer", "res_b", "--force")
    assert_one_line_error(result, "disk is full")
    assert existing.read_bytes() == b"old" and no_partials(tmp_path)


# The child writes the submodel for real, says so, then waits: the signal provably arrives while
# the temporary file exists and before it is renamed into place.
PAUSED_CUT = """
import sys, time
from keras_cut.cut import cutting
real = cutting.write_submodel
def paused(*args, **kwargs):
    real(*args, **kwargs)
    print("WRITTEN", flush=True)
    time.sleep(120)
cutting.write_submodel = paused
from keras_cut.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def _default_signals() -> None:
    # a test run in the background inherits SIGINT ignored, and Python keeps it ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_save_leaves_nothing_partial(signum, tmp_path):
    """A real signal to a real process while the temporary file is being written."""
    existing = tmp_path / "out.keras"
    existing.write_bytes(b"old")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_CUT, "cut", str(RESIDUAL), "-o", str(existing),
         "--input-layer", "res_b", "--force"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
        preexec_fn=_default_signals,
    )
    try:
        assert proc.stdout.readline() == b"WRITTEN\n", proc.stderr.read()
        assert not no_partials(tmp_path)  # the temporary file is there, not yet renamed
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    assert b"Error: interrupted" in err and b"Traceback" not in err
    assert existing.read_bytes() == b"old"
    assert no_partials(tmp_path)


def test_unwritable_folder_during_save(tmp_path, capsys, monkeypatch):
    def refused(parent, sub, path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("keras_cut.cut.cutting.write_submodel", refused)
    result = run_cli(capsys, "cut", RESIDUAL, "-o", tmp_path / "o.keras", "--input-layer",
                     "res_b")
    assert_one_line_error(result, "cannot be written", "Permission denied")
    assert os.listdir(tmp_path) == []


def test_lambda_is_cut_without_running_it(tmp_path, capsys, keras):
    """No code from the file runs, so no --unsafe is needed to cut; the notice says what
    loading the result needs, and --verify (which loads) is refused without --unsafe."""
    path = tmp_path / "lambda.keras"
    inp = keras.Input((4,), name="x")
    y = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    parent = keras.Model(inp, keras.layers.Dense(2, name="out")(y))
    parent.save(path)
    result = run_cli(capsys, "cut", path, "-o", tmp_path / "s.keras", "--output-layer", "out")
    assert result.code == 0, result.err
    assert "'double'" in result.err and "safe_mode=False" in result.err
    sub = keras.saving.load_model(tmp_path / "s.keras", compile=False, safe_mode=False)
    x = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
    np.testing.assert_array_equal(np.asarray(sub(x)), np.asarray(parent(x)))
    clean = run_cli(capsys, "cut", path, "-o", tmp_path / "c.keras", "--input-layer", "double")
    assert clean.code == 0 and "safe_mode" not in clean.err, clean.err
    keras.saving.load_model(tmp_path / "c.keras", compile=False)  # safe mode: loads
    refused = run_cli(capsys, "cut", path, "-o", tmp_path / "v.keras", "--output-layer", "out",
                      "--verify")
    assert_one_line_error(refused, "double", "Lambda", "--unsafe")
    assert not (tmp_path / "v.keras").exists() and no_partials(tmp_path)
    ok = run_cli(capsys, "cut", path, "-o", tmp_path / "v.keras", "--output-layer", "out",
                 "--verify", "--unsafe")
    assert ok.code == 0, ok.err


CUSTOM = '''
import keras

@keras.saving.register_keras_serializable(package="acme")
class Scale(keras.layers.Layer):
    def call(self, x):
        return x * 3.0
'''


def test_custom_classes_need_their_code(tmp_path, capsys):
    module = tmp_path / "acme_layers.py"
    module.write_text(CUSTOM)
    builder = (
        "import sys, keras; sys.path.insert(0, sys.argv[1]); import acme_layers\n"
        "i = keras.Input((4,), name='x')\n"
        "y = acme_layers.Scale(name='scale')(keras.layers.Dense(4, name='d')(i))\n"
        "keras.Model(i, keras.layers.Dense(2, name='out')(y)).save(sys.argv[2])\n"
    )
    path = tmp_path / "custom.keras"
    subprocess.run([sys.executable, "-c", builder, str(tmp_path), str(path)], check=True,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True)
    result = run_cli(capsys, "cut", path, "-o", tmp_path / "s.keras", "--output-layer", "out")
    assert result.code == 0 and "'scale'" in result.err and "acme>Scale" in result.err
    refused = run_cli(capsys, "cut", path, "-o", tmp_path / "v.keras", "--output-layer", "out",
                      "--verify")
    assert_one_line_error(refused, "scale", "acme>Scale", "--custom-objects")
    ok = run_cli(capsys, "cut", path, "-o", tmp_path / "v.keras", "--output-layer", "out",
                 "--verify", "--custom-objects", module)
    assert ok.code == 0, ok.err
    bad = run_cli(capsys, "cut", path, "-o", tmp_path / "t.keras", "--output-layer", "out",
                  "--verify", "--custom-objects", tmp_path / "nope.py")
    assert_one_line_error(bad, "nope.py")
