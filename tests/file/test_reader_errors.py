"""Hostile files are refused before anything is read (the bad-file corpus is test_corpus.py).

Every guard test builds the hostile file from a good one, so it fails if the guard is removed."""

from __future__ import annotations

import shutil
import zipfile

import h5py
import numpy as np
import pytest

from keras_cut.core.errors import ModelFileError, UnsafeModelError
from keras_cut.file.reading import read_model_file
from sample_models.registry import BY_NAME
from tests.cli_helpers import run_cli
from tests.corpus import rezip

CNN_KERAS = BY_NAME["cnn"].path
CNN_H5 = BY_NAME["cnn_h5"].path


def test_debug_shows_the_traceback(tmp_path, capsys):
    (tmp_path / "empty.keras").write_bytes(b"")
    result = run_cli(capsys, "--debug", "inspect", tmp_path / "empty.keras")
    assert result.code == 2
    assert "Traceback" in result.err and "Error: " in result.err


# --- guards against hostile files ---------------------------------------------------------


def copy_h5(tmp_path):
    return shutil.copy(CNN_H5, tmp_path / "m.h5")


def test_h5_soft_link_is_refused(tmp_path):
    path = copy_h5(tmp_path)
    with h5py.File(path, "a") as h5:
        h5["model_weights/conv2d/evil"] = h5py.SoftLink("/model_weights/conv2d_1")
    with pytest.raises(UnsafeModelError, match="soft link"):
        read_model_file(path)


def test_h5_external_link_is_refused(tmp_path):
    path = copy_h5(tmp_path)
    with h5py.File(path, "a") as h5:
        h5["model_weights/evil"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(UnsafeModelError, match="external link"):
        read_model_file(path)


def test_h5_external_dataset_is_refused(tmp_path):
    path = copy_h5(tmp_path)
    (tmp_path / "outside.bin").write_bytes(b"\0" * 64)
    with h5py.File(path, "a") as h5:
        h5["model_weights/conv2d"].create_dataset(
            "ext", shape=(16,), dtype="f4", external=[(str(tmp_path / "outside.bin"), 0, 64)]
        )
    with pytest.raises(UnsafeModelError, match="external file"):
        read_model_file(path)


def test_h5_virtual_dataset_is_refused(tmp_path):
    path = copy_h5(tmp_path)
    source = tmp_path / "elsewhere.h5"
    with h5py.File(source, "w") as h5:
        h5.create_dataset("data", data=np.arange(16, dtype="f4"))
    layout = h5py.VirtualLayout(shape=(16,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(source), "data", shape=(16,))
    with h5py.File(path, "a") as h5:
        h5["model_weights/conv2d"].create_virtual_dataset("virtual", layout)
    with pytest.raises(UnsafeModelError, match="virtual"):
        read_model_file(path)


def test_h5_shape_bomb_is_refused(tmp_path):
    path = copy_h5(tmp_path)
    with h5py.File(path, "a") as h5:
        h5["model_weights/conv2d"].create_dataset("bomb", shape=(2**32,), dtype="f8")
    with pytest.raises(UnsafeModelError, match="shape bomb"):
        read_model_file(path)


def test_zip_path_trick_is_refused(tmp_path):
    path = rezip(tmp_path / "m.keras", extra={"../evil.txt": b"x"})
    with pytest.raises(UnsafeModelError, match="path trick"):
        read_model_file(path)


def test_zip_bomb_member_is_refused(tmp_path):
    path = tmp_path / "m.keras"
    shutil.copy(CNN_KERAS, path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("assets/zeros.bin", b"\0" * (64 * 2**20))
    with pytest.raises(UnsafeModelError, match="zip bomb"):
        read_model_file(path)


def test_good_files_pass_the_guards():
    for path in (CNN_KERAS, CNN_H5):
        model = read_model_file(path)
        assert model.weights and not model.stray_weights


def test_damaged_weight_index_is_an_error(tmp_path):
    path = copy_h5(tmp_path)
    with h5py.File(path, "a") as h5:
        del h5["model_weights/conv2d/conv2d/kernel"]
    with pytest.raises(ModelFileError, match="conv2d"):
        read_model_file(path)


def test_a_functional_config_without_layers_is_damaged(tmp_path, capsys):
    """Not a model saved as its class: no --custom-objects advice for Keras' own Functional."""
    import json as _json

    from tests.cli_helpers import assert_one_line_error
    from tests.corpus import cnn_config, rezip

    config = cnn_config()
    del config["config"]["layers"]
    bad = rezip(tmp_path / "nolayers.keras", replace={"config.json": _json.dumps(config)})
    for command in (["inspect", bad], ["cut", bad, "-o", tmp_path / "x.keras",
                                       "--output-layer", "a"]):
        result = run_cli(capsys, *command)
        assert_one_line_error(result, "no list of layers", "damaged")
        assert "--custom-objects" not in result.err
