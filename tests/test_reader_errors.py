"""Bad files get one clear line and exit 2; hostile files are refused before anything is read.

Every guard test builds the hostile file from a good one, so it fails if the guard is removed."""

from __future__ import annotations

import json
import shutil
import zipfile

import h5py
import numpy as np
import pytest

from keras_cut.errors import ModelFileError, UnsafeModelError
from keras_cut.modelfile import read_model_file
from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli

CNN_KERAS = BY_NAME["cnn"].path
CNN_H5 = BY_NAME["cnn_h5"].path


def rezip(src, dst, drop=(), replace=None, extra=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = (replace or {}).get(info.filename, zin.read(info.filename))
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def bad_files(tmp):
    """(file, words the error must contain) for each kind of broken input."""
    (tmp / "folder.keras").mkdir()
    (tmp / "empty.keras").write_bytes(b"")
    rng = np.random.default_rng(0)
    (tmp / "random.keras").write_bytes(rng.bytes(4096))
    (tmp / "random.h5").write_bytes(rng.bytes(4096))
    data = CNN_KERAS.read_bytes()
    (tmp / "truncated.keras").write_bytes(data[: len(data) // 2])
    data = CNN_H5.read_bytes()
    (tmp / "truncated.h5").write_bytes(data[: len(data) // 3])
    rezip(CNN_KERAS, tmp / "noconfig.keras", drop={"config.json"})
    rezip(CNN_KERAS, tmp / "badjson.keras", replace={"config.json": b"{not json"})
    rezip(CNN_KERAS, tmp / "notmodel.keras", replace={"config.json": b'{"hello": 1}'})
    rezip(CNN_KERAS, tmp / "list.keras", replace={"config.json": b"[1, 2]"})
    config = json.loads(zipfile.ZipFile(CNN_KERAS).read("config.json"))
    config["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = (
        "ghost"
    )
    rezip(CNN_KERAS, tmp / "ghost.keras", replace={"config.json": json.dumps(config)})
    with h5py.File(tmp / "weights_only.weights.h5", "w") as h5:
        h5.create_group("layers/dense/vars").create_dataset("0", data=np.zeros(3))
        h5.create_group("vars")
    shutil.copy(CNN_H5, tmp / "garbage_config.h5")
    with h5py.File(tmp / "garbage_config.h5", "a") as h5:
        h5.attrs["model_config"] = "}}garbage{{"
    with h5py.File(tmp / "plain.h5", "w") as h5:
        h5.create_dataset("x", data=np.zeros(3))
    return [
        (tmp / "missing.keras", ["no such file"]),
        (tmp / "folder.keras", ["directory"]),
        (tmp / "empty.keras", ["empty"]),
        (tmp / "random.keras", ["not a Keras model file"]),
        (tmp / "random.h5", ["not a Keras model file"]),
        (tmp / "truncated.keras", ["damaged or truncated"]),
        (tmp / "truncated.h5", ["damaged or truncated"]),
        (tmp / "noconfig.keras", ["no config.json"]),
        (tmp / "badjson.keras", ["config.json", "not valid JSON"]),
        (tmp / "notmodel.keras", ["not a serialized Keras model"]),
        (tmp / "list.keras", ["not a JSON object"]),
        (tmp / "ghost.keras", ["ghost", "does not have"]),
        (tmp / "weights_only.weights.h5", ["only weights"]),
        (tmp / "garbage_config.h5", ["model_config", "not valid JSON"]),
        (tmp / "plain.h5", ["not a Keras model"]),
    ]


def test_every_bad_file_is_one_error_line(tmp_path, capsys):
    for path, words in bad_files(tmp_path):
        before = path.read_bytes() if path.is_file() else None
        result = run_cli(capsys, "inspect", path)
        assert_one_line_error(result, str(path), *words)
        assert result.out == ""
        if before is not None:
            assert path.read_bytes() == before


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


def test_h5_shape_bomb_is_refused(tmp_path):
    path = copy_h5(tmp_path)
    with h5py.File(path, "a") as h5:
        h5["model_weights/conv2d"].create_dataset("bomb", shape=(2**32,), dtype="f8")
    with pytest.raises(UnsafeModelError, match="shape bomb"):
        read_model_file(path)


def test_zip_path_trick_is_refused(tmp_path):
    path = rezip(CNN_KERAS, tmp_path / "m.keras", extra={"../evil.txt": b"x"})
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
