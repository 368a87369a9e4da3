"""The pure-Python HDF5 index (`hdf5lite`) against h5py's reading of the same files, its
guards against hostile files, and its fallback to h5py for anything outside its subset."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_cut import hdf5lite, modelfile
from keras_cut.cutting import cut_model
from keras_cut.errors import KerasCutError, UnsafeModelError
from keras_cut.modelfile import read_model_file
from sample_models.registry import BY_NAME, SAMPLES
from tests.cli_helpers import ROOT
from tests.corpus import rezip

CNN = BY_NAME["cnn"].path


def indices(path):
    """The weight index read in pure Python, and as h5py reads it."""
    with zipfile.ZipFile(path) as zf:
        size = zf.getinfo("model.weights.h5").file_size
        with modelfile.open_member(path, zf, "model.weights.h5") as member:
            lite = modelfile._scan_lite(path, member, size)
    return lite, h5py_index(path)


def h5py_index(path):
    with zipfile.ZipFile(path) as zf:
        size = zf.getinfo("model.weights.h5").file_size
        with modelfile.open_member(path, zf, "model.weights.h5") as member:
            with h5py.File(member, "r") as h5:
                groups: set[str] = set()
                datasets = modelfile._scan_h5(path, h5, size, groups)
                attrs = {}
                for group in groups:
                    for key, value in h5[group].attrs.items():
                        if isinstance(value, (str, bytes)):
                            attrs.setdefault(group, {})[key] = modelfile.attr_text(value)
    return datasets, groups, attrs


def assert_same(path):
    lite, (datasets, groups, attrs) = indices(path)
    assert lite.datasets == datasets
    assert lite.groups == groups
    assert lite.attrs == attrs


KERAS_FILES = [m.path for m in SAMPLES if m.path.suffix == ".keras"]


@pytest.mark.parametrize("path", KERAS_FILES, ids=[p.name for p in KERAS_FILES])
def test_sample_models_read_as_h5py_reads_them(path):
    assert_same(path)


def test_files_keras_cut_writes(tmp_path):
    """A cut's weight file sits after a 512-byte user block holding the zip header."""
    for model in KERAS_FILES:
        out = tmp_path / f"{model.stem}_whole.keras"
        cut_model(model, out, [], [], whole=True)
        assert_same(out)


def weights_edit(tmp_path, name, edit):
    return rezip(tmp_path / name, CNN, weights=edit)


def test_string_attributes_fixed_and_variable_length(tmp_path):
    def edit(h5):
        group = h5["layers"][next(iter(h5["layers"]))]
        group.attrs["fixed"] = np.bytes_("abc")
        group.attrs["variable"] = "näme"
        group.attrs["number"] = 3  # not a string: not indexed
    assert_same(weights_edit(tmp_path, "attrs.keras", edit))


def test_bfloat16_marker(tmp_path):
    import ml_dtypes

    def edit(h5):
        ds = h5["layers"].create_dataset("extra", data=np.ones((3, 2), ml_dtypes.bfloat16))
        ds.attrs["dtype"] = "bfloat16"
    path = weights_edit(tmp_path, "bf16.keras", edit)
    lite, (datasets, _, _) = indices(path)
    assert lite.datasets["layers/extra"] == ((3, 2), "bfloat16")
    assert datasets["layers/extra"][0] == (3, 2)


def test_mixed_precision_and_dtypes(tmp_path):
    def edit(h5):
        for dtype in ("float16", "float64", "int8", "uint8", "int32", "int64", "uint16"):
            h5["layers"].create_dataset(f"x_{dtype}", data=np.zeros((2, 3), dtype))
        h5["layers"].create_dataset("scalar", data=np.float32(1))
        h5["layers"].create_dataset("empty", data=np.zeros((0, 4), "float32"))
    assert_same(weights_edit(tmp_path, "dtypes.keras", edit))


@pytest.mark.parametrize("what", ["chunked", "gzip", "latest", "bool", "big-endian"])
def test_outside_the_subset_h5py_reads_it(tmp_path, what):
    """What the pure reader does not handle raises Unsupported; the index then comes from
    h5py, and is the same."""
    def edit(h5):
        if what == "chunked":
            h5["layers"].create_dataset("c", data=np.ones((64, 8), "f4"), chunks=(8, 8))
        elif what == "gzip":
            h5["layers"].create_dataset("c", data=np.ones((64, 8), "f4"), compression="gzip")
        elif what == "bool":
            h5["layers"].create_dataset("c", data=np.ones((4,), bool))
        elif what == "big-endian":
            h5["layers"].create_dataset("c", data=np.ones((4,), ">f4"))
    path = weights_edit(tmp_path, f"{what}.keras", edit)
    if what == "latest":  # superblock v3 and new-style groups: rewrite the whole weight file
        with zipfile.ZipFile(CNN) as zf:
            src = h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r")
        buffer = io.BytesIO()
        with h5py.File(buffer, "w", libver="latest") as dst:
            for key in src:
                src.copy(src[key], dst, name=key)
        path = rezip(tmp_path / "latest.keras", CNN,
                     replace={"model.weights.h5": buffer.getvalue()})
    with zipfile.ZipFile(path) as zf, modelfile.open_member(path, zf, "model.weights.h5") as m:
        with pytest.raises(hdf5lite.Unsupported):
            modelfile._scan_lite(path, m, zf.getinfo("model.weights.h5").file_size)
    model = read_model_file(path)  # through h5py
    assert model.arrays == h5py_index(path)[0]
    if what == "latest":
        assert model.weights == read_model_file(CNN).weights


@pytest.mark.parametrize("hostile,words", [
    ("soft_link", "soft link"),
    ("external_link", "external link"),
    ("external_dataset", "external file"),
    ("shape_bomb", "shape bomb"),
])
def test_hostile_weight_files_are_refused(tmp_path, hostile, words):
    (tmp_path / "outside.bin").write_bytes(b"\0" * 64)

    def edit(h5):
        layers = h5["layers"]
        if hostile == "soft_link":
            layers["evil"] = h5py.SoftLink("/layers")
        elif hostile == "external_link":
            layers["evil"] = h5py.ExternalLink("/etc/passwd", "/")
        elif hostile == "external_dataset":
            layers.create_dataset("evil", shape=(16,), dtype="f4",
                                  external=[(str(tmp_path / "outside.bin"), 0, 64)])
        elif hostile == "shape_bomb":
            layers.create_dataset("evil", shape=(2**32,), dtype="f8")
    path = weights_edit(tmp_path, f"{hostile}.keras", edit)
    with pytest.raises(UnsafeModelError, match=words):
        read_model_file(path)


def test_deep_nesting_is_refused(tmp_path):
    def edit(h5):
        group = h5["layers"]
        for i in range(modelfile.MAX_H5_DEPTH + 2):
            group = group.create_group(f"g{i}")
    with pytest.raises(UnsafeModelError, match="nest deeper"):
        read_model_file(weights_edit(tmp_path, "deep.keras", edit))


def test_inspect_of_a_keras_file_imports_neither_h5py_nor_numpy():
    probe = ("import sys, io; from keras_cut.cli import main; sys.stdout = io.StringIO(); "
             f"code = main(['inspect', {str(BY_NAME['nested'].path)!r}]); "
             "sys.stdout = sys.__stdout__; "
             "print(sorted(m for m in ('h5py', 'numpy') if m in sys.modules)); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=8))
def test_damaged_weight_files_are_read_or_refused_in_one_line(flips, tmp_path):
    """Bytes flipped anywhere in the weight file: the index is read (by either reader) or the
    file refused with a keras-cut error; never another exception, never a hang."""
    with zipfile.ZipFile(BY_NAME["nested"].path) as zf:
        data = bytearray(zf.read("model.weights.h5"))
    for where, value in flips:
        data[int(where * (len(data) - 1))] ^= value
    path = rezip(tmp_path / "flipped.keras", BY_NAME["nested"].path,
                 replace={"model.weights.h5": bytes(data)})
    try:
        read_model_file(path)
    except KerasCutError as exc:
        assert str(exc) and "\n" not in str(exc)
