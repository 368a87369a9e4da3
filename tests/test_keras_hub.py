"""keras_hub models (Functional subclasses saved as their class and constructor arguments).

Built tiny from arguments (never presets: nothing is downloaded). Without their code, `inspect`
shows what the file says and every other command refuses in one line; with
`--custom-objects keras_hub` they are inspected, cut and verified like any Functional model.
Every number checked here comes from Keras itself: params from `count_params()`, activations
from the loaded keras_hub model, computed in the test."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli, run_process
from tests.corpus import rezip
from tests.keras_private import call_count

pytestmark = pytest.mark.heavy
keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is not installed (pip install "
                                "keras-hub; it is in the dev extras)")
import keras  # noqa: E402  (keras_hub imported it already)

HUB = ("--custom-objects", "keras_hub")
SEQ = 8


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    d = tmp_path_factory.mktemp("keras_hub")
    keras.utils.set_random_seed(3)
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=3, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=SEQ, num_segments=2)
    gpt2 = keras_hub.models.GPT2Backbone(
        vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=SEQ)
    vit = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=4, num_layers=2, num_heads=2, hidden_dim=16,
        mlp_dim=32)
    classifier = keras_hub.models.BertTextClassifier(
        backbone=keras_hub.models.BertBackbone(
            vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
            max_sequence_length=SEQ, name="bert_backbone"),
        num_classes=3, preprocessor=None)
    files = {}
    for name, model in (("bert", bert), ("gpt2", gpt2), ("vit", vit),
                        ("classifier", classifier)):
        files[name] = d / f"{name}.keras"
        model.save(files[name])
    return files


def loaded(path):
    return keras.saving.load_model(path, compile=False)


def text_inputs(vocabulary, segments=False, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    feed = {"token_ids": rng.integers(0, vocabulary, (batch, SEQ)).astype("int32"),
            "padding_mask": np.ones((batch, SEQ), "int32")}
    feed["padding_mask"][:, -2:] = 0
    if segments:
        feed["segment_ids"] = rng.integers(0, 2, (batch, SEQ)).astype("int32")
    return feed


def activations(model, tensors, feed):
    """What `model` computes at `tensors` (KerasTensors of its own graph), by Keras."""
    probe = keras.Model(model.input, tensors)
    out = probe(feed, training=False)
    return [np.asarray(t) for t in (out if isinstance(out, (list, tuple)) else [out])]


def nudge_in(cut, tmp_path, needle):
    """A copy of `cut` with one array whose path contains `needle` nudged."""
    def nudge(h5):
        names = []
        h5.visit(names.append)
        target = next(n for n in sorted(names) if needle in n and n.endswith("vars/0"))
        value = h5[target][...]
        value.flat[0] += 0.05
        h5[target][...] = value

    return rezip(tmp_path / f"nudged_{cut.name}", cut, weights=nudge)


# --- without keras_hub's code: the file alone -------------------------------------------------


@pytest.mark.parametrize("name", ["bert", "gpt2", "vit", "classifier"])
def test_inspect_without_code_shows_what_the_file_says(hub, name, capsys):
    model = loaded(hub[name])
    result = run_cli(capsys, "inspect", hub[name], "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["class_name"] == type(model).__name__
    assert doc["registered_name"] == f"keras_hub>{type(model).__name__}"
    assert doc["layer_graph"] is False and doc["needs"] == "keras_hub"
    assert doc["total_params"] == model.count_params()
    assert doc["config"] == json.loads(zipfile.ZipFile(hub[name]).read("config.json"))["config"]
    finding = doc["findings"][0]
    assert finding["severity"] == "unloadable" and "--custom-objects keras_hub" in \
        finding["message"]
    text = run_cli(capsys, "inspect", hub[name])
    assert text.code == 0
    assert f"keras_hub>{type(model).__name__}" in text.out
    assert f"Total params: {model.count_params():,}" in text.out


def test_inspect_without_code_lists_every_stored_array(hub, capsys):
    model = loaded(hub["bert"])
    doc = json.loads(run_cli(capsys, "inspect", hub["bert"], "--json").out)
    found = []

    def arrays(group):
        found.extend(a["shape"] for a in group["arrays"] if not group["training_state"])
        for child in group["groups"]:
            if not child["training_state"]:
                arrays(child)

    arrays(doc["weights"])
    assert sorted(map(tuple, found)) == sorted(tuple(w.shape) for w in model.weights)


@pytest.mark.parametrize("args", [
    ("cut", "{m}", "-o", "{d}/x.keras", "--output-layer", "transformer_layer_0"),
    ("graph", "{m}", "-o", "{d}/x.mmd"),
    ("verify", "{m}", "{m}"),
    ("inspect", "{m}", "--layer", "transformer_layer_0"),
])
def test_commands_that_need_the_graph_say_how_to_get_it(hub, args, tmp_path, capsys):
    args = [a.format(m=hub["bert"], d=tmp_path) for a in args]
    result = run_cli(capsys, *args)
    assert_one_line_error(result, "'BertBackbone' (keras_hub>BertBackbone)",
                          "--custom-objects keras_hub", "pip install keras-hub")
    assert not list(tmp_path.iterdir())


def test_missing_package_says_what_to_install(hub, capsys):
    result = run_cli(capsys, "inspect", hub["bert"], "--custom-objects", "keras_cut_no_such_pkg")
    assert_one_line_error(result, "keras_cut_no_such_pkg", "install")


def test_inspect_without_code_runs_nothing(hub):
    probe = ("import sys; from keras_cut.cli.app import main; code = main(['inspect', {!r}]); "
             "print('HEAVY=' + ','.join(m for m in ('tensorflow', 'keras', 'keras_hub') "
             "if m in sys.modules), file=sys.stderr); sys.exit(code)").format(str(hub["bert"]))
    import subprocess
    import sys

    from tests.cli_helpers import ROOT
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=\n" in proc.stderr or proc.stderr.rstrip().endswith("HEAVY=")


# --- with --custom-objects keras_hub: the functional graph --------------------------------------


@pytest.mark.parametrize("name", ["bert", "gpt2", "vit", "classifier"])
def test_inspect_with_code_shows_the_layer_graph(hub, name, capsys):
    model = loaded(hub[name])
    result = run_cli(capsys, "inspect", hub[name], "--json", *HUB)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["total_params"] == model.count_params()
    assert doc["built_from"]["class_name"] == type(model).__name__
    names = {row["name"] for row in doc["layers"]}
    expected = {layer.name for layer in model.layers}
    assert expected <= names
    for layer in model.layers:  # every top-level layer's params and shape, as Keras has them
        row = next(r for r in doc["layers"] if r["name"] == layer.name)
        assert row["params"] == layer.count_params(), layer.name
        if call_count(layer) == 1 and not isinstance(layer.output, (list, dict)):
            assert row["output_shape"] == list(layer.output.shape), layer.name


def cut(capsys, model, out, *args):
    result = run_cli(capsys, "cut", model, "-o", out, *args, *HUB)
    assert result.code == 0, result.err
    return out


def test_bert_prefix_at_an_inner_transformer_layer(hub, tmp_path, capsys):
    sub = cut(capsys, hub["bert"], tmp_path / "prefix.keras",
              "--output-layer", "transformer_layer_1")
    parent = loaded(hub["bert"])
    feed = text_inputs(50, segments=True)
    (want,) = activations(parent, [parent.get_layer("transformer_layer_1").output], feed)
    got = loaded(sub)
    assert sorted(got.input) == ["padding_mask", "segment_ids", "token_ids"]
    np.testing.assert_allclose(np.asarray(got(feed, training=False)), want, atol=1e-6)
    assert run_cli(capsys, "verify", hub["bert"], sub, *HUB).code == 0


def test_bert_head_keeps_the_dict_of_outputs(hub, tmp_path, capsys):
    sub = cut(capsys, hub["bert"], tmp_path / "head.keras", "--input-layer", "transformer_layer_0")
    parent = loaded(hub["bert"])
    feed = text_inputs(50, segments=True)
    cut_at, seq, pooled = activations(parent, [
        parent.get_layer("transformer_layer_0").output, parent.output["sequence_output"],
        parent.output["pooled_output"]], feed)
    got = loaded(sub)
    out = got({"transformer_layer_0": cut_at, "padding_mask": feed["padding_mask"]}
              if isinstance(got.input, dict) else [cut_at, feed["padding_mask"]], training=False)
    assert set(out) == {"sequence_output", "pooled_output"}
    np.testing.assert_allclose(np.asarray(out["sequence_output"]), seq, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out["pooled_output"]), pooled, atol=1e-6)
    assert run_cli(capsys, "verify", hub["bert"], sub, *HUB).code == 0


def test_bert_segment_between_transformer_layers(hub, tmp_path, capsys):
    sub = cut(capsys, hub["bert"], tmp_path / "segment.keras", "--input-layer",
              "transformer_layer_0", "--output-layer", "transformer_layer_1")
    parent = loaded(hub["bert"])
    feed = text_inputs(50, segments=True)
    start, end = activations(parent, [parent.get_layer("transformer_layer_0").output,
                                      parent.get_layer("transformer_layer_1").output], feed)
    got = loaded(sub)
    assert len(got.inputs) == 2  # the cut tensor and the padding mask that crosses the cut
    names = [t.name for t in got.inputs]
    feed_sub = [start if "transformer" in n else feed["padding_mask"] for n in names]
    np.testing.assert_allclose(np.asarray(got(feed_sub, training=False)), end, atol=1e-6)


@pytest.mark.parametrize("name,needle,cut_args", [
    ("bert", "_feedforward_output_dense", ("--output-layer", "transformer_layer_1")),
    ("gpt2", "_self_attention_layer/query_dense", ("--input-layer", "transformer_layer_0")),
    ("vit", "vi_t_encoder_block_1", ("--input-layer", "vit_patching_and_embedding")),
    ("classifier", "_feedforward_intermediate_dense",
     ("--output-layer", "bert_backbone/transformer_layer_1")),
])
def test_verify_passes_and_fails_on_a_nudged_transformer_weight(hub, name, needle, cut_args,
                                                                 tmp_path, capsys):
    sub = cut(capsys, hub[name], tmp_path / f"{name}.keras", *cut_args)
    ok = run_cli(capsys, "verify", hub[name], sub, *HUB)
    assert ok.code == 0 and "PASSED" in ok.out.splitlines()[-1], ok.out + ok.err
    bad = run_cli(capsys, "verify", hub[name], nudge_in(sub, tmp_path, needle), *HUB)
    assert bad.code == 1, bad.out + bad.err
    assert "FAILED" in bad.out.splitlines()[-1]
    assert "differs" in bad.out


def test_gpt2_prefix_and_head_match_keras(hub, tmp_path, capsys):
    parent = loaded(hub["gpt2"])
    feed = text_inputs(40)
    mid, end = activations(parent, [parent.get_layer("transformer_layer_0").output,
                                    parent.output], feed)
    prefix = loaded(cut(capsys, hub["gpt2"], tmp_path / "p.keras",
                        "--output-layer", "transformer_layer_0"))
    np.testing.assert_allclose(np.asarray(prefix(feed, training=False)), mid, atol=1e-6)
    head = loaded(cut(capsys, hub["gpt2"], tmp_path / "h.keras",
                      "--input-layer", "transformer_layer_0"))
    names = [t.name for t in head.inputs]
    got = head([mid if "transformer" in n else feed["padding_mask"] for n in names],
               training=False)
    np.testing.assert_allclose(np.asarray(got), end, atol=1e-5)
    (last,) = activations(parent, [parent.get_layer("transformer_layer_1").output], feed)
    segment = loaded(cut(capsys, hub["gpt2"], tmp_path / "s.keras", "--input-layer",
                         "transformer_layer_0", "--output-layer", "transformer_layer_1"))
    names = [t.name for t in segment.inputs]
    got = segment([mid if "transformer" in n else feed["padding_mask"] for n in names],
                  training=False)
    np.testing.assert_allclose(np.asarray(got), last, atol=1e-5)


def test_vit_head_matches_keras(hub, tmp_path, capsys):
    parent = loaded(hub["vit"])
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    mid, end = activations(parent, [parent.get_layer("vit_patching_and_embedding").output,
                                    parent.output], images)
    head = loaded(cut(capsys, hub["vit"], tmp_path / "h.keras",
                      "--input-layer", "vit_patching_and_embedding"))
    np.testing.assert_allclose(np.asarray(head(mid, training=False)), end, atol=1e-5)


def test_a_layer_whose_saved_config_does_not_rebuild_it_is_never_kept(hub, tmp_path, capsys):
    """keras_hub 0.32's ViTPatchingAndEmbedding saves `num_patches` and `num_positions`, which
    its constructor refuses: ViTBackbone loads (it rebuilds from its own arguments), a file
    that keeps that layer alone does not. keras-cut finds it and refuses such cuts."""
    layer = loaded(hub["vit"]).get_layer("vit_patching_and_embedding")
    with pytest.raises(Exception, match="num_patches"):  # Keras itself, as a loader would
        type(layer).from_config(layer.get_config())
    doc = json.loads(run_cli(capsys, "inspect", hub["vit"], "--json", *HUB).out)
    assert any(f["layer"] == "vit_patching_and_embedding" and f["kind"] == "config"
               for f in doc["findings"])
    for args in (("cut", "--output-layer", "vit_patching_and_embedding"), ("convert",)):
        result = run_cli(capsys, args[0], hub["vit"], "-o", tmp_path / "x.keras", *args[1:],
                         *HUB)
        assert_one_line_error(result, "vit_patching_and_embedding", "num_patches")
    assert not (tmp_path / "x.keras").exists()


def test_task_model_nested_backbone_paths(hub, tmp_path, capsys):
    """A task (BertTextClassifier) holds its backbone as a nested model: paths reach into it,
    and a head from the backbone's output keeps the classifier's own layers."""
    parent = loaded(hub["classifier"])
    backbone = parent.get_layer("bert_backbone")
    feed = text_inputs(30, segments=True)
    inner = loaded(cut(capsys, hub["classifier"], tmp_path / "inner.keras",
                       "--output-layer", "bert_backbone/transformer_layer_0"))
    (want,) = activations(backbone, [backbone.get_layer("transformer_layer_0").output], feed)
    np.testing.assert_allclose(np.asarray(inner(feed, training=False)), want, atol=1e-6)
    head = cut(capsys, hub["classifier"], tmp_path / "head.keras",
               "--input-layer", "bert_backbone")
    assert run_cli(capsys, "verify", hub["classifier"], head, *HUB).code == 0
    pooled, logits = activations(parent, [backbone.output["pooled_output"], parent.output],
                                 feed)
    np.testing.assert_allclose(np.asarray(loaded(head)(pooled, training=False)), logits,
                               atol=1e-6)


def test_whole_model_converts_to_a_plain_functional_file(hub, tmp_path, capsys):
    out = tmp_path / "bert_functional.keras"
    result = run_cli(capsys, "convert", hub["bert"], "-o", out, *HUB, "--verify")
    assert result.code == 0, result.err
    plain = loaded(out)
    assert type(plain).__name__ == "Functional"
    parent = loaded(hub["bert"])
    feed = text_inputs(50, segments=True)
    want = parent(feed, training=False)
    got = plain(feed, training=False)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(want[key]), atol=1e-6)


def test_a_users_model_around_a_backbone(hub, tmp_path, capsys):
    """A user's own Functional model that calls a keras_hub backbone: with the code, paths
    reach inside the backbone too."""
    backbone = loaded(hub["bert"])
    inputs = {k: keras.Input((None,), dtype="int32", name=k)
              for k in ("token_ids", "segment_ids", "padding_mask")}
    pooled = backbone(inputs)["pooled_output"]
    model = keras.Model(inputs, keras.layers.Dense(2, name="score")(pooled))
    path = tmp_path / "mine.keras"
    model.save(path)
    without = run_cli(capsys, "inspect", path, "--json")
    assert without.code == 0
    rows = json.loads(without.out)["layers"]
    assert not any(r["name"].startswith("bert_backbone/") for r in rows)
    sub = cut(capsys, path, tmp_path / "mine_cut.keras",
              "--output-layer", "bert_backbone/transformer_layer_2")
    feed = text_inputs(50, segments=True)
    (want,) = activations(backbone, [backbone.get_layer("transformer_layer_2").output], feed)
    np.testing.assert_allclose(np.asarray(loaded(sub)(feed, training=False)), want, atol=1e-6)
    assert run_cli(capsys, "verify", path, sub, *HUB).code == 0


def test_fresh_process_cut_and_verify(hub, tmp_path):
    """As a user runs it: two processes, each building the model once."""
    sub = tmp_path / "p.keras"
    made = run_process("cut", hub["bert"], "-o", sub, "--output-layer", "transformer_layer_0",
                       *HUB)
    assert made.code == 0, made.err
    checked = run_process("verify", hub["bert"], sub, *HUB, "--json")
    assert checked.code == 0, checked.err
    assert json.loads(checked.out)["passed"] is True


def test_image_backbone_with_an_unnamed_input(tmp_path, capsys):
    """keras_hub's image backbones use an unnamed keras.Input: the rebuilt graph keeps the
    input layer's name (`input_layer`), which the loaded model is fed by."""
    model = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(32, 32, 3))
    path = tmp_path / "resnet.keras"
    model.save(path)
    parent = loaded(path)
    doc = json.loads(run_cli(capsys, "inspect", path, "--json", *HUB).out)
    # Keras names an unnamed input by what the process built before (input_layer_N): the
    # rebuilt graph must carry an input layer's name, never its tensor's (keras_tensor_N)
    (name,) = [t["name"] for t in doc["inputs"]]
    assert name.startswith("input_layer"), name
    assert doc["total_params"] == parent.count_params()
    # as a user runs it: a process that cuts and verifies, another that verifies again
    result = run_process("cut", path, "-o", tmp_path / "p.keras", "--output-layer",
                         "stack0_block0_out", "--verify", *HUB)
    assert result.code == 0, result.err
    again = run_process("verify", path, tmp_path / "p.keras", *HUB)
    assert again.code == 0, again.err
    images = np.random.default_rng(2).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    (want,) = activations(parent, [parent.get_layer("stack0_block0_out").output], images)
    got = loaded(tmp_path / "p.keras")(images, training=False)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_tied_embeddings_are_never_written_without_their_weights(tmp_path, capsys):
    """GPT2CausalLM calls its backbone's token_embedding again at the top (tied weights).
    Keras saves that layer's array once, inside the backbone: a file keeping the top-level use
    could not be loaded, so such cuts are refused; cuts inside the backbone work."""
    lm = keras_hub.models.GPT2CausalLM(
        backbone=keras_hub.models.GPT2Backbone(
            vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
            max_sequence_length=SEQ, name="gpt2_backbone"), preprocessor=None)
    path = tmp_path / "lm.keras"
    lm.save(path)
    for args in (("cut", "--input-layer", "gpt2_backbone/transformer_layer_1"), ("convert",)):
        result = run_cli(capsys, args[0], path, "-o", tmp_path / "x.keras", *args[1:], *HUB)
        assert_one_line_error(result, "token_embedding", "gpt2_backbone/token_embedding")
        assert not (tmp_path / "x.keras").exists()
    sub = cut(capsys, path, tmp_path / "inner.keras",
              "--output-layer", "gpt2_backbone/transformer_layer_1", "--verify")
    backbone = loaded(path).get_layer("gpt2_backbone")
    feed = text_inputs(40)
    (want,) = activations(backbone, [backbone.get_layer("transformer_layer_1").output], feed)
    np.testing.assert_allclose(np.asarray(loaded(sub)(feed, training=False)), want, atol=1e-6)


def test_building_never_runs_file_code_without_unsafe(hub, tmp_path, capsys):
    backbone = loaded(hub["gpt2"])
    inputs = {k: keras.Input((None,), dtype="int32", name=k)
              for k in ("token_ids", "padding_mask")}
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(backbone(inputs))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, x).save(path)
    result = run_cli(capsys, "inspect", path, *HUB)
    assert_one_line_error(result, "double", "--unsafe")
    without = run_cli(capsys, "cut", path, "-o", tmp_path / "x.keras", "--output-layer",
                      "gpt2_backbone/transformer_layer_0")
    assert_one_line_error(without, "gpt2_backbone", "--custom-objects keras_hub")
    with_it = run_cli(capsys, "cut", path, "-o", tmp_path / "x.keras", "--output-layer",
                      "gpt2_backbone/transformer_layer_0", "--unsafe", *HUB)
    assert with_it.code == 0, with_it.err
