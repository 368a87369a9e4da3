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
from keras_cut.core.errors import KerasCutError, Option
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
    """The prefixes tried, in order, and the first layer whose prefix fails (None: the whole
    fresh export passes, or no prefix could be exported)."""

    layers: int  # how many layers the search ran over
    tried: list[Prefix] = field(default_factory=list)
    first_failing: str | None = None
    first_failing_class: str | None = None
    whole_passes: bool = False  # a fresh export of every layer passes

    @property
    def exports(self) -> int:
        """The prefixes exported and proven (those that could not be made aside)."""
        return sum(prefix.proven is not None for prefix in self.tried)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.layers, "exports": self.exports,
                "first_failing_layer": self.first_failing,
                "first_failing_class": self.first_failing_class,
                "whole_fresh_export_passes": self.whole_passes,
                "tried": [vars(p) for p in self.tried]}


@dataclass
class Settings:
    """How each prefix is exported and proven: as the artifact was (its keras-cut record's
    quantization and float layers) and as the run that located it (its data and options)."""

    unsafe: bool = False
    custom_objects: str | None = None
    calibration: str | Path | None = None
    inputs: str | Path | None = None
    seed: int = 0
    samples: int = BISECT_SAMPLES
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    keep_float: list[str] = field(default_factory=list)  # beyond the artifact record's


def bisect_prefixes(parent: str | Path, fmt: str, location: Location,
                    settings: Settings | None = None, say: Progress | None = None
                    ) -> Bisection:
    """Bisect fresh exports of `location`'s artifact layers (a `verify --locate` of an
    artifact exported from `parent` as `fmt`)."""
    from keras_cut.export.exporting import export_model

    say = say or (lambda _msg: None)
    settings = settings or Settings()
    evidence = location.evidence
    assert evidence is not None
    flat = evidence.flat
    calls = list(evidence.calls.values())
    ends = _frontiers(flat, calls, evidence.outputs)
    feeds = _inputs_read(flat, calls, list(evidence.inputs))
    floats = _resolved(flat, evidence.kept_float + settings.keep_float)
    found = Bisection(len(calls))
    cache: dict[int, bool | None] = {}

    def proven(k: int) -> bool | None:
        if k in cache:
            return cache[k]
        inside = set(calls[:k + 1])
        say(f"bisecting: a fresh export of the layers up to {flat.label(calls[k])} "
            f"({found.exports + 1} of at most {math.ceil(math.log2(max(len(calls), 2))) + 1})")
        prefix = Prefix(flat.label(calls[k]), ends[k], None)
        with tempfile.TemporaryDirectory(prefix="keras-cut-bisect-") as folder:
            try:
                made = export_model(
                    parent, Path(folder) / f"prefix{SUFFIXES[fmt]}", ends[k], feeds[k],
                    format=fmt, tolerances=evidence.tolerances, samples=settings.samples,
                    seed=settings.seed, inputs=settings.inputs,
                    input_shapes=settings.input_shapes, unsafe=settings.unsafe,
                    custom_objects=settings.custom_objects, quantize=evidence.quantized,
                    calibration=settings.calibration,
                    keep_float=[flat.label(c) for c in floats if c in inside],
                    keep_float_trials=0)
                prefix.proven = bool(made.proven)
            except KerasCutError as exc:
                prefix.problem = str(exc)
        found.tried.append(prefix)
        cache[k] = prefix.proven
        return prefix.proven

    if not calls:
        return found
    if proven(len(calls) - 1):
        found.whole_passes = True
        return found
    # the first point whose prefix fails; a point whose prefix cannot be made is dropped
    points = list(range(len(calls) - 1))
    low, high = 0, len(points)  # points[high] (or the whole) fails; points before low pass
    while low < high:
        mid = (low + high) // 2
        verdict = proven(points[mid])
        if verdict is None:
            del points[mid]
            high -= 1
        elif verdict:
            low = mid + 1
        else:
            high = mid
    last = points[low] if low < len(points) else len(calls) - 1
    if cache.get(last) is False:
        found.first_failing = flat.label(calls[last])
        found.first_failing_class = flat.layer(calls[last]).class_name
    return found


def _resolved(flat: FlatGraph, names: list[str]) -> list[CallAddress]:
    """The layers kept in float, by call (a name the untrusted record gives that is not the
    parent's is left out)."""
    found = []
    for name in dict.fromkeys(names):
        try:
            found.append(flat.resolve(name, Option.KEEP_FLOAT))
        except KerasCutError:
            continue
    return found


def _inputs_read(flat: FlatGraph, calls: list[CallAddress], inputs: list[TensorAddress]
                 ) -> list[list[str]]:
    """For each point k, the artifact's inputs the layers up to it read, as a user names
    them: a prefix starts from those only (cut refuses an input not on the way)."""
    wanted = {flat.canonical(t) for t in inputs}
    seen: list[TensorAddress] = []
    found: list[list[str]] = []
    for call in calls:
        for t in (flat.canonical(x) for x in flat.inputs_of(call)):
            if t in wanted and t not in seen:
                seen.append(t)
        found.append([flat.label(t) for t in seen])
    return found


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
        labels = [flat.label(t) + (f"[{t.index}]" if t.node in several or t.index else "")
                  for t in sorted(live, key=lambda t: (position[t.node], t.index))]
        ends.append(list(dict.fromkeys(labels)))
    return ends
