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
from tests.verify.test_verify_awkward import cut, edit, layer_config, verify

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
    from keras_cut.cut.cutting import cut_model

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
    from keras_cut.verify.verification import verify_models

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


# --- found by an adversarial trial ---------------------------------------------------------------


def test_two_entries_made_one_object_fail(keras, tmp_path, capsys):
    """`shared_object_id` on two layer entries makes Keras load them as one layer: d3 then
    computes with d2's weights, which seeded inputs never show (relu(x - 1) is 0 on them)."""
    import numpy as np

    L = keras.layers
    x = keras.Input((8,), name="x")
    z = L.Dense(8, activation="relu", name="gate")(x)
    model = keras.Model(x, L.Add(name="add")([L.Dense(4, name="d2")(z), L.Dense(4, name="d3")(z)]))
    model.get_layer("gate").set_weights([np.eye(8, dtype="float32"), -np.ones(8, "float32")])
    parent = tmp_path / "parent.keras"
    model.save(parent)
    sub = cut(parent, tmp_path, "sub", ["add"], ["gate"])

    def share(c):
        layer_config(c, "d2")["shared_object_id"] = 4242
        layer_config(c, "d3")["shared_object_id"] = 4242

    bad = edited(sub, tmp_path / "shared.keras", share)
    code, doc = verify(capsys, parent, bad)
    assert code == 1 and any("shared_object_id" in m for m in configs_of(doc))
    assert any("loaded as one object" in m for m in doc["weights"]["mismatched"])
    result = run_cli(capsys, "diff", sub, bad, "--json")
    assert result.code == 1 and "shared_object_id" in result.out


def test_a_function_from_another_module_fails(keras, tmp_path, capsys):
    """`gelu` by name is keras.activations.gelu; keras.ops.gelu is the tanh approximation."""
    L = keras.layers
    x = keras.Input((4,), name="x")
    parent = tmp_path / "gelu.keras"
    keras.Model(x, L.Dense(3, name="out")(L.Dense(4, activation="gelu", name="h")(x))).save(parent)
    sub = cut(parent, tmp_path, "sub", ["out"])

    def ops_gelu(c):
        layer_config(c, "h")["config"]["activation"] = {
            "module": "keras.ops", "class_name": "function", "config": "gelu",
            "registered_name": None}

    bad = edited(sub, tmp_path / "ops.keras", ops_gelu)
    code, doc = verify(capsys, parent, bad, "--atol", "1e-3")
    assert code == 1 and any(m.startswith("h: config.activation") for m in configs_of(doc))
    assert run_cli(capsys, "diff", parent, bad).code == 1


def test_assets_are_kept_by_cut_and_compared(keras, tmp_path, capsys):
    """An adapted IntegerLookup saves its vocabulary as an asset: cut keeps it (the submodel
    loads in plain Keras and computes what the parent does), verify and diff compare it."""
    import numpy as np

    L = keras.layers
    lookup = L.IntegerLookup(name="lookup")
    lookup.adapt(np.array([3, 5, 7, 9, 11, 500, 700]))
    ids = keras.Input((4,), dtype="int64", name="ids")
    out = L.Dense(3, name="out")(L.Flatten(name="flat")(L.Embedding(20, 8, name="emb")(
        lookup(ids))))
    parent = tmp_path / "lookup.keras"
    keras.Model(ids, out).save(parent)
    sub = cut(parent, tmp_path, "sub", ["flat"])
    members = zipfile.ZipFile(sub).namelist()
    assert any(m.startswith("assets/") and m.endswith("vocabulary.txt") for m in members)
    data = np.array([[3, 700, 1, 500]], dtype="int64")
    loaded = keras.saving.load_model(parent)
    theirs = keras.Model(loaded.input, loaded.get_layer("flat").output)(data)
    mine = keras.saving.load_model(sub)(data)
    np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    code, doc = verify(capsys, parent, sub)
    assert code == 0, doc["configs"]

    name = next(m for m in members if m.endswith("vocabulary.txt"))
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(sub) as zin, zipfile.ZipFile(tampered, "w") as zout:
        for info in zin.infolist():
            content = zin.read(info.filename)
            zout.writestr(info.filename, content.replace(b"700", b"800")
                          if info.filename == name else content)
    code, doc = verify(capsys, parent, tampered)
    assert code == 1 and any("asset 'vocabulary.txt' differs" in m for m in configs_of(doc))
    result = run_cli(capsys, "diff", sub, tampered, "--json", "--ignore", "safety")
    assert result.code == 1 and json.loads(result.out)["files"][0]["kind"] == "behaviour"


def test_hostile_values_are_one_line_errors(parents, cnn_sub, golden, tmp_path, capsys):
    assert_one_line_error(run_cli(capsys, "verify", parents["cnn"], cnn_sub, "--seed", "-1"),
                          "--seed")
    with np.load(golden, allow_pickle=False) as archive:
        content = {k: archive[k] for k in archive.files}
    text = str(content.pop("keras_cut_golden"))  # a document too deep for Python's parser
    deep = tmp_path / "deep.npz"
    np.savez(deep, keras_cut_golden=np.array(text[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000
                                             + "}"), **content)
    assert_one_line_error(run_cli(capsys, "verify", deep, cnn_sub), "golden file")
    shape = rewrite_golden(golden, tmp_path / "shape.npz",
                           lambda d: d["structure"]["inputs"][0].update(shape=5))
    assert_one_line_error(run_cli(capsys, "verify", shape, cnn_sub), "golden file",
                          "structure.inputs")

    def nest(c):
        layer_config(c, "out")["config"]["extra"] = json.loads("[" * 900 + "]" * 900)

    deep_config = edited(cnn_sub, tmp_path / "deep.keras", nest)
    for command in (["verify", parents["cnn"], deep_config], ["diff", cnn_sub, deep_config],
                    ["inspect", deep_config]):
        assert_one_line_error(run_cli(capsys, *command), "nests deeper")


def test_non_finite_parent_values_are_a_notice(parents, cnn_sub, tmp_path, capsys):
    data = tmp_path / "nan.npz"
    np.savez(data, image=np.full((4, 6, 6, 3), np.nan, np.float32))
    result = run_cli(capsys, "verify", parents["cnn"], cnn_sub, "--inputs", data, "--json")
    doc = json.loads(result.out)
    assert doc["outputs"][0]["parent_nonfinite"] > 0
    assert any("NaN or infinite" in n for n in doc["notices"])


def test_reordered_inputs_and_outputs_pass(parents, tmp_path, capsys):
    for name, outputs, inputs in (("a", ["out", "gap"], ["act", "proj"]),
                                  ("b", ["gap", "out"], ["proj", "act"])):
        sub = cut(parents["cnn"], tmp_path, name, outputs, inputs)
        code, doc = verify(capsys, parents["cnn"], sub)
        assert code == 0, doc["configs"]
        assert [o["name"] for o in doc["outputs"]] == outputs


def test_a_sequential_saved_by_keras_verifies(keras, tmp_path, capsys):
    """Found by a review: Keras' loaded Sequential has no `input` of its own."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    path = tmp_path / "seq.keras"
    model.save(path)
    code, doc = verify(capsys, path, path)
    assert code == 0, doc
