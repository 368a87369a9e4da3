"""`--bisect`: where a fresh export of the parent starts to differ, by proving exports of ever
longer prefixes of the artifact's layers, O(log n) of them.

`--locate` reads the given artifact's own tensors; this asks the converter instead. The layers
the artifact computes, in the order Keras runs them, are split at a point: the prefix is every
layer up to it, exported (with `export`, the artifact's format and quantization, from the
artifact's own inputs) with an output for each of its tensors that a later layer or the
artifact's outputs read, and proven in its runtime against the parent. A prefix that fails
contains where a fresh export starts to differ; a prefix that passes does not. Taking every
layer up to the point, not one layer's ancestors, keeps that true across branches, so a binary
search pins the first layer whose prefix fails. When the whole fresh export passes, the
converter is not at fault: what differs is in the given artifact itself.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_cut.core.address import CallAddress, TensorAddress
from keras_cut.core.errors import KerasCutError
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.verify.locate import Location
from keras_cut.verify.report import Progress

SUFFIXES = {"onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
BISECT_SAMPLES = 8


@dataclass
class Prefix:
    """One fresh export of the layers up to `last`, and what its proof said."""

    last: str  # the prefix's last layer, as a user names it
    outputs: list[str]  # the tensors it was exported with as outputs
    proven: bool | None  # None: it could not be exported
    problem: str | None = None


@dataclass
class Bisection:
    """The prefixes exported, in the order tried, and the first layer whose prefix fails
    (None: the whole fresh export passes, or no prefix could be exported)."""

    layers: int  # how many layers the search ran over
    tried: list[Prefix] = field(default_factory=list)
    first_failing: str | None = None
    first_failing_class: str | None = None
    whole_passes: bool = False  # a fresh export of every layer passes

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.layers, "exports": len(self.tried),
                "first_failing_layer": self.first_failing,
                "first_failing_class": self.first_failing_class,
                "whole_fresh_export_passes": self.whole_passes,
                "tried": [vars(p) for p in self.tried]}


def bisect_prefixes(parent: str | Path, fmt: str, location: Location, unsafe: bool = False,
                    custom_objects: str | None = None, say: Progress | None = None,
                    samples: int = BISECT_SAMPLES) -> Bisection:
    """Bisect fresh exports of `location`'s artifact layers (a `verify --locate` of an
    artifact exported from `parent` as `fmt`)."""
    from keras_cut.export.exporting import export_model

    say = say or (lambda _msg: None)
    evidence = location.evidence
    assert evidence is not None
    flat = evidence.flat
    calls = list(evidence.calls.values())
    inputs = [flat.label(t) for t in evidence.inputs]
    ends = _frontiers(flat, calls, evidence.outputs)
    found = Bisection(len(calls))
    cache: dict[int, bool | None] = {}

    def proven(k: int) -> bool | None:
        if k not in cache:
            outputs = ends[k]
            say(f"bisecting: a fresh export of the layers up to {flat.label(calls[k])} "
                f"({len(found.tried) + 1} of at most "
                f"{math.ceil(math.log2(max(len(calls), 2))) + 1})")
            with tempfile.TemporaryDirectory(prefix="keras-cut-bisect-") as folder:
                try:
                    made = export_model(
                        parent, Path(folder) / f"prefix{SUFFIXES[fmt]}", outputs, inputs,
                        format=fmt, tolerances=evidence.tolerances, samples=samples,
                        unsafe=unsafe, custom_objects=custom_objects,
                        quantize=evidence.quantized)
                    cache[k] = bool(made.proven)
                    found.tried.append(Prefix(flat.label(calls[k]), outputs, cache[k]))
                except KerasCutError as exc:
                    cache[k] = None
                    found.tried.append(Prefix(flat.label(calls[k]), outputs, None, str(exc)))
        return cache[k]

    if not calls:
        return found
    if proven(len(calls) - 1):
        found.whole_passes = True
        return found
    low, high = 0, len(calls) - 1  # the prefix to `high` fails (or could not be made)
    while low < high:
        mid = (low + high) // 2
        verdict = proven(mid)
        if verdict is None:  # this point cannot be a prefix's end: decide by the next one
            verdict = _next_verdict(proven, mid, high)
        if verdict is False or verdict is None:
            high = mid
        else:
            low = mid + 1
    if cache.get(high) is False:
        found.first_failing = flat.label(calls[high])
        found.first_failing_class = flat.layer(calls[high]).class_name
    return found


def _next_verdict(proven: Any, mid: int, high: int) -> bool | None:
    """The verdict of the first prefix after `mid` (and before `high`) that can be made."""
    for k in range(mid + 1, high):
        verdict = proven(k)
        if verdict is not None:
            return verdict
    return None


def _frontiers(flat: FlatGraph, calls: list[CallAddress], outputs: list[TensorAddress]
               ) -> list[list[str]]:
    """For each point k, the tensors the layers up to it make that a later layer or the
    artifact's outputs read, as a user names them (the outputs a prefix is exported with)."""
    position = {call: i for i, call in enumerate(calls)}
    last_read: dict[TensorAddress, int] = {}
    for i, call in enumerate(calls):
        for t in (flat.canonical(x) for x in flat.inputs_of(call)):
            if t.node in position:
                last_read[t] = max(last_read.get(t, -1), i)
    for t in (flat.canonical(x) for x in outputs):
        if t.node in position:
            last_read[t] = len(calls)
    ends: list[list[str]] = []
    for k in range(len(calls)):
        live = [t for t, last in last_read.items() if position[t.node] <= k < last]
        own = TensorAddress(calls[k].context, calls[k].layer, calls[k].call, 0)
        if own not in live:  # the point's own layer is always an output (a dead end too)
            live.append(own)
        several = {t.node for t in live if t.index > 0}
        ends.append([flat.label(t) + (f"[{t.index}]" if t.node in several or t.index else "")
                     for t in sorted(live, key=lambda t: (position[t.node], t.index))])
    return ends
