"""verify compares what a cut keeps, not only what seeded inputs show: every kept layer's config,
every kept call's wiring and arguments, every input's shape and dtype, against the parent and
against a golden file. Each broken submodel is a correct cut whose file was edited by hand
(keras-cut's own record left as it was), and each has a twin that must still pass.

The edits are the ones seeded inputs in [-1, 1) never reach: `relu` -> `relu6`, a
BatchNormalization epsilon moved by 1e-7, a Dropout called with training=True (here with rate 0,
so the outputs agree), MultiHeadAttention's causal mask, an Add whose inputs were swapped."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.test_verify_awkward import cut, edit, layer_config, verify

pytestmark = pytest.mark.heavy  # runs models through TensorFlow (make test-fast skips it)


@pytest.fixture(scope="module")
def parents(tmp_path_factory, keras):
    d = tmp_path_factory.mktemp("verify_configs")
    keras.utils.set_random_seed(3)
    L = keras.layers
    x = keras.Input((6, 6, 3), name="image")
    h = L.Conv2D(4, 3, padding="same", name="conv")(x)
    h = L.BatchNormalization(name="bn")(h)
    a = L.Activation("relu", name="act")(h)
    b = L.Conv2D(4, 1, name="proj")(x)
    s = L.Add(name="add")([a, b])
    s = L.Dropout(0.0, name="drop")(s)
    y = L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="gap")(s))
    cnn = keras.Model(x, y)
    cnn.save(d / "cnn.keras")

    tokens = keras.Input((5,), dtype="int32", name="tokens")
    e = L.Embedding(50, 8, name="embed")(tokens)
    att = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(e, e, use_causal_mask=True)
    text = keras.Model(tokens, L.Dense(2, name="head")(L.GlobalAveragePooling1D(name="gp")(att)))
    text.save(d / "text.keras")
    return {"cnn": d / "cnn.keras", "text": d / "text.keras"}


def configs_of(doc):
    return doc["configs"]["mismatched"]


def edited(src, dst, change):
    def config(c):
        change(c)
        return c
    return edit(src, dst, config=config)


@pytest.fixture(scope="module")
def cnn_sub(parents, tmp_path_factory):
    return cut(parents["cnn"], tmp_path_factory.mktemp("subs"), "sub", ["out"], ["conv"])


def test_a_correct_cut_and_a_bit_identical_copy_pass(parents, cnn_sub, tmp_path, capsys):
    code, doc = verify(capsys, parents["cnn"], cnn_sub)
    assert code == 0 and doc["passed"], doc["configs"]
    kept = [layer for layer in json.loads(zipfile.ZipFile(cnn_sub).read("config.json"))[
        "config"]["layers"] if layer["class_name"] != "InputLayer"]
    assert doc["configs"]["layers"] == doc["configs"]["calls"] == len(kept) >= 6
    code, doc = verify(capsys, parents["cnn"], parents["cnn"])
    assert code == 0 and configs_of(doc) == [] and doc["configs"]["calls"] == 8


@pytest.mark.parametrize("field, value, needle", [
    (("act", "activation"), "relu6", 'act: config.activation is "relu6"'),
    (("bn", "epsilon"), 1.0001e-3, "bn: config.epsilon is 0.0010001"),
    (("act", "activation"), "gelu", 'act: config.activation is "gelu"'),
])
def test_changed_config_fails_though_the_outputs_agree(parents, cnn_sub, tmp_path, capsys,
                                                       field, value, needle):
    layer, key = field

    def change(c):
        layer_config(c, layer)["config"][key] = value

    bad = edited(cnn_sub, tmp_path / "bad.keras", change)
    result = run_cli(capsys, "verify", parents["cnn"], bad, "--samples", "8")
    assert result.code == 1, result.out
    assert needle in result.out and "FAILED" in result.out.splitlines()[-1]


def test_an_epsilon_change_fails_where_outputs_cannot_tell(parents, cnn_sub, tmp_path, capsys):
    def change(c):
        layer_config(c, "bn")["config"]["epsilon"] = 1.0001e-3

    bad = edited(cnn_sub, tmp_path / "eps.keras", change)
    code, doc = verify(capsys, parents["cnn"], bad)
    assert code == 1 and doc["outputs"][0]["passed"] is True  # the outputs cannot tell
    assert doc["weights"]["mismatched"] == []
    assert configs_of(doc) == ["bn: config.epsilon is 0.0010001, the parent's 0.001"]


def test_class_origin_and_dtype_policy_are_compared(parents, cnn_sub, tmp_path, capsys):
    def policy(c):
        layer_config(c, "gap")["config"]["dtype"]["config"]["name"] = "float64"

    code, doc = verify(capsys, parents["cnn"], edited(cnn_sub, tmp_path / "p.keras", policy))
    assert code == 1 and "gap: config.dtype is \"float64\", the parent's \"float32\"" in \
        configs_of(doc)

    def origin(c):
        layer_config(c, "act")["registered_name"] = "Custom>Activation"

    result = run_cli(capsys, "verify", parents["cnn"], edited(cnn_sub, tmp_path / "o.keras",
                                                              origin), "--json")
    assert result.code in (1, 2)  # refused by the safety check, or failed: never a pass
    if result.code == 1:
        assert any("registered_name" in m for m in configs_of(json.loads(result.out)))


def test_training_settings_are_reported_but_pass(parents, cnn_sub, tmp_path, capsys):
    def change(c):
        layer_config(c, "drop")["config"]["rate"] = 0.3
        layer_config(c, "bn")["config"]["momentum"] = 0.9
        layer_config(c, "out")["config"]["kernel_initializer"] = "zeros"

    code, doc = verify(capsys, parents["cnn"], edited(cnn_sub, tmp_path / "t.keras", change))
    assert code == 0 and configs_of(doc) == []
    lines = doc["configs"]["training_only"]
    assert any(line.startswith("drop: config.rate is 0.3") for line in lines)
    assert any(line.startswith("bn: config.momentum is 0.9") for line in lines)
    assert any(line.startswith("out: config.kernel_initializer") for line in lines)


def test_a_call_argument_fails(parents, cnn_sub, tmp_path, capsys):
    def training(c):
        layer_config(c, "drop")["inbound_nodes"][0]["kwargs"]["training"] = True

    code, doc = verify(capsys, parents["cnn"], edited(cnn_sub, tmp_path / "tr.keras", training))
    assert code == 1 and doc["outputs"][0]["passed"]  # rate 0: the outputs cannot tell
    assert configs_of(doc) == ["drop: call argument kwargs.training is true, the parent's "
                               "false (drop)"]


def test_a_causal_mask_dropped_fails(parents, tmp_path, capsys):
    sub = cut(parents["text"], tmp_path, "enc", ["gp"])
    code, doc = verify(capsys, parents["text"], sub)
    assert code == 0, doc["configs"]

    def no_mask(c):
        del layer_config(c, "mha")["inbound_nodes"][0]["kwargs"]["use_causal_mask"]

    code, doc = verify(capsys, parents["text"], edited(sub, tmp_path / "m.keras", no_mask))
    assert code == 1
    assert any("mha: call argument kwargs.use_causal_mask is (absent), the parent's true" in m
               for m in configs_of(doc))


def test_swapped_wiring_fails_though_the_outputs_agree(parents, cnn_sub, tmp_path, capsys):
    def swap(c):
        args = layer_config(c, "add")["inbound_nodes"][0]["args"][0]
        args.reverse()

    code, doc = verify(capsys, parents["cnn"], edited(cnn_sub, tmp_path / "w.keras", swap))
    assert code == 1 and doc["outputs"][0]["passed"]  # addition commutes
    assert any(m.startswith("add: wired differently") for m in configs_of(doc))


def test_an_input_dtype_fails(parents, tmp_path, capsys):
    sub = cut(parents["cnn"], tmp_path, "head", ["out"], ["add"])

    def half(c):
        layer_config(c, "add")["config"]["dtype"] = "float16"  # the new input is named "add"

    code, doc = verify(capsys, parents["cnn"], edited(sub, tmp_path / "h.keras", half))
    assert code == 1 and "input add: dtype float16, the parent's float32" in configs_of(doc)


def test_frozen_cuts_pass(parents, tmp_path, capsys):
    from keras_cut.cutting import cut_model

    sub = tmp_path / "frozen.keras"
    cut_model(parents["cnn"], sub, ["gap"], [], freeze=True)
    code, doc = verify(capsys, parents["cnn"], sub)
    assert code == 0 and configs_of(doc) == [] and doc["configs"]["training_only"] == []


# --- golden files ------------------------------------------------------------------------------


def test_golden_file_catches_a_config_change(parents, cnn_sub, tmp_path, capsys):
    golden = tmp_path / "g.npz"
    assert run_cli(capsys, "verify", parents["cnn"], cnn_sub, "--samples", "8",
                   "--save-golden", golden).code == 0
    code, doc = verify(capsys, golden, cnn_sub)
    assert code == 0 and doc["configs"]["against"] == "golden file"
    assert doc["configs"]["calls"] >= 6

    def change(c):
        layer_config(c, "bn")["config"]["epsilon"] = 1.0001e-3
        args = layer_config(c, "add")["inbound_nodes"][0]["args"][0]
        args.reverse()

    code, doc = verify(capsys, golden, edited(cnn_sub, tmp_path / "bad.keras", change))
    assert code == 1 and doc["outputs"][0]["passed"]
    assert "bn: config.epsilon is 0.0010001, the golden file's 0.001" in configs_of(doc)
    assert any(m.startswith("add: wired differently") for m in configs_of(doc))


def rewrite_golden(src, dst, meta=None, arrays=None):
    """A copy of a golden file with its document and arrays edited (np.savez, as keras-cut)."""
    with np.load(src, allow_pickle=False) as archive:
        content = {k: archive[k] for k in archive.files}
    doc = json.loads(str(content.pop("keras_cut_golden")))
    if meta:
        meta(doc)
    if arrays:
        arrays(content)
    np.savez(dst, keras_cut_golden=np.array(json.dumps(doc)), **content)
    return dst


@pytest.fixture(scope="module")
def golden(parents, cnn_sub, tmp_path_factory):
    from keras_cut.verification import verify_models

    path = tmp_path_factory.mktemp("golden") / "g.npz"
    verify_models(parents["cnn"], cnn_sub, samples=8, save_golden=path)
    return path


@pytest.mark.parametrize("meta, arrays, needle", [
    (lambda d: d["tolerances"].update(atol=float("nan")), None, "atol"),
    (lambda d: d["tolerances"].update(rtol=-1.0), None, "rtol"),
    (lambda d: d["tolerances"]["atol_for"].update(out=float("inf")), None, "atol out"),
    (lambda d: d["tolerances"].update(atol="1e-3"), None, "atol"),
    (lambda d: d.update(format=1), None, "older keras-cut"),
    (lambda d: d.update(format=99), None, "format 99"),
    (lambda d: d.update(samples=0), None, "samples"),
    (lambda d: d.pop("structure"), None, "structure"),
    (lambda d: d["weights"].update({"conv|kernel": "x"}), None, "SHA-256"),
    (lambda d: d["inputs"][0].update(shape="?"), None, "inputs"),
    (None, lambda a: a.update({"input/0": a["input/0"][:, :3]}), "input/0"),
    (None, lambda a: a.update({"input/0": a["input/0"][..., 0]}), "input/0"),
    (None, lambda a: a.update({"input/0": a["input/0"].astype("float64")}), "float64"),
    (None, lambda a: a.update({"output/0": a["output/0"][:5]}), "5 samples"),
    (None, lambda a: a.pop("output/0"), "output/0"),
    (None, lambda a: a.update({"payload": np.zeros(2)}), "unexpected array 'payload'"),
])
def test_a_bad_golden_file_is_refused_in_one_line(golden, cnn_sub, tmp_path, capsys, meta,
                                                  arrays, needle):
    bad = rewrite_golden(golden, tmp_path / "bad.npz", meta, arrays)
    result = run_cli(capsys, "verify", bad, cnn_sub)
    assert_one_line_error(result, "golden file", needle)


def test_a_golden_file_without_its_document_or_not_a_zip(cnn_sub, tmp_path, capsys):
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(3))
    assert_one_line_error(run_cli(capsys, "verify", plain, cnn_sub), "golden file",
                          "keras_cut_golden")
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    assert_one_line_error(run_cli(capsys, "verify", text, cnn_sub), "golden file")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, keras_cut_golden=np.array([{"a": 1}], dtype=object))
    assert_one_line_error(run_cli(capsys, "verify", pickled, cnn_sub), "golden file")


def test_tolerances_must_be_finite_and_not_negative(parents, cnn_sub, capsys):
    for value in ("nan", "inf", "-1e-3", "out=nan", "out=-1"):
        result = run_cli(capsys, "verify", parents["cnn"], cnn_sub, "--atol", value)
        assert_one_line_error(result, "--atol", "finite")
