"""Golden files: what a parent computed at a submodel's inputs and outputs, kept so that the
submodel can be checked later (in CI) without the parent.

An `.npz` (read with allow_pickle=False) holding `input/<i>` and `output/<i>` arrays and one
JSON document, `keras_cut_golden`: the format version, the parent's file name and size, the seed
and sample count, the tolerances, each input and output (submodel name, parent source, shape,
dtype), a SHA-256 of every weight array the submodel should hold, by parent layer path, and
the parent's structure where the submodel stands (each kept layer's serialized form, each of
its calls' wiring and arguments, each input's shape and dtype: `structure.ParentStructure`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keras_cut.core.errors import Option, UsageError
from keras_cut.core.jsonvalues import as_dict
from keras_cut.model.endpoint import Endpoint
from keras_cut.model.structure import ParentStructure
from keras_cut.verify.comparison import Tolerances, check_tolerance

# 2: the parent's structure (configs, calls, inputs) is stored and checked too
FORMAT = 2
META = "keras_cut_golden"
HEX = frozenset("0123456789abcdef")


@dataclass
class Golden:
    parent: dict[str, Any]
    seed: int | None
    samples: int
    tolerances: Tolerances
    inputs: list[Endpoint]  # shape and dtype as stored (the batch dimension None)
    outputs: list[Endpoint]
    weights: dict[str, str]  # "parent layer path|state label" -> sha256 hex
    structure: ParentStructure
    input_arrays: list[np.ndarray] = field(default_factory=list, repr=False)
    output_arrays: list[np.ndarray] = field(default_factory=list, repr=False)


def weight_key(parent_path: str, label: str) -> str:
    return f"{parent_path}|{label}"


def digest(array: np.ndarray) -> str:
    import hashlib

    array = np.ascontiguousarray(array)
    head = f"{array.dtype.str}{list(array.shape)}".encode()
    return hashlib.sha256(head + array.tobytes()).hexdigest()


def write(target: Path, golden: Golden) -> None:
    """Write to `target` (the caller makes it atomic)."""
    meta = {
        "format": FORMAT, "tool": "keras-cut", "parent": golden.parent, "seed": golden.seed,
        "samples": golden.samples, "tolerances": golden.tolerances.to_dict(),
        "inputs": [t.golden_dict() for t in golden.inputs],
        "outputs": [t.golden_dict() for t in golden.outputs],
        "weights": golden.weights, "structure": golden.structure.to_dict(),
    }
    arrays = {f"input/{i}": a for i, a in enumerate(golden.input_arrays)}
    arrays.update({f"output/{i}": a for i, a in enumerate(golden.output_arrays)})
    with target.open("wb") as fh:
        arrays[META] = np.array(json.dumps(meta))
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # NumPy's stub types kwds as bool


class _Bad(ValueError):
    """What is wrong with a golden file, in a few words."""


def read(path: Path) -> Golden:
    """The golden file, validated completely before anything uses it: every array's shape
    and dtype against its description, finite tolerances >= 0, no object arrays; a UsageError
    naming what is wrong otherwise."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if META not in names:
                raise _Bad(f"it holds no {META} document: not written by keras-cut's verify")
            meta = json.loads(str(archive[META]))
            golden = _golden(meta)
            golden.input_arrays = _arrays(archive, names, "input", golden.inputs)
            golden.output_arrays = _arrays(archive, names, "output", golden.outputs)
            extra = sorted(names - {META} - {f"input/{i}" for i in range(len(golden.inputs))}
                           - {f"output/{i}" for i in range(len(golden.outputs))})
            if extra:
                raise _Bad(f"unexpected array {extra[0]!r}")
    except _Bad as exc:
        raise _bad(path, str(exc)) from exc
    except RecursionError as exc:
        raise _bad(path, "its document nests too deeply") from exc
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise _bad(path, why) from exc
    for what, arrays in (("input", golden.input_arrays), ("output", golden.output_arrays)):
        for i, array in enumerate(arrays):
            if len(array) != golden.samples:
                raise _bad(path, f"{what}/{i} has {len(array)} samples, the document says "
                                 f"{golden.samples}")
    return golden


def _bad(path: Path, why: str) -> UsageError:
    return UsageError(f"{path}: not a usable keras-cut golden file ({why}); write one with ",
                      Option.SAVE_GOLDEN, " when verifying against the parent model")


def _golden(meta: Any) -> Golden:
    if not isinstance(meta, dict):
        raise _Bad("its document is not an object")
    if meta.get("format") != FORMAT:
        older = " (written by an older keras-cut, which did not store the parent's configs: "\
            "write it again)" if meta.get("format") == 1 else ""
        raise _Bad(f"format {meta.get('format')!r}, this keras-cut reads format "
                   f"{FORMAT}{older}")
    seed, samples = meta.get("seed"), meta.get("samples")
    if seed is not None and not _integer(seed):
        raise _Bad("seed is not an integer")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise _Bad("samples is not a positive integer")
    weights = meta.get("weights")
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) == 64 and set(v) <= HEX
            for k, v in weights.items()):
        raise _Bad("weights are not SHA-256 digests by name")
    if not isinstance(meta.get("parent"), dict):
        raise _Bad("parent is not an object")
    try:
        structure = ParentStructure.from_dict(meta.get("structure"))
    except ValueError as exc:
        raise _Bad(str(exc)) from exc
    return Golden(parent=dict(meta["parent"]), seed=seed, samples=samples,
                  tolerances=_tolerances(meta.get("tolerances")),
                  inputs=_tensors(meta.get("inputs"), "inputs"),
                  outputs=_tensors(meta.get("outputs"), "outputs"), weights=weights,
                  structure=structure)


def _tolerances(value: Any) -> Tolerances:
    if not isinstance(value, dict):
        raise _Bad("tolerances are missing")
    try:
        per = {k: value.get(k) for k in ("atol_for", "rtol_for")}
        if not all(isinstance(v, dict) for v in per.values()):
            raise _Bad("per-output tolerances are not objects")
        tol = Tolerances(check_tolerance("atol", value.get("atol")),
                         check_tolerance("rtol", value.get("rtol")),
                         {str(k): check_tolerance(f"atol {k}", v)
                          for k, v in as_dict(per["atol_for"]).items()},
                         {str(k): check_tolerance(f"rtol {k}", v)
                          for k, v in as_dict(per["rtol_for"]).items()}).with_cosines(value)
    except UsageError as exc:
        raise _Bad(str(exc)) from exc
    return tol


def _tensors(value: Any, what: str) -> list[Endpoint]:
    if not isinstance(value, list):
        raise _Bad(f"{what} are missing")
    tensors = []
    for entry in value:
        tensor = Endpoint.from_golden(entry)
        if tensor is None:
            raise _Bad(f"an entry of {what} is malformed")
        tensors.append(tensor)
    return tensors


def _arrays(archive: Any, names: set[str], what: str,
            tensors: list[Endpoint]) -> list[np.ndarray]:
    arrays = []
    for i, t in enumerate(tensors):
        key = f"{what}/{i}"
        if key not in names:
            raise _Bad(f"array {key} ({t.name}) is missing")
        array = archive[key]
        if array.dtype.kind not in "biufc" or str(array.dtype) != t.dtype:
            raise _Bad(f"{key} ({t.name}) is {array.dtype}, the document says {t.dtype}")
        shape = t.shape or ()  # never None: `Endpoint.from_golden` requires a shape
        if array.ndim != len(shape) or not all(
                d is None or d == s for d, s in zip(shape[1:], array.shape[1:], strict=True)):
            raise _Bad(f"{key} ({t.name}) has shape {array.shape}, the document says {shape}")
        arrays.append(array)
    return arrays


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_against(golden: Golden, path: Path, inputs: list[tuple[str, list, str]],
                  outputs: list[tuple[str, list, str]]) -> None:
    """The submodel's inputs and outputs, (name, shape, dtype) in order, must be the golden
    file's: an error saying which one differs."""
    for what, mine, theirs in (("inputs", inputs, golden.inputs),
                               ("outputs", outputs, golden.outputs)):
        names = [n for n, _, _ in mine]
        if names != [t.name for t in theirs]:
            raise UsageError(f"{path}: the submodel's {what} ({', '.join(names)}) are not the "
                             f"golden file's ({', '.join(t.name for t in theirs)}); was the "
                             "golden file written for this submodel?")
        for (name, shape, dtype), t in zip(mine, theirs, strict=False):
            if not _fits(_dims(shape), _dims(t.shape)) or dtype not in (t.dtype, "None"):
                raise UsageError(f"{path}: {what[:-1]} {name!r} is {dtype}{_dims(shape) or ''} in "
                                 f"the submodel but {t.dtype}{_dims(t.shape) or ''} in the "
                                 "golden file; was it written for this submodel?")


def _fits(declared: list | None, stored: list | None) -> bool:
    """Declared dimensions (None where unknown, all of it None when the reader could not work
    the shape out) against the stored arrays'."""
    if declared is None or stored is None:
        return True
    return len(declared) == len(stored) and all(d is None or d == s
                                                for d, s in zip(declared, stored, strict=False))


def _dims(shape: Any) -> list | None:
    return list(shape[1:]) if shape else None
