"""Shell completion: layer names from the MODEL on the command line, model files for file
arguments, through the functions and through the shell protocol (as bash and zsh call it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from keras_cut.cli.completion import complete_layer, complete_model_file, layer_names
from sample_models.registry import BY_NAME
from tests.cli_helpers import ROOT


def test_layer_names_are_what_options_accept(keras, capsys):
    from tests.cli_helpers import run_cli

    shared = BY_NAME["shared"].path
    assert complete_layer(shared, "shared_d") == ["shared_dense", "shared_dense@0",
                                                 "shared_dense@1"]
    nested = BY_NAME["nested"].path
    assert "backbone/block/block_conv" in complete_layer(nested, "backbone/b")
    assert complete_layer(nested, "BACKBONE/STEM_C") == ["backbone/stem_conv"]  # any case
    assert complete_layer(nested, "zzz") == [] and complete_layer(None, "") == []
    assert complete_layer(ROOT / "README.md", "") == []  # not a model: nothing, no error
    # every name offered is one `inspect --layer` accepts, and Keras' own layers are all there
    model = keras.saving.load_model(nested, compile=False)
    names = layer_names(nested)
    assert {layer.name for layer in model.layers} <= set(names)
    for name in names:
        assert run_cli(capsys, "inspect", nested, "--layer", name, "--json").code == 0, name


def test_model_files(tmp_path):
    (tmp_path / "a.keras").write_bytes(b"")
    (tmp_path / "b.h5").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "sub").mkdir()
    prefix = str(tmp_path) + "/"
    assert complete_model_file(prefix) == [prefix + "a.keras", prefix + "b.h5", prefix + "sub/"]
    assert complete_model_file(prefix + "a") == [prefix + "a.keras"]


def _complete(env: dict[str, str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "keras_cut"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env=dict(os.environ, **env))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_bash_protocol():
    words = f"keras-cut cut {BY_NAME['shared'].path} -o x.keras --output-layer shared_dense@"
    assert _complete({"_KERAS_CUT_COMPLETE": "complete_bash", "COMP_WORDS": words,
                      "COMP_CWORD": "6"}) == ["shared_dense@0", "shared_dense@1"]
    words = "keras-cut inspect sample_models/nes"
    assert _complete({"_KERAS_CUT_COMPLETE": "complete_bash", "COMP_WORDS": words,
                      "COMP_CWORD": "2"}) == ["sample_models/nested.keras"]


def test_zsh_protocol():
    args = f"keras-cut graph {BY_NAME['nested'].path} --input-layer backbone/stem_r"
    out = "\n".join(_complete({"_KERAS_CUT_COMPLETE": "complete_zsh",
                               "_TYPER_COMPLETE_ARGS": args}))
    assert '"backbone/stem_relu"' in out and "stem_conv" not in out


def test_model_after_the_option_and_calls_of_nested_models(tmp_path, keras):
    layers = keras.layers
    i = keras.Input((4,), name="enc_in")
    encoder = keras.Model(i, layers.Dense(3, name="proj")(i), name="encoder")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    siamese = tmp_path / "siamese.keras"
    keras.Model([a, b], layers.Concatenate(name="cat")([encoder(a), encoder(b)])).save(siamese)
    words = f"keras-cut cut --output-layer encoder@1/ {siamese}"  # the model typed afterwards
    assert _complete({"_KERAS_CUT_COMPLETE": "complete_bash", "COMP_WORDS": words,
                      "COMP_CWORD": "3"}) == ["encoder@1/enc_in", "encoder@1/proj"]


def test_bash_gets_escaped_names_quoted(tmp_path, keras):
    x = keras.Input((2,), name="x")
    path = tmp_path / "odd.keras"
    keras.Model(x, keras.layers.Dense(2, name="dense@1")(x)).save(path)
    words = f"keras-cut inspect {path} --layer dense"
    assert _complete({"_KERAS_CUT_COMPLETE": "complete_bash", "COMP_WORDS": words,
                      "COMP_CWORD": "4"}) == ["dense\\\\@1"]  # bash leaves dense\\@1


def test_a_model_typed_with_tilde_or_a_variable(tmp_path):
    """Completion sees the words as typed: `~/m.keras` and `$HOME/m.keras` name the file the
    shell will pass."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(BY_NAME["shared"].path, home / "m.keras")
    for typed in ("~/m.keras", "$HOME/m.keras"):
        words = f"keras-cut cut {typed} -o x.keras --output-layer shared_dense@"
        assert _complete({"_KERAS_CUT_COMPLETE": "complete_bash", "COMP_WORDS": words,
                          "COMP_CWORD": "6", "HOME": str(home)}) == \
            ["shared_dense@0", "shared_dense@1"], typed


def test_columns_complete_one_after_another():
    words = "keras-cut inspect m.keras --columns class,m"
    assert _complete({"_KERAS_CUT_COMPLETE": "complete_bash", "COMP_WORDS": words,
                      "COMP_CWORD": "4"}) == ["class,macs", "class,memory"]
    words = "keras-cut inspect m.keras --columns "
    assert "trainable" in _complete({"_KERAS_CUT_COMPLETE": "complete_bash",
                                     "COMP_WORDS": words, "COMP_CWORD": "4"})
