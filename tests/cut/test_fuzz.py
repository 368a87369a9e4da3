"""Mutated real files never crash the reader or `inspect`: a result or a KerasCutError, always.

Bounded examples and a deadline keep this fast enough for every CI run.
"""

from __future__ import annotations

import copy
import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from keras_cut.core.errors import KerasCutError
from keras_cut.cut.cutting import cut_model
from keras_cut.inspect.inspection import inspect_model
from keras_cut.model.classmodel import ClassModelReport
from keras_cut.present.render import render_class_model
from sample_models.registry import BY_NAME
from tests.cli_helpers import examples
from tests.corpus import rezip

SOURCES = {name: BY_NAME[name].path for name in ("cnn", "nested", "shared", "sequential", "text")}
CONFIGS = {name: json.loads(zipfile.ZipFile(p).read("config.json")) for name, p in SOURCES.items()}
# CI runs a bounded, repeatable sample; KERAS_CUT_FUZZ_EXAMPLES=5000 digs deeper by hand.
EXAMPLES = int(os.environ.get("KERAS_CUT_FUZZ_EXAMPLES", examples(150)))
SETTINGS = settings(max_examples=EXAMPLES, deadline=2000, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**63), st.floats(allow_nan=True),
    st.text(max_size=8), st.lists(st.integers(-3, 10**12), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def paths_in(value, prefix=()):
    """Every (path) to a value inside a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths_in(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from paths_in(child, prefix + (i,))


@st.composite
def mutated_config(draw):
    name = draw(st.sampled_from(sorted(CONFIGS)))
    config = copy.deepcopy(CONFIGS[name])
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in paths_in(config) if p]
        path = draw(st.sampled_from(paths))
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["drop", "retype", "duplicate", "cycle", "huge"]))
        key = path[-1]
        if op == "drop":
            del parent[key]
        elif op == "retype":
            parent[key] = draw(JUNK)
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif op == "cycle":
            layers = config.get("config", {}).get("layers") if isinstance(
                config.get("config"), dict) else None
            if isinstance(layers, list) and len(layers) > 2 and isinstance(layers[1], dict):
                last = layers[-1].get("name") if isinstance(layers[-1], dict) else None
                layers[1]["inbound_nodes"] = [{"args": [{"class_name": "__keras_tensor__",
                                                         "config": {"keras_history":
                                                                    [last, 0, 0]}}],
                                               "kwargs": {}}]
        elif op == "huge":
            parent[key] = [None, 10**15, 10**15]
    return name, config


def write_zip(tmp_path, name, config_bytes):
    path = tmp_path / "fuzz.keras"
    with zipfile.ZipFile(SOURCES[name]) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            data = config_bytes if info.filename == "config.json" else zin.read(info.filename)
            zout.writestr(info.filename, data)
    return path


def assert_clean(path):
    try:
        report = inspect_model(path)
    except KerasCutError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    json.dumps(report.to_dict(), allow_nan=False)  # a valid result is a valid JSON document
    if isinstance(report, ClassModelReport):  # no layer graph in the file: cut says so
        render_class_model(report, Console(file=io.StringIO()))
        with pytest.raises(KerasCutError, match="custom_objects") as caught:
            cut_model(path, path.with_name("fuzz_cut.keras"), ["x"], [], force=True)
        assert "\n" not in str(caught.value)
        return
    # What inspect reads, cut rewrites: it must write a file or fail with one line.
    names = [row.name for row in report.layers if row.class_name != "InputLayer"]
    if names:
        out = path.with_name("fuzz_cut.keras")
        try:
            cut_model(path, out, [names[len(names) // 2]], [], force=True)
        except KerasCutError as exc:
            assert str(exc) and "\n" not in str(exc)


@SETTINGS
@given(case=mutated_config())
def test_mutated_configs(case, tmp_path):
    name, config = case
    assert_clean(write_zip(tmp_path, name, json.dumps(config).encode()))


@SETTINGS
@given(name=st.sampled_from(sorted(CONFIGS)), cut=st.floats(0, 1), junk=st.binary(max_size=16))
def test_truncated_and_spliced_config_text(name, cut, junk, tmp_path):
    raw = json.dumps(CONFIGS[name]).encode()
    at = int(len(raw) * cut)
    assert_clean(write_zip(tmp_path, name, raw[:at] + junk + raw[at + len(junk):]))


@st.composite
def h5_mutation(draw):
    return draw(st.lists(st.tuples(st.sampled_from(["delete", "reshape", "retype", "attr",
                                                    "group"]),
                                   st.integers(0, 10**6)), min_size=1, max_size=3))


def mutate_h5(h5, mutations):
    names = []
    h5.visit(names.append)
    for op, pick in mutations:
        if not names:
            return
        name = names[pick % len(names)]
        if name not in h5:
            continue
        obj = h5[name]
        if op == "delete":
            del h5[name]
        elif op == "reshape" and isinstance(obj, h5py.Dataset):
            del h5[name]
            h5.create_dataset(name, data=np.zeros((pick % 7 + 1, 3), "float32"))
        elif op == "retype" and isinstance(obj, h5py.Dataset):
            del h5[name]
            h5.create_dataset(name, data=np.array([b"x"]))
        elif op == "attr":
            obj.attrs["name"] = pick
            obj.attrs["weight_names"] = [b"nope/kernel:0"]
        elif op == "group" and isinstance(obj, h5py.Group) and f"extra{pick}" not in obj:
            obj.create_group(f"extra{pick}").create_dataset("0", data=np.ones(2))
        names = []
        h5.visit(names.append)


@SETTINGS
@given(mutations=h5_mutation(), keras_format=st.booleans())
def test_mutated_h5_structure(mutations, keras_format, tmp_path):
    if keras_format:
        src = SOURCES["nested"]
        with zipfile.ZipFile(src) as zf:
            buffer = io.BytesIO(zf.read("model.weights.h5"))
        with h5py.File(buffer, "a") as h5:
            mutate_h5(h5, mutations)
        path = tmp_path / "fuzz.keras"
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
            for info in zin.infolist():
                data = buffer.getvalue() if info.filename == "model.weights.h5" else zin.read(
                    info.filename)
                zout.writestr(info.filename, data)
    else:
        path = tmp_path / "fuzz.h5"
        path.write_bytes(BY_NAME["cnn_h5"].path.read_bytes())
        with h5py.File(path, "a") as h5:
            mutate_h5(h5, mutations)
    assert_clean(path)


def _datasets(h5: h5py.File) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            try:
                found[name] = np.asarray(obj).tobytes()
            except Exception:  # a dataset h5py cannot read in the damaged source
                found[name] = None

    h5.visititems(visit)
    return found


WEIGHTS_BYTES = zipfile.ZipFile(SOURCES["cnn"]).read("model.weights.h5")


@SETTINGS
@given(flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1,
                      max_size=3))
def test_damaged_h5_metadata_is_an_error_or_a_faithful_copy(flips, tmp_path):
    """Bytes of the weight file's metadata (layout sizes, heaps, symbol tables) overwritten:
    `cut` either refuses in one line (a KerasCutError) or writes arrays identical to what
    HDF5 itself reads from the damaged source, never a traceback, never another array."""
    data = bytearray(WEIGHTS_BYTES)
    for position, value in flips:
        data[position] = value
    path = tmp_path / "damaged.keras"
    rezip(path, SOURCES["cnn"], replace={"model.weights.h5": bytes(data)})
    out = tmp_path / "cut.keras"
    try:
        cut_model(path, out, ["intermediate_dense"], [], force=True)
    except KerasCutError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    with zipfile.ZipFile(out) as zf:
        mine = _datasets(h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r"))
    assert mine, "a cut keeping three layers copied no array"
    with h5py.File(io.BytesIO(bytes(data)), "r") as source:
        for name, value in mine.items():
            try:  # what HDF5 reads at the same place in the damaged source, where it can
                theirs = np.asarray(source[name]).tobytes()
            except Exception:
                continue
            assert theirs == value, name


@pytest.mark.heavy
@settings(max_examples=examples(60), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=mutated_config())
def test_a_cut_of_a_mutated_file_keras_loads_is_one_keras_loads(case, tmp_path, keras):
    """What `cut` writes from a damaged config is a model, not just a file: where Keras itself
    loads the mutated parent, Keras loads the cut too (a middle layer's prefix)."""
    name, config = case
    path = write_zip(tmp_path, name, json.dumps(config).encode())
    try:
        keras.saving.load_model(path, compile=False)
    except Exception:
        return  # Keras refuses the mutated parent itself: nothing to hold the cut to
    try:
        report = inspect_model(path)
        if isinstance(report, ClassModelReport):
            return
        names = [row.name for row in report.layers if row.class_name != "InputLayer"]
        if not names:
            return
        out = tmp_path / "fuzz_loaded_cut.keras"
        cut_model(path, out, [names[len(names) // 2]], [], force=True)
    except KerasCutError:
        return
    keras.saving.load_model(out, compile=False)
