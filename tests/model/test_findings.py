"""`inspect` names what would run code or fail to load, per layer — and stays quiet otherwise."""

from __future__ import annotations

import json
import zipfile

import pytest

from keras_cut.inspect.inspection import inspect_model
from sample_models.registry import SAMPLES
from tests.cli_helpers import run_cli
from tests.corpus import rezip


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory, keras):
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    inp = keras.Input((4,), name="x")
    y = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    keras.Model(inp, keras.layers.Dense(2, name="out")(y)).save(path)
    return path


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory, keras):
    @keras.saving.register_keras_serializable(package="acme")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 3.0

    path = tmp_path_factory.mktemp("custom") / "custom.keras"
    inp = keras.Input((4,), name="x")
    keras.Model(inp, Scale(name="scale")(inp)).save(path)
    return path


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_clean_samples_have_no_findings(sample):
    assert inspect_model(sample.path).findings == []


def test_lambda_is_unsafe_and_named(lambda_model, capsys):
    findings = inspect_model(lambda_model).findings
    assert [(f.layer, f.severity, f.kind) for f in findings] == [("double", "unsafe", "code")]
    result = run_cli(capsys, "inspect", lambda_model)
    assert result.code == 0 and "double" in result.out and "unsafe" in result.out


def test_custom_class_is_unloadable_and_named(custom_model):
    findings = inspect_model(custom_model).findings
    assert [(f.layer, f.severity) for f in findings] == [("scale", "unloadable")]
    assert "acme>Scale" in findings[0].message


def test_vocabulary_file_and_custom_activation_are_found(tmp_path, keras):
    src = SAMPLES[0].path
    config = json.loads(zipfile.ZipFile(src).read("config.json"))
    dense = config["config"]["layers"][-1]["config"]
    dense["activation"] = {"module": "builtins", "class_name": "function",
                           "config": "evil_act", "registered_name": "function"}
    config["config"]["layers"][-2]["class_name"] = "StringLookup"
    config["config"]["layers"][-2]["config"]["vocabulary"] = "/etc/vocab.txt"
    path = rezip(tmp_path / "m.keras", src, replace={"config.json": json.dumps(config)})
    kinds = {(f.layer, f.kind) for f in inspect_model(path).findings}
    assert ("classification_head", "custom") in kinds
    assert ("intermediate_dense", "file") in kinds


def test_serialized_lambda_in_a_config_is_found(tmp_path):
    src = SAMPLES[0].path
    config = json.loads(zipfile.ZipFile(src).read("config.json"))
    config["config"]["layers"][-1]["config"]["activation"] = {
        "class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None}
    }
    path = rezip(tmp_path / "m.keras", src, replace={"config.json": json.dumps(config)})
    findings = inspect_model(path).findings
    assert [(f.layer, f.severity) for f in findings] == [("classification_head", "unsafe")]


@pytest.mark.parametrize("module", ["keras_hub.src.models.vit.vit_layers", "keras_cv.layers"])
def test_a_package_named_like_keras_is_not_keras(module, tmp_path, capsys):
    """keras_hub registers some classes without a package prefix (ViTPatchingAndEmbedding):
    only the config's module tells, and `keras_hub…` is not `keras`."""
    src = SAMPLES[0].path
    config = json.loads(zipfile.ZipFile(src).read("config.json"))
    head = config["config"]["layers"][-1]
    head.update(module=module, class_name="ViTPatchingAndEmbedding",
                registered_name="ViTPatchingAndEmbedding")
    path = rezip(tmp_path / "m.keras", src, replace={"config.json": json.dumps(config)})
    findings = inspect_model(path).findings
    assert [(f.layer, f.severity) for f in findings] == [("classification_head", "unloadable")]
    assert "ViTPatchingAndEmbedding" in findings[0].message
    assert f"needs {module.split('.')[0]}" in findings[0].message
    out = run_cli(capsys, "inspect", path).out
    assert "every class is part of Keras" not in out


@pytest.mark.parametrize("name", ["mobilenetv2.keras", "mobilenetv2.h5", "resnet50.keras",
                                  "wrapped_mobilenet.keras", "wrapped_mobilenet.h5"])
def test_real_architectures_have_no_findings(name, app_dir):
    assert inspect_model(app_dir / name).findings == []


def test_weights_from_another_architecture_are_found(tmp_path):
    from tests.corpus import build

    corpus = {bad.name: bad for bad in build(tmp_path)}
    for name, layer in (("weights_missing.keras", "conv2d_1"),
                        ("weights_extra.keras", "conv2d_1"),
                        ("weights_misshaped.keras", "intermediate_dense")):
        findings = inspect_model(corpus[name].path).findings
        assert [(f.layer, f.kind) for f in findings] == [(layer, "weights")], name


def test_an_implausible_size_is_a_finding_and_no_count(tmp_path, capsys):
    """A kernel_size of 1e30 would print a 50-digit MAC count: it is a finding instead, and the
    layer's shape and cost are unknown."""
    import json as _json

    from tests.corpus import cnn_config, rezip
    from tests.verify.test_verify_awkward import layer_config

    config = cnn_config()
    layer_config(config, "conv2d")["config"]["kernel_size"] = [1e30, 3]
    bad = rezip(tmp_path / "huge.keras", replace={"config.json": _json.dumps(config)})
    result = run_cli(capsys, "inspect", bad, "--json")
    doc = _json.loads(result.out)
    [finding] = [f for f in doc["findings"] if f["layer"] == "conv2d" and f["kind"] == "config"]
    assert finding["severity"] == "broken" and "kernel_size" in finding["message"]
    row = next(r for r in doc["layers"] if r["name"] == "conv2d")
    assert row["macs"] is None
    assert all(len(str(r["macs"])) < 20 for r in doc["layers"])


def test_a_nested_model_fed_what_its_input_cannot_take_is_broken(tmp_path, capsys, keras):
    """The parent's input says 1 channel (a JSON `true`, which Keras builds as 1), the nested
    backbone's input takes 3. Keras loads such a parent (a nested call is not checked), but a
    cut through the backbone would not load: it is refused; a head after the backbone is not
    touched by the damage and is cut."""
    spec = next(s for s in SAMPLES if s.name == "nested")
    config = json.loads(zipfile.ZipFile(spec.path).read("config.json"))
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 32, 32, True]
    path = tmp_path / "damaged.keras"
    rezip(path, spec.path, replace={"config.json": json.dumps(config).encode()})
    keras.saving.load_model(path, compile=False)  # what makes it worth finding: Keras loads it
    findings = inspect_model(path).findings
    assert [(f.layer, f.severity, f.kind) for f in findings] == [("backbone", "broken", "config")]
    assert "(None, 32, 32, 1)" in findings[0].message and "backbone_in" in findings[0].message
    through = run_cli(capsys, "cut", path, "-o", tmp_path / "pre.keras",
                      "--output-layer", "backbone/stem_relu")
    assert through.code == 2 and "backbone: call 0 passes 'image'" in through.err
    head = run_cli(capsys, "cut", path, "-o", tmp_path / "head.keras", "--input-layer", "pool")
    assert head.code == 0
    keras.saving.load_model(tmp_path / "head.keras", compile=False)
