"""The pure-Python HDF5 index (`hdf5lite`) against h5py's reading of the same files, its
guards against hostile files, and its fallback to h5py for anything outside its subset."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_cut.core.errors import KerasCutError, UnsafeModelError
from keras_cut.cut.cutting import cut_model
from keras_cut.file import hdf5lite, modelfile, weight_index, zipmember
from keras_cut.file.reading import read_model_file
from sample_models.registry import BY_NAME, SAMPLES
from tests import h5surgery
from tests.cli_helpers import ROOT, examples
from tests.corpus import rezip

CNN = BY_NAME["cnn"].path


def indices(path):
    """The weight index read in pure Python, and as h5py reads it."""
    with zipfile.ZipFile(path) as zf:
        size = zf.getinfo("model.weights.h5").file_size
        with zipmember.open_member(path, zf, "model.weights.h5") as member:
            lite = weight_index.scan_lite(path, member, size)
    return lite, h5py_index(path)


def h5py_index(path):
    with zipfile.ZipFile(path) as zf:
        size = zf.getinfo("model.weights.h5").file_size
        with zipmember.open_member(path, zf, "model.weights.h5") as member:
            with h5py.File(member, "r") as h5:
                groups: set[str] = set()
                datasets = weight_index.scan_h5(path, h5, size, groups)
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
    with zipfile.ZipFile(path) as zf, zipmember.open_member(path, zf, "model.weights.h5") as m:
        with pytest.raises(hdf5lite.Unsupported):
            weight_index.scan_lite(path, m, zf.getinfo("model.weights.h5").file_size)
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
    probe = ("import sys, io; from keras_cut.cli.app import main; sys.stdout = io.StringIO(); "
             f"code = main(['inspect', {str(BY_NAME['nested'].path)!r}]); "
             "sys.stdout = sys.__stdout__; "
             "print(sorted(m for m in ('h5py', 'numpy') if m in sys.modules)); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


@settings(max_examples=examples(300), deadline=None, derandomize=True,
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


# --- crafted inconsistencies (from a review: each fooled an earlier version) -----------------


def crafted(tmp_path, name, edit_h5=None, edit_bytes=None):
    with zipfile.ZipFile(CNN) as zf:
        buffer = io.BytesIO(zf.read("model.weights.h5"))
    if edit_h5 is not None:
        with h5py.File(buffer, "a") as h5:
            edit_h5(h5)
    data = bytearray(buffer.getvalue())
    if edit_bytes is not None:
        edit_bytes(data)
    return rezip(tmp_path / name, CNN, replace={"model.weights.h5": bytes(data)})


def test_an_external_file_hidden_past_the_message_count_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"SECRET" * 10)

    def external(h5):
        del h5["layers/dense_1/vars/1"]
        h5["layers/dense_1/vars"].create_dataset("1", shape=(10,), dtype="<f4",
                                                 external=[(str(secret), 0, 40)])
    path = crafted(tmp_path, "hidden_external.keras", external,
                   lambda data: h5surgery.hide_in_continuation(data, "layers/dense_1/vars/1", 7))
    with pytest.raises(UnsafeModelError, match="external file"):
        read_model_file(path)


def test_a_layout_hidden_past_the_message_count_is_still_read(tmp_path):
    path = crafted(tmp_path, "hidden_layout.keras", edit_bytes=lambda data:
                   h5surgery.hide_in_continuation(data, "layers/dense_1/vars/0", 8))
    assert read_model_file(path).arrays == h5py_index(path)[0]


def test_two_dataspaces_and_a_group_that_is_also_a_dataset_go_to_h5py(tmp_path):
    def two_dataspaces(data):
        addr = h5surgery.header_addr(data, "layers/dense_1/vars/1")
        msgs, _, _ = h5surgery.messages(data, addr)
        other = bytes([1, 2, 0, 0, 0, 0, 0, 0]) + struct.pack("<QQ", 5, 2)
        h5surgery.rewrite(data, addr, [m for m in msgs if m[0] != 0] + [(1, 0, other)])
    path = crafted(tmp_path, "two_dataspaces.keras", edit_bytes=two_dataspaces)
    with zipfile.ZipFile(path) as zf, zipmember.open_member(path, zf, "model.weights.h5") as m:
        with pytest.raises(hdf5lite.Unsupported, match="twice"):
            weight_index.scan_lite(path, m, zf.getinfo("model.weights.h5").file_size)
    assert read_model_file(path).arrays == h5py_index(path)[0]


def test_names_with_a_slash_are_not_taken_as_paths(tmp_path):
    def slash(data):
        i = data.find(b"varsX0\0")
        data[i:i + 7] = b"vars/0\0"
    path = crafted(tmp_path, "slash.keras", lambda h5: h5["layers/dense_1"].create_dataset(
        "varsX0", data=np.zeros((7, 7), "f4")), slash)
    assert read_model_file(path).arrays == h5py_index(path)[0]


def test_a_node_named_many_times_is_not_multiplied(tmp_path):
    """A B-tree whose children all name one symbol table node (a few KB of file, millions of
    entries): refused at once, never read N x M times."""
    def fanout(data):
        layers = h5surgery.header_addr(data, "layers")
        msgs, _, _ = h5surgery.messages(data, layers)
        btree = struct.unpack_from("<Q", [b for t, _, b in msgs if t == 17][0])[0]
        used = struct.unpack_from("<H", data, btree + 6)[0]
        assert used > 1 and data[btree + 5] == 0  # one level: its children are symbol nodes
        first = struct.unpack_from("<Q", data, btree + 32)[0]
        for i in range(used):
            struct.pack_into("<Q", data, btree + 32 + 16 * i, first)
    def many(h5):
        for i in range(40):  # several symbol table nodes under "layers"
            h5["layers"].create_group(f"extra_{i}")
    path = crafted(tmp_path, "fanout.keras", many, fanout)
    with zipfile.ZipFile(path) as zf, zipmember.open_member(path, zf, "model.weights.h5") as m:
        with pytest.raises(hdf5lite.Unsupported, match="twice"):
            weight_index.scan_lite(path, m, zf.getinfo("model.weights.h5").file_size)


def test_fixed_strings_h5py_reads_its_own_way_go_to_h5py(tmp_path):
    path = crafted(tmp_path, "nul.keras", lambda h5: h5["layers/dense_1/vars"].attrs.__setitem__(
        "name", np.bytes_(b"classification_head\0junk")))
    with zipfile.ZipFile(path) as zf, zipmember.open_member(path, zf, "model.weights.h5") as m:
        with pytest.raises(hdf5lite.Unsupported, match="fixed-length"):
            weight_index.scan_lite(path, m, zf.getinfo("model.weights.h5").file_size)


def test_a_corrupt_deflated_weight_member_is_a_one_line_error(tmp_path):
    path = tmp_path / "deflated.keras"
    with zipfile.ZipFile(CNN) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename),
                          compress_type=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 200, start + 260):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(KerasCutError, match="damaged"):
        read_model_file(path)


def test_two_arrays_sharing_bytes_are_refused(tmp_path, capsys):
    """A dataset whose layout points into another's data: what one array holds depends on
    the other, so neither may be read or copied as itself (inspect and cut refuse it)."""
    from tests.cli_helpers import assert_one_line_error, run_cli

    src = BY_NAME["cnn"].path
    data = bytearray(zipfile.ZipFile(src).read("model.weights.h5"))
    first, second = "layers/conv2d/vars/1", "layers/conv2d_1/vars/1"  # two biases
    with h5py.File(io.BytesIO(bytes(data)), "r") as h5:
        target = h5[first].id.get_offset()
    addr = h5surgery.header_addr(data, second)
    msgs, _, _ = h5surgery.messages(data, addr)
    layout = next(i for i, (kind, _, _) in enumerate(msgs) if kind == 8)
    kind, flags, body = msgs[layout]
    assert body[0] == 3 and body[1] == 1  # version 3, contiguous: address then size
    msgs[layout] = (kind, flags, body[:2] + struct.pack("<Q", target) + body[10:])
    h5surgery.rewrite(data, addr, [m for m in msgs if m[0] != 0])
    bad = rezip(tmp_path / "shared.keras", src, replace={"model.weights.h5": bytes(data)})
    with h5py.File(io.BytesIO(bytes(data)), "r") as h5:  # sanity: HDF5 reads one array twice
        assert np.asarray(h5[second])[:4].tobytes() == np.asarray(h5[first])[:4].tobytes()
    assert_one_line_error(run_cli(capsys, "inspect", bad), "share bytes", first, second)
    assert_one_line_error(run_cli(capsys, "cut", bad, "-o", tmp_path / "c.keras",
                                  "--output-layer", "flatten"), "share bytes")
