"""`verify --locate` (and `export --locate`): where inside an artifact its values leave the
parent's, by Keras layer. The culprit is known in each test (one weight tampered at a known
layer, inside the artifact's own bytes), and every number is against Keras' own activations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.export.artifacts import converter_writing_wrong, copy_artifact, tamper, weights_file

pytestmark = pytest.mark.heavy
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("openvino", reason="openvino is not installed")

RESIDUAL, CNN = BY_NAME["residual"].path, BY_NAME["cnn"].path
NAMED = [pytest.param(s, id=s.lstrip(".")) for s in (".tflite", ".onnx")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, keras):
    """Whole-model artifacts of the residual and cnn samples (cnn's layers are auto-named
    conv2d and conv2d_1: TensorFlow's scopes for them are conv2d_1 and conv2d_1_2), and of a
    model with a nested Functional model."""
    from keras_cut.export.exporting import export_model

    d = tmp_path_factory.mktemp("locate")
    x = keras.Input((8,), name="x")
    h = keras.layers.Dense(6, activation="relu", name="d1")(x)
    inner = keras.Model(x, keras.layers.Dense(6, name="d2")(h), name="inner")
    top_in = keras.Input((8,), name="features")
    top = keras.Model(top_in, keras.layers.Dense(3, name="head")(inner(top_in)), name="outer")
    rng = np.random.default_rng(3)
    for w in top.weights:
        w.assign(rng.normal(0, 0.5, tuple(w.shape)).astype("float32"))
    top.save(d / "nested.keras")
    for suffix in (".tflite", ".onnx", ".xml"):
        for name, path in (("residual", RESIDUAL), ("cnn", CNN), ("nested", d / "nested.keras")):
            export_model(path, d / f"{name}{suffix}")
    return d


def tampered(exported: Path, name: str, suffix: str, parent: Path, layer: str,
             tmp_path: Path) -> Path:
    bad = copy_artifact(exported / f"{name}{suffix}", tmp_path / f"bad{suffix}")
    tamper(bad, parent, layer)
    return bad


def located(capsys, parent, artifact):
    result = run_cli(capsys, "verify", parent, artifact, "--locate", "--json", "--samples", "8")
    assert result.code in (0, 1), result.err
    return result.code, json.loads(result.out)["locate"]


@pytest.mark.parametrize("suffix", NAMED)
def test_a_tampered_layer_is_located(exported, suffix, tmp_path, capsys):
    bad = tampered(exported, "residual", suffix, RESIDUAL, "res_b", tmp_path)
    code, where = located(capsys, RESIDUAL, bad)
    assert code == 1
    assert where["first_failing_layer"] == "res_b" and where["first_failing_class"] == "Conv2D"
    rows = [row["layer"] for row in where["layers"]]
    assert rows.index("res_b") == 1 and where["layers"][0]["passed"]  # res_a agrees
    assert where["unmatched"] == []


@pytest.mark.parametrize("suffix", NAMED)
def test_clashing_automatic_names_are_told_apart(exported, suffix, tmp_path, capsys):
    """conv2d_1 (the layer) is tampered: the scope `conv2d_1` is the layer conv2d's. The
    outputs still pass (the softmax hides the change), the layers inside do not."""
    bad = tampered(exported, "cnn", suffix, CNN, "conv2d_1", tmp_path)
    code, where = located(capsys, CNN, bad)
    assert where["first_failing_layer"] == "conv2d_1"
    first = next(row for row in where["layers"] if row["layer"] == "conv2d")
    assert first["passed"] and first["max_abs_error"] < 1e-5
    assert where["trend"] == "recovers" and code == 0


@pytest.mark.parametrize("suffix", NAMED)
def test_a_correct_artifact_agrees_at_every_layer(exported, suffix, capsys):
    code, where = located(capsys, CNN, exported / f"cnn{suffix}")
    assert code == 0 and where["first_failing_layer"] is None
    assert [r["layer"] for r in where["layers"]] == [
        "conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten",
        "intermediate_dense", "classification_head"]
    assert all(r["passed"] for r in where["layers"])


@pytest.mark.parametrize("suffix", NAMED)
def test_a_layer_inside_a_nested_model_is_located(exported, suffix, tmp_path, capsys):
    parent = exported / "nested.keras"
    bad = copy_artifact(exported / f"nested{suffix}", tmp_path / f"bad{suffix}")
    import keras

    bias = keras.saving.load_model(parent, compile=False).get_layer("inner") \
        .get_layer("d1").get_weights()[1]
    data = bytearray(weights_file(bad).read_bytes())
    at = data.find(bias.astype("<f4").tobytes())
    assert at >= 0
    data[at:at + 4] = np.float32(bias[0] + 0.5).tobytes()
    weights_file(bad).write_bytes(bytes(data))
    code, where = located(capsys, parent, bad)
    assert code == 1 and where["first_failing_layer"] == "inner/d1"
    assert where["layers"][0]["layer"] == "inner/d1"  # nothing before it in the artifact
    # d2 has a row, or (LiteRT folds its bias into head's) is seen through head's
    assert "inner/d2" in [r["layer"] for r in where["layers"]] + \
        [name for r in where["layers"] for name in r["seen_through"]]


def test_what_openvino_renames_is_found_by_value_not_guessed(exported, tmp_path, capsys):
    """OpenVINO's IR keeps no TensorFlow name for convolutions: res_a is tied by value to a
    tensor no name claims; res_b, tampered, has tensors of its shape but none agrees, and is
    named as where the difference likely starts (seen through the first failing named layer)."""
    bad = tampered(exported, "residual", ".xml", RESIDUAL, "res_b", tmp_path)
    code, where = located(capsys, RESIDUAL, bad)
    assert code == 1 and where["first_without_agreeing_tensor"] == "res_b"
    rows = {r["layer"]: r for r in where["layers"]}
    assert rows["res_a"]["passed"] and rows["res_a"]["tensor"].endswith("(by value)")
    first = rows[where["first_failing_layer"]]
    assert not first["passed"] and "res_b" in first["seen_through"]


def test_a_dense_whose_bias_litert_folds_into_the_next_is_not_blamed(tmp_path, capsys, keras):
    """Dense h feeds Dense o: LiteRT adds h's bias inside o's and keeps only `h/MatMul`, the
    product before the bias. That tensor is not h's output: h is seen through o, never blamed
    (found by a new user: a correct artifact had h marked FIRST)."""
    from keras_cut.export.exporting import export_model

    x = keras.Input((16,), name="x")
    h = keras.layers.Dense(6, name="h", bias_initializer="random_normal")(x)
    o = keras.layers.Dense(3, name="o", bias_initializer="random_normal")(h)
    keras.Model(x, o).save(tmp_path / "lin.keras")
    export_model(tmp_path / "lin.keras", tmp_path / "lin.tflite")
    code, where = located(capsys, tmp_path / "lin.keras", tmp_path / "lin.tflite")
    assert code == 0 and where["first_failing_layer"] is None
    assert [(r["layer"], r["seen_through"]) for r in where["layers"]] == [("o", ["h"])]


def test_the_trend_follows_only_what_the_first_failing_layer_feeds(tmp_path, capsys, keras):
    """Two branches: the tampered one keeps its error; the other agreeing at the end of the
    table says nothing about it (found by a new user: "recovers" from another branch)."""
    from keras_cut.export.exporting import export_model

    x = keras.Input((8,), name="x")
    a = keras.layers.Dense(4, name="a", bias_initializer="random_normal")(x)
    a = keras.layers.Activation("tanh", name="a_act")(a)
    b = keras.layers.Dense(4, activation="tanh", name="b", bias_initializer="random_normal")(x)
    keras.Model(x, {"first": a, "second": b}).save(tmp_path / "two.keras")
    export_model(tmp_path / "two.keras", tmp_path / "two.onnx")
    bad = copy_artifact(tmp_path / "two.onnx", tmp_path / "bad.onnx")
    tamper(bad, tmp_path / "two.keras", "a")
    code, where = located(capsys, tmp_path / "two.keras", bad)
    assert code == 1 and where["first_failing_layer"] == "a"
    assert where["trend"] == "stays"
    assert next(r for r in where["layers"] if r["layer"] == "b")["passed"]


def strip_names(path: Path, target: Path) -> Path:
    """The .onnx with every tensor between its inputs and outputs renamed t0, t1, ... (what a
    graph optimiser or a hand-edited file leaves): no Keras layer name survives."""
    import onnx

    model = onnx.load(str(path))
    keep = {v.name for v in [*model.graph.input, *model.graph.output]} | \
        {i.name for i in model.graph.initializer}
    names: dict[str, str] = {}
    for node in model.graph.node:
        node.name = ""
        for i, name in enumerate(node.input):
            node.input[i] = names.get(name, name)
        for i, name in enumerate(node.output):
            if name not in keep:
                names[name] = node.output[i] = f"t{len(names)}"
    onnx.save(model, str(target))
    return target


def test_an_artifact_without_names_is_located_by_values(exported, tmp_path, capsys):
    """No name ties a tensor to a layer: each layer is tied to the first unclaimed tensor,
    after its inputs', that agrees with it; the tampered layer finds none, so the first layer
    named as where it may start is the culprit, and a correct stripped artifact agrees."""
    clean = strip_names(exported / "residual.onnx", tmp_path / "stripped.onnx")
    code, where = located(capsys, RESIDUAL, clean)
    assert code == 0 and where["first_failing_layer"] is None
    assert {r["layer"] for r in where["layers"]} >= {"res_a", "res_b", "res_c", "res_add"}
    assert all(r["tensor"].endswith("(by value)") for r in where["layers"][:-1])
    bad = tampered(exported, "residual", ".onnx", RESIDUAL, "res_b", tmp_path)
    code, where = located(capsys, RESIDUAL, strip_names(bad, tmp_path / "stripped_bad.onnx"))
    assert code == 1
    assert where["layers"][0]["layer"] == "res_a" and where["layers"][0]["passed"]
    assert where["first_without_agreeing_tensor"] == "res_b"
    first = next(r for r in where["layers"] if r["layer"] == where["first_failing_layer"])
    assert first["seen_through"][0] == "res_b"


def test_export_locates_when_its_proof_fails(tmp_path, monkeypatch):
    """A converter that writes a wrong weight (simulated: the artifact tampered as it is
    written): export's proof fails, the artifact is kept aside, and --locate names the layer."""
    from keras_cut.export.exporting import export_model

    converter_writing_wrong(monkeypatch, RESIDUAL, "res_c")
    result = export_model(RESIDUAL, tmp_path / "m.onnx", locate=True, samples=8)
    assert result.proven is False and not (tmp_path / "m.onnx").exists()
    assert result.verify is not None and result.verify.locate is not None
    assert result.verify.locate.first is not None
    assert result.verify.locate.first.layer == "res_c"


def test_locate_needs_an_artifact_and_its_parent(exported, tmp_path, capsys):
    assert_one_line_error(run_cli(capsys, "verify", CNN, CNN, "--locate"), "--locate",
                          "artifact")
    golden = tmp_path / "g.npz"
    assert run_cli(capsys, "verify", CNN, exported / "cnn.onnx", "--save-golden",
                   golden).code == 0
    assert_one_line_error(run_cli(capsys, "verify", golden, exported / "cnn.onnx", "--locate"),
                          "--locate", "parent")


def page_data(page: Path) -> dict:
    import re

    text = page.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="graph-data">(.*?)</script>', text, re.S).group(1))


def test_html_lays_the_comparison_over_the_graph_page(exported, tmp_path, capsys):
    """--html (which implies --locate) writes the parent's page: each node's verdict from the
    same comparison the table shows, the first failing layer opened, every other node named
    as outside the artifact or without a tensor of its own."""
    bad = tampered(exported, "residual", ".onnx", RESIDUAL, "res_b", tmp_path)
    page = tmp_path / "where.html"
    result = run_cli(capsys, "verify", RESIDUAL, bad, "--html", page, "--json")
    assert result.code == 1, result.err
    rows = {row["layer"]: row for row in json.loads(result.out)["locate"]["layers"]}
    data = page_data(page)
    nodes = {n["label"]: n for n in data["nodes"]}
    status = {label: n["overlay"]["status"] for label, n in nodes.items()}
    assert status["res_a"] == "agrees" and status["res_b"] == "first"
    assert status["image"] == "outside"
    assert {status[label] for label in rows} == {"agrees", "first", "differs"}
    assert all(status[label] == "differs" for label, row in rows.items()
               if not row["passed"] and label != "res_b")
    assert data["focus"] == nodes["res_b"]["id"]
    shown = dict(nodes["res_b"]["overlay"]["rows"])
    assert shown["verdict"] == "differs" and float(shown["max abs error"]) == pytest.approx(
        rows["res_b"]["max_abs_error"], rel=1e-2)
    assert "first past tolerance: res_b (Conv2D)" in data["summary"]
    # darker red for a larger error: the fills order as the errors do
    failing = sorted((row["max_abs_error"], nodes[label]["overlay"]["fill"])
                     for label, row in rows.items() if not row["passed"])
    greens = [int(fill[3:5], 16) for _, fill in failing]
    assert greens == sorted(greens, reverse=True) and greens[0] > greens[-1]
    # an existing page is kept unless --force; checked before anything runs
    again = run_cli(capsys, "verify", RESIDUAL, bad, "--html", page)
    assert_one_line_error(again, "--force")
    assert run_cli(capsys, "verify", RESIDUAL, exported / "residual.onnx", "--html", page,
                   "--force").code == 0
    assert {n["overlay"]["status"] for n in page_data(page)["nodes"]} == {"agrees", "outside"}


def test_html_page_opens_on_the_first_failing_layer_in_a_browser(exported, tmp_path, capsys):
    from tests.draw.test_graph_html import BROWSER, browse, rendered_nodes

    if BROWSER is None:
        pytest.skip("no headless browser: install Chromium (Debian: apt-get install chromium)")
    bad = tampered(exported, "residual", ".tflite", RESIDUAL, "res_c", tmp_path)
    page = tmp_path / "where.html"
    assert run_cli(capsys, "verify", RESIDUAL, bad, "--html", page).code == 1
    dom = browse(page, tmp_path)
    nodes = dict(rendered_nodes(dom))
    assert "role-first" in nodes["res_c"] and "selected" in nodes["res_c"]
    assert "role-agrees" in nodes["res_a"] and "role-outside" in nodes["image"]
    assert "<h2>res_c<" in dom and "Against the artifact" in dom


def test_html_needs_an_artifact(tmp_path, capsys):
    result = run_cli(capsys, "verify", CNN, CNN, "--html", tmp_path / "p.html")
    assert_one_line_error(result, "--html", "artifact")
    assert not (tmp_path / "p.html").exists()


def test_what_litert_folds_into_or_out_of_a_batchnorm_is_not_blamed(tmp_path, capsys, keras):
    """LiteRT keeps a BatchNormalization's `batchnorm/mul_1` (its value before the shift) and
    fuses the shift into the next op; and folds a BatchNormalization's scale into the
    convolution before it, naming the result after the convolution (with a zero shift, the
    BatchNormalization leaves no tensor at all). Neither is a difference: correct artifacts
    agree everywhere; a tampered layer after them is still the one named."""
    from keras_cut.export.exporting import export_model

    rng = np.random.default_rng(0)
    i = keras.Input((8, 8, 4), name="img")
    h = keras.layers.BatchNormalization(name="bn")(i)
    h = keras.layers.ReLU(name="relu")(h)
    first = keras.Model(i, keras.layers.Conv2D(4, 1, name="conv")(h), name="bnfirst")
    first.get_layer("bn").set_weights([rng.uniform(0.5, 1.5, 4), rng.uniform(-0.3, 0.3, 4),
                                       rng.uniform(-0.2, 0.2, 4), rng.uniform(0.5, 2, 4)])
    conv = first.get_layer("conv")
    conv.set_weights([conv.get_weights()[0], rng.uniform(-0.3, 0.3, 4).astype("float32")])
    i = keras.Input((16, 16, 3), name="img")
    h = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(i)
    h = keras.layers.BatchNormalization(name="bn")(h)
    folded = keras.Model(i, keras.layers.Conv2D(4, 1, name="head")(h), name="convbn")
    gamma, beta, mean, _ = folded.get_layer("bn").get_weights()  # beta = mean = 0
    folded.get_layer("bn").set_weights([rng.uniform(0.5, 2, 8), beta, mean,
                                        rng.uniform(0.3, 3, 8)])
    for model in (first, folded):
        model.save(tmp_path / f"{model.name}.keras")
        export_model(tmp_path / f"{model.name}.keras", tmp_path / f"{model.name}.tflite")
        code, where = located(capsys, tmp_path / f"{model.name}.keras",
                              tmp_path / f"{model.name}.tflite")
        assert code == 0 and where["first_failing_layer"] is None, where["layers"]
    rows = {row["layer"]: row for row in where["layers"]}
    assert rows["bn"]["seen_through"] == ["conv"] and rows["bn"]["passed"]
    bad = copy_artifact(tmp_path / "bnfirst.tflite", tmp_path / "bad.tflite")
    tamper(bad, tmp_path / "bnfirst.keras", "conv")
    code, where = located(capsys, tmp_path / "bnfirst.keras", bad)
    assert code == 1 and where["first_failing_layer"] == "conv"


@pytest.mark.parametrize("suffix", NAMED)
def test_layers_with_a_zero_bias_are_tied_to_their_tensors(suffix, tmp_path, capsys, keras):
    """Keras' default zero bias is dropped by the converters: a convolution's tensor is then
    the layer's output as it is (not a value before a bias the next op adds). Each layer has
    its row on a correct artifact, and a kernel changed in c2 is named at c2."""
    from keras_cut.export.exporting import export_model

    keras.utils.set_random_seed(0)
    x = keras.Input((16, 16, 3), name="img")
    h = keras.layers.Conv2D(8, 3, padding="same", name="c1")(x)
    h = keras.layers.Conv2D(8, 3, padding="same", name="c2")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", name="c3")(h)
    model = keras.Model(x, keras.layers.GlobalAveragePooling2D(name="gap")(h))
    model.save(tmp_path / "zero.keras")
    good = tmp_path / f"zero{suffix}"
    export_model(tmp_path / "zero.keras", good)
    code, where = located(capsys, tmp_path / "zero.keras", good)
    assert code == 0 and [r["layer"] for r in where["layers"]] == ["c1", "c2", "c3", "gap"]
    kernel = model.get_layer("c2").get_weights()[0]
    data = bytearray(good.read_bytes())
    for stored in (kernel, np.transpose(kernel, (3, 0, 1, 2)), np.transpose(kernel, (3, 2, 0, 1))):
        at = data.find(np.ascontiguousarray(stored).astype("<f4").tobytes())
        if at >= 0:
            data[at:at + 4] = np.float32(np.ascontiguousarray(stored).flat[0] + 0.5).tobytes()
            break
    assert at >= 0, "c2's kernel is not stored verbatim"
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(bytes(data))
    code, where = located(capsys, tmp_path / "zero.keras", bad)
    assert code == 1 and where["first_failing_layer"] == "c2"
    assert where["layers"][0]["layer"] == "c1" and where["layers"][0]["passed"]
