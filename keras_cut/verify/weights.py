"""Every array Keras saves for a submodel layer against what it saves for the parent layer it
stands for, bit for bit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from keras_cut.model.graph import LayerGraph
from keras_cut.verify import golden as goldens
from keras_cut.verify.correspondence import Correspondence
from keras_cut.verify.parent_process import Digest
from keras_cut.verify.report import WeightCheck

ParentState = Callable[[str], "dict[str, tuple[str, Any]] | None"]
Fetch = Callable[[str, str], np.ndarray]


def compare_weights(parent: ParentState, sub: Any, links: Correspondence,
                     hashes: dict[str, str] | None = None,
                     fetch: Fetch | None = None) -> WeightCheck:
    """Everything Keras saves for each submodel layer must equal what it saves for the parent
    layer it stands for, array by array at the same place inside the layer, bit for bit.
    `parent` gives a parent layer's saved state by path: arrays, or digests (`Digest`, from
    verify's second process, with `fetch` to get an array that differs). `hashes`, when given,
    collects a digest of each of those parent arrays (golden files)."""
    from keras_cut.backend.keras import running

    check = WeightCheck()
    for path, layer in running.all_layers(sub):
        if running.is_model(layer):
            continue
        mine = running.weight_state(layer)
        if not mine:
            continue
        source = links.parent_path(path)
        theirs = parent(source) if source else None
        if theirs is None:
            check.checked += len(mine)
            check.mismatched.append(f"{path}: no parent layer {source or path!r}")
            continue
        if hashes is not None and source is not None:
            hashes.update({goldens.weight_key(source, key): _digest_of(value)
                           for key, (_, value) in theirs.items()})
        for key in list(mine) + [k for k in theirs if k not in mine]:
            check.checked += 1
            label = (mine.get(key) or theirs[key])[0]
            where = f"{path}/{label}"
            if key not in theirs:
                check.mismatched.append(f"{where}: the parent layer {source!r} has no such "
                                        "weight")
            elif key not in mine:
                check.mismatched.append(f"{where}: missing (the parent layer has it)")
            else:
                other = theirs[key][1]
                if isinstance(other, Digest):
                    other = _fetch_if_differs(mine[key][1], other, fetch, source, key)
                if other is not None:
                    _compare_array(check, where, mine[key][1], other)
    return check


def _digest_of(value: Any) -> str:
    return value.sha256 if isinstance(value, Digest) else goldens.digest(value)


def _fetch_if_differs(mine: np.ndarray, theirs: Digest, fetch: Fetch | None, source: Any,
                      key: str) -> np.ndarray | None:
    """None when `mine` is bit for bit what the digest describes; else the parent's array
    (`fetch`), to say how it differs."""
    if mine.dtype.str == theirs.dtype and tuple(mine.shape) == theirs.shape and \
            goldens.digest(mine) == theirs.sha256:
        return None
    if fetch is None:
        raise AssertionError("a parent weight differs and cannot be fetched")
    return fetch(source, key)


def layers_not_loaded(model: Any, graph: LayerGraph) -> list[str]:
    """Layers the file declares beyond the operations of the model Keras loaded (two entries
    loaded as one object): their weights would never be compared. Counted at the top level,
    not named: Keras names the operations it creates itself anew on each load."""
    from keras_cut.backend.keras import running

    loaded = running.operation_count(model)
    if loaded is None or loaded >= len(graph.layers):
        return []
    return [f"the file declares {len(graph.layers)} layers, the model Keras loaded from it "
            f"has {loaded}: some entries were loaded as one object (shared_object_id?)"]


def _compare_array(check: WeightCheck, where: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.dtype != b.dtype:
        check.mismatched.append(f"{where}: {a.dtype}{list(a.shape)} vs parent "
                                f"{b.dtype}{list(b.shape)}")
    elif a.tobytes() != b.tobytes():
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        check.mismatched.append(f"{where}: differs (max abs {diff:.3g})")
