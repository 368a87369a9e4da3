"""What verify feeds the parent: the user's arrays (--inputs FILE.npz, by input name) or seeded
random data that fits each input (floats in [-1, 1), integers inside the vocabulary of the
Embedding they feed, unknown dimensions from --input-shape or 8). NumPy only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keras_cut.core.address import TensorAddress
from keras_cut.core.errors import Option, UsageError
from keras_cut.layers import known
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import LayerGraph

FLOAT_RANGE = (-1.0, 1.0)  # seeded float inputs: uniform in [-1, 1)
INT_HIGH = 100  # seeded integer inputs not feeding an Embedding: [0, 100)
DEFAULT_DIM = 8  # an unknown (None) non-batch dimension, unless --input-shape says otherwise



def parent_data(flat: FlatGraph, graph: LayerGraph, samples: int, seed: int,
                 inputs: str | Path | None, shapes: dict[str, tuple[int, ...]],
                 notices: list[str], option: Option = Option.INPUTS) -> dict[str, np.ndarray]:
    """Arrays for each parent input: from --inputs, or seeded random data that fits each input.
    `option`: the setting that named the `inputs` file, for its errors (`calibration`)."""
    names = [graph.by_name[r.layer].name for r in graph.inputs]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise UsageError(Option.INPUT_SHAPES,
                         f" names {unknown[0]!r}, which is not an input of the "
                         f"parent (inputs: {', '.join(names)})")
    specs = {}
    for ref, name in zip(graph.inputs, names, strict=True):
        tensor = graph.tensor(ref)
        specs[name] = (tensor.shape or (None,), tensor.dtype or "float32")
    if inputs is not None:
        return _load_inputs(Path(inputs), specs, samples, option)
    rng = np.random.default_rng(seed)
    data = {}
    for ref, name in zip(graph.inputs, names, strict=True):
        shape, dtype = specs[name]
        dims = list(shape[1:])
        if name in shapes:
            given = shapes[name]
            if len(given) != len(dims) or any(d is not None and d != g
                                               for d, g in zip(dims, given, strict=False)):
                raise UsageError(Option.INPUT_SHAPES,
                                 f" {name}={','.join(map(str, given))} does not "
                                 f"fit the input's shape {tuple(shape)}")
            dims = list(given)
        elif None in dims:
            dims = [DEFAULT_DIM if d is None else d for d in dims]
            notices.append(f"input {name!r} has unknown dimensions {tuple(shape)}; used "
                           f"{tuple(dims)} (set them with --input-shape {name}=...)")
        full = (samples, *(DEFAULT_DIM if d is None else d for d in dims))
        if dtype == "string":
            raise UsageError(f"input {name!r} takes strings; give real data with ",
                             Option.INPUTS, " "
                             "FILE.npz")
        if dtype == "bool":
            data[name] = rng.integers(0, 2, size=full).astype(bool)
        elif "int" in dtype:
            high = _vocabulary(flat, flat.canonical(flat.tensor((), ref))) or INT_HIGH
            data[name] = rng.integers(0, high, size=full).astype(dtype)
        else:
            data[name] = rng.uniform(*FLOAT_RANGE, size=full).astype(dtype)
    return data


def _vocabulary(flat: FlatGraph, tensor: TensorAddress) -> int | None:
    """The smallest id table (an Embedding's input_dim) this integer input reaches, directly
    or through layers that only move ids around (`known` entries' `vocabulary`, `keeps_ids`);
    None when it reaches none."""
    sizes = []
    todo, seen = [tensor], set()
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        for node in flat.consumers.get(t, []):
            layer = flat.layer(node)
            kind = known.entry(layer.class_name)
            key = kind.vocabulary
            if key is not None and isinstance(layer.config.get(key), int):
                sizes.append(layer.config[key])
            elif kind.keeps_ids:
                todo.extend(flat.outputs_of(node))
    return min(sizes) if sizes else None


def _load_inputs(path: Path, specs: dict[str, tuple[Any, str]], samples: int,
                 option: Option) -> dict[str, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise UsageError(option, f" {path}: cannot be read as .npz ({exc})") from exc
    missing = [n for n in specs if n not in arrays]
    extra = [n for n in arrays if n not in specs]
    if missing or extra:
        raise UsageError(
            option, f" {path}: arrays must be named after the parent's inputs "
            f"({', '.join(specs)}); missing {missing or 'none'}, unexpected {extra or 'none'}"
        )
    data, count = {}, None
    for name, (shape, dtype) in specs.items():
        array = arrays[name]
        if array.ndim != len(shape) or any(
                d is not None and d != a for d, a in zip(shape[1:], array.shape[1:], strict=True)):
            raise UsageError(option, f" {path}: {name!r} has shape {array.shape}, the input "
                             f"takes {tuple(shape)}")
        if not np.can_cast(array.dtype, dtype, casting="same_kind"):
            raise UsageError(option, f" {path}: {name!r} is {array.dtype}, the input takes "
                             f"{dtype}")
        if count is not None and len(array) != count:
            raise UsageError(option, f" {path}: arrays have different numbers of samples")
        count = len(array)
        data[name] = array[:samples].astype(dtype)
    if not count:
        raise UsageError(option, f" {path}: the arrays hold no samples")
    return data
