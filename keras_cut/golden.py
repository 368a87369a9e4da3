"""Golden files: what a parent computed at a submodel's inputs and outputs, kept so that the
submodel can be checked later (in CI) without the parent.

An `.npz` (read with allow_pickle=False) holding `input/<i>` and `output/<i>` arrays and one
JSON document, `keras_cut_golden`: the format version, the parent's file name and size, the seed
and sample count, the tolerances, each input and output (submodel name, parent source, shape,
dtype) and a SHA-256 of every weight array the submodel should hold, by parent layer path.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .comparison import Tolerances
from .errors import UsageError

FORMAT = 1
META = "keras_cut_golden"


@dataclass
class GoldenTensor:
    name: str
    source: str
    kind: str
    shape: list[int | None]
    dtype: str


@dataclass
class Golden:
    parent: dict[str, Any]
    seed: int | None
    samples: int
    tolerances: Tolerances
    inputs: list[GoldenTensor]
    outputs: list[GoldenTensor]
    weights: dict[str, str]  # "parent layer path|state label" -> sha256 hex
    input_arrays: list[np.ndarray] = field(default_factory=list, repr=False)
    output_arrays: list[np.ndarray] = field(default_factory=list, repr=False)


def is_golden(path: Path) -> bool:
    """An .npz keras-cut wrote as a golden file (not a model)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return f"{META}.npy" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


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
        "inputs": [vars(t) for t in golden.inputs], "outputs": [vars(t) for t in golden.outputs],
        "weights": golden.weights,
    }
    arrays = {f"input/{i}": a for i, a in enumerate(golden.input_arrays)}
    arrays.update({f"output/{i}": a for i, a in enumerate(golden.output_arrays)})
    with target.open("wb") as fh:
        np.savez(fh, **{META: np.array(json.dumps(meta))}, **arrays)


def read(path: Path) -> Golden:
    def bad(why: str) -> UsageError:
        return UsageError(f"{path}: not a usable keras-cut golden file ({why}); write one "
                          "with `keras-cut verify PARENT SUBMODEL --save-golden FILE.npz`")

    try:
        archive = np.load(path, allow_pickle=False)
        meta = json.loads(str(archive[META]))
    except (OSError, ValueError, KeyError) as exc:
        raise bad(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise bad(f"format {meta.get('format') if isinstance(meta, dict) else '?'}, "
                  f"this keras-cut reads format {FORMAT}")
    try:
        tol = meta["tolerances"]
        golden = Golden(
            parent=dict(meta["parent"]), seed=meta["seed"], samples=int(meta["samples"]),
            tolerances=Tolerances(float(tol["atol"]), float(tol["rtol"]),
                                  {str(k): float(v) for k, v in tol["atol_for"].items()},
                                  {str(k): float(v) for k, v in tol["rtol_for"].items()}),
            inputs=[GoldenTensor(**t) for t in meta["inputs"]],
            outputs=[GoldenTensor(**t) for t in meta["outputs"]],
            weights={str(k): str(v) for k, v in meta["weights"].items()},
        )
        golden.input_arrays = [archive[f"input/{i}"] for i in range(len(golden.inputs))]
        golden.output_arrays = [archive[f"output/{i}"] for i in range(len(golden.outputs))]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad(f"missing or malformed {exc}") from exc
    return golden


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
        for (name, shape, dtype), t in zip(mine, theirs):
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
                                                for d, s in zip(declared, stored))


def _dims(shape: Any) -> list | None:
    return list(shape[1:]) if shape else None
