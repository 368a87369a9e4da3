"""Write a submodel file: its config, and exactly its layers' arrays copied from the parent.

Arrays are copied dataset by dataset inside HDF5 (never the whole model in memory, bit for
bit). Keras finds them by position, so the layout follows Keras' own loaders:
- `.keras` (keras/src/saving/saving_lib.py): `model.weights.h5` holds `layers/<class>[_N]/...`
  per entry of `model.layers`, N counting same-class layers; a layer's sub-objects (an LSTM's
  `cell`, a nested model's `layers`) sit inside its group, so a group moves as a whole. The
  HDF5 file is written in place and the zip built around it (`ziparchive`).
- `.h5` (keras/src/legacy/saving/legacy_h5_format.py): `model_weights/<layer name>` per layer,
  its arrays listed in `weight_names` in `trainable_weights + non_trainable_weights` order,
  matched to the loaded model's layers by order.
"""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from keras_cut.core.errors import CutError, KerasCutError, ModelFileError
from keras_cut.cut.submodel import KeptLayer, Submodel, keras_layer_order
from keras_cut.cut.ziparchive import USERBLOCK, finish_keras_zip
from keras_cut.file.modelfile import ModelFile, NestedKey, WeightEntry, attr_text
from keras_cut.layers.known import NON_TRAINABLE_NAMES, array_layout, weight_specs
from keras_cut.layers.naming import snake_case, unique_name
from keras_cut.model.graph import Layer

WEIGHTS_MEMBER = "model.weights.h5"


def write_submodel(parent: ModelFile, sub: Submodel, path: Path, fmt: str,
                   record: dict[str, Any], freeze: bool) -> None:
    """Write `sub` to `path` (a fresh temporary file) as `.keras` or `.h5`.

    HDF5 reads the parent's metadata again as it copies: where it is damaged in a way the
    index did not touch (a heap, a symbol table entry, a layout field), h5py's error becomes
    one line naming the parent, never a traceback."""
    try:
        if fmt == "keras":
            _write_keras(parent, sub, path, record)
        else:
            _write_h5(parent, sub, path, record, freeze)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, KerasCutError):
            raise
        raise ModelFileError(f"{parent.path}: its weights cannot be copied ("
                             f"{' '.join(str(exc).split())[:200]}); the file is damaged") from exc
    except OSError as exc:
        if exc.errno is not None:  # the output's disk, not the parent's bytes
            raise
        raise ModelFileError(f"{parent.path}: its weights cannot be read ("
                             f"{' '.join(str(exc).split())[:200]}); the file is damaged") from exc


def keras_version(parent: ModelFile) -> str:
    """The Keras version the file claims: the parent's, else the installed Keras'."""
    if parent.keras_version and not parent.legacy:
        return parent.keras_version
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keras")
    except PackageNotFoundError:
        return "3"


# --- .keras ---------------------------------------------------------------------------------


def _write_keras(parent: ModelFile, sub: Submodel, path: Path, record: dict[str, Any]) -> None:
    import h5py

    # The weights file is written in place and the zip built around it (ziparchive): its bytes
    # are written once, never copied into the archive.
    moved: dict[str, str] = {}  # the parent's group of a kept layer -> the submodel's
    with parent.open_weights() as src, h5py.File(path, "w", userblock_size=USERBLOCK) as dst:
        layers = dst.create_group("layers")
        used: dict[str, int] = {}
        for layer in sub.layers:
            group = unique_name(snake_case(layer.class_name), used)
            _copy_keras_layer(parent, src, layers, group, layer)
            source = parent.groups.get(layer.key) if layer.source is not None else None
            if source is not None:
                moved[source] = f"layers/{group}"
        dst.create_group("vars")
    metadata = {"keras_version": keras_version(parent),
                "date_saved": datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    finish_keras_zip(path, WEIGHTS_MEMBER, [
        ("metadata.json", json.dumps(metadata).encode()),
        ("config.json", json.dumps(sub.config).encode()),
        ("keras_cut.json", json.dumps(record, indent=1).encode()),
        *_kept_assets(parent, moved),
    ])


def _kept_assets(parent: ModelFile, moved: dict[str, str]) -> list[tuple[str, bytes]]:
    """The files Keras saved for the kept layers (`save_assets`: an adapted lookup's
    vocabulary), under `assets/` + the layer's path in the weights, moved to its new path."""
    if parent.format != "keras" or not moved:
        return []
    found = []
    with zipfile.ZipFile(parent.source) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if parts[0] != "assets" or info.is_dir():
                continue
            inner = "/".join(parts[1:])
            for old, new in moved.items():
                if inner.startswith(old + "/"):
                    found.append((f"assets/{new}/{inner[len(old) + 1:]}",
                                  _read_asset(parent, zf, info.filename)))
                    break
    return found


def _read_asset(parent: ModelFile, zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise CutError(f"{parent.path}: the asset {name!r} cannot be read ({exc}); the file "
                       "is damaged") from exc


def _copy_keras_layer(parent: ModelFile, src: Any, layers: Any, group: str,
                      layer: KeptLayer) -> None:
    if layer.source is None:  # a new InputLayer: nothing stored, as Keras writes it
        layers.create_group(group).create_group("vars")
        return
    if parent.format == "keras" and not parent.legacy:
        source = parent.groups.get(layer.key)
        if source is None:
            layers.create_group(group).create_group("vars")
            return
        layers.copy(src[source], layers, name=group)
        vars_group = layers[group].get("vars")
        if vars_group is not None:
            saved_name = vars_group.attrs.get("name")
            if saved_name is not None and attr_text(saved_name) != layer.name:  # renamed
                vars_group.attrs["name"] = layer.name
        return
    # An .h5 parent: each array to where Keras 3 keeps it.
    target = layers.create_group(group)
    _place_h5_arrays(parent, src, target, layer.source, layer.key)


def _place_h5_arrays(parent: ModelFile, src: Any, target: Any, layer: Layer,
                     key: NestedKey) -> None:
    """An h5 parent's arrays of one layer (a nested model: all its layers) in `.keras` layout."""
    if layer.submodel is not None:
        target.create_group("vars")
        inner = target.create_group("layers")
        used: dict[str, int] = {}
        graph = layer.submodel
        for name in _graph_layer_order(layer):
            child = graph.by_name[name]
            group = inner.create_group(unique_name(snake_case(child.class_name), used))
            _place_h5_arrays(parent, src, group, child, key + (name,))
        return
    entries = _in_spec_order(layer, parent.weights.get(key, []))
    layout = array_layout(layer.class_name, layer.config, len(entries))
    if layout is None:
        raise CutError(
            f"{parent.path}: layer {layer.path!r} ({layer.class_name}) cannot be written to "
            "a .keras file: keras-cut does not know where Keras 3 keeps its arrays; write "
            "the submodel as .h5"
        )
    target.create_group("vars")
    for place, entry in zip(layout, entries, strict=False):
        owner, _, index = place.rpartition("/")
        dest = target.require_group(owner) if owner else target
        target.copy(src[entry.h5_path], dest, name=index)
        for part in owner.split("/")[:-2]:  # a sub-layer's own (empty) `vars`, as Keras writes
            target.require_group(f"{part}/vars")


def _graph_layer_order(layer: Layer) -> list[str]:
    """`model.layers` of a nested model as Keras 3 loads it."""
    graph = layer.submodel
    assert graph is not None
    if graph.class_name == "Sequential":
        names = [layer.name for layer in graph.layers]
        return names[1:] if graph.layers and graph.layers[0].is_input else names
    calls = {
        child.name: [] if child.is_input else
        [[(r.layer, r.call, r.index) for r in call.inputs] for call in child.calls]
        for child in graph.layers
    }
    inputs = [(r.layer, r.call, r.index) for r in graph.inputs]
    outputs = [(r.layer, r.call, r.index) for r in graph.outputs]
    return keras_layer_order(calls, inputs, outputs)


def keras_places(layer: Layer) -> dict[str, str]:
    """Where a `.keras` file keeps each array of an `.h5` file's layer (by the array's name in
    the `.h5`: `query/kernel` -> `query_dense/vars/0`), as `convert` writes them; empty where
    keras-cut does not know."""
    entries = _in_spec_order(layer, [w.entry for w in layer.weights])
    layout = array_layout(layer.class_name, layer.config, len(entries))
    if layout is None:
        return {}
    return {entry.name: place for entry, place in zip(entries, layout, strict=True)}


def _in_spec_order(layer: Layer, entries: list[WeightEntry]) -> list[WeightEntry]:
    """An h5 layer's arrays in the order its class creates them (h5 files list trainable
    arrays first)."""
    specs = weight_specs(layer.class_name, layer.config)
    if not specs:
        return entries
    rank = {name: i for i, (name, _) in enumerate(specs)}
    if "kernel" in rank:  # tf.keras 2's DepthwiseConv2D calls its kernel depthwise_kernel
        rank.setdefault("depthwise_kernel", rank["kernel"])
    short = [e.name.rsplit("/", 1)[-1] for e in entries]
    if not all(s in rank for s in short):
        return entries
    ranks = [rank[s] for s in short]
    return [e for _, e in sorted(zip(ranks, entries, strict=True), key=lambda p: p[0])]


# --- .h5 ------------------------------------------------------------------------------------


def _write_h5(parent: ModelFile, sub: Submodel, path: Path, record: dict[str, Any],
              freeze: bool) -> None:
    import h5py

    with parent.open_weights() as src, h5py.File(path, "w") as dst:
        dst.attrs["backend"] = "tensorflow"
        dst.attrs["keras_version"] = keras_version(parent)
        dst.attrs["model_config"] = json.dumps(sub.config).encode("utf8")
        dst.attrs["keras_cut"] = json.dumps(record, indent=1)
        weights = dst.create_group("model_weights")
        weights.attrs["layer_names"] = [layer.name.encode("utf8") for layer in sub.layers]
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = keras_version(parent).encode("utf8")
        for layer in sub.layers:
            group = weights.create_group(layer.name)
            arrays = [] if layer.source is None else _legacy_arrays(parent, layer, freeze)
            names = []
            for name, entry in arrays:
                parent_group = group.require_group(name.rsplit("/", 1)[0]) if "/" in name \
                    else group
                group.copy(src[entry.h5_path], parent_group, name=name.rsplit("/", 1)[-1])
                names.append(name.encode("utf8"))
            group.attrs["weight_names"] = names
        weights.create_group("top_level_model_weights").attrs["weight_names"] = []


def _legacy_arrays(parent: ModelFile, layer: KeptLayer,
                   freeze: bool) -> list[tuple[str, WeightEntry]]:
    """A layer's arrays as `layer.trainable_weights + layer.non_trainable_weights` lists them,
    each with the name to store it under."""
    source = layer.source
    assert source is not None
    leaves: list[tuple[str, Layer, NestedKey]] = []
    if source.submodel is None:
        leaves.append((layer.name, source, layer.key))
    else:
        _leaves(source, layer.key, "", leaves)
    trainable: list[tuple[str, WeightEntry]] = []
    frozen: list[tuple[str, WeightEntry]] = []
    for prefix, leaf, key in leaves:
        entries = parent.weights.get(key, [])
        if not entries:
            continue
        for name, entry, is_trainable in _leaf_weights(parent, leaf, entries):
            pair = (f"{prefix}/{name}", entry)
            if is_trainable and leaf.trainable and not freeze:
                trainable.append(pair)
            else:
                frozen.append(pair)
    return trainable + frozen


def _leaves(model: Layer, key: NestedKey, prefix: str,
            out: list[tuple[str, Layer, NestedKey]]) -> None:
    """The layers inside a nested model, in `model.weights` order, with their path in it."""
    assert model.submodel is not None
    for name in _graph_layer_order(model):
        child = model.submodel.by_name[name]
        if child.submodel is not None:
            _leaves(child, key + (name,), f"{prefix}{name}/", out)
        else:
            out.append((f"{prefix}{name}", child, key + (name,)))


def _leaf_weights(parent: ModelFile, leaf: Layer,
                  entries: list[WeightEntry]) -> list[tuple[str, WeightEntry, bool]]:
    """One layer's arrays in `layer.weights` order: (weight name, entry, trainable)."""
    specs = weight_specs(leaf.class_name, leaf.config)
    if parent.format == "keras" and not parent.legacy:
        layout = array_layout(leaf.class_name, leaf.config, len(entries))
        if specs is None or layout != [e.name for e in entries]:
            raise CutError(
                f"{parent.path}: layer {leaf.path!r} ({leaf.class_name}) cannot be written "
                "to an .h5 file: keras-cut does not know the order Keras' .h5 loader expects "
                "for its arrays; write the submodel as .keras"
            )
        return [(name, entry, is_trainable)
                for (name, is_trainable), entry in zip(specs, entries, strict=False)]
    ordered = _in_spec_order(leaf, entries)
    known = dict(specs or [])
    result = []
    for entry in ordered:
        short = entry.name.rsplit("/", 1)[-1]
        result.append((entry.name, entry, known.get(short, short not in NON_TRAINABLE_NAMES)))
    return result
