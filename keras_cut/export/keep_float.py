"""Layers kept in float inside an int8 `.tflite` (`export --quantize int8 --keep-float LAYER`),
and the trials `export --locate` makes of which to keep.

The converted model's operations are tied to Keras layers by the TensorFlow scopes their
tensors carry (`verify.locate`'s rule): an operation's output names, or, where the converter
named the output after the model's signature (`StatefulPartitionedCall_1:01`), the constants
it reads (its weights). The quantized model is read back: each layer asked for must have an
operation left in float, or the export is refused naming what the quantizer kept int8.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keras_cut.core.address import CallAddress
from keras_cut.core.errors import ArtifactError, KerasCutError, Option, UsageError
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.verify.locate import best_scopes, tensor_calls
from keras_cut.verify.report import Progress

if TYPE_CHECKING:
    from keras_cut.backend.litert.keep_float import Operation

FLOAT_TRIALS = 3  # at most this many more layers kept in float, one more per trial
ATTEMPTS = 6  # trials that could not be exported (no operation of its own) count here too


@dataclass
class FloatTrial:
    """One int8 export with `layers` kept in float, and what its proof said."""

    layers: list[str]
    proven: bool
    min_cosine: float | None = None  # the lowest output cosine similarity
    problem: str | None = None  # why it could not be made


@dataclass
class FloatLayers:
    """The cut's layers to keep in float (`Chooser` of `backend.litert.keep_float`); after the
    export, `kept` says which operations of each stayed float."""

    model: Path  # the parent, for messages
    flat: FlatGraph  # the exported cut's
    wanted: list[str]  # as the user named them
    kept: dict[str, list[str]] = field(default_factory=dict)  # layer -> float operations

    def __post_init__(self) -> None:
        self._calls = [c for c in self.flat.nodes if not self.flat.layer(c).is_input]
        self._targets = {self.flat.resolve(name, Option.KEEP_FLOAT): name
                         for name in self.wanted}

    def _tied(self, operations: list[Operation]) -> list[tuple[Operation, set[CallAddress]]]:
        names = [n for op in operations for n in op.outputs + op.constants]
        scopes = best_scopes(self._calls, names)
        tied = []
        for op in operations:
            calls = {c for n in op.outputs for c in tensor_calls(n, scopes)} or \
                {c for n in op.constants for c in tensor_calls(n, scopes)}
            tied.append((op, calls & set(self._targets)))
        return tied

    def pick(self, operations: list[Operation]) -> list[str]:
        tied = self._tied(operations)
        found = {call for _, calls in tied for call in calls}
        missing = [name for call, name in self._targets.items() if call not in found]
        if missing:
            raise ArtifactError(
                f"{self.model}: the converter left no operation of "
                f"{', '.join(missing)} (fused into another layer, or nothing to compute at "
                "inference); name the layer it is fused into in ", Option.KEEP_FLOAT)
        return [name for op, calls in tied if calls for name in op.outputs]

    def check(self, operations: list[Operation]) -> None:
        kept: dict[CallAddress, list[str]] = {call: [] for call in self._targets}
        int8: dict[CallAddress, list[str]] = {call: [] for call in self._targets}
        for op, calls in self._tied(operations):
            for call in calls:
                (int8 if op.quantized else kept)[call].append(op.kind)
        stuck = [f"{self._targets[call]} ({', '.join(sorted(set(int8[call])))})"
                 for call, kinds in kept.items() if not kinds]
        if stuck:
            raise ArtifactError(
                f"{self.model}: LiteRT's quantizer keeps {'; '.join(stuck)} in int8 whatever "
                "it is told (an operation whose output shares its input's scale, such as "
                "pooling), so it cannot be kept in float; name other layers in ",
                Option.KEEP_FLOAT)
        self.kept = {self._targets[call]: kinds for call, kinds in kept.items()}


def float_layers(model: Path, cut_file: Path, wanted: list[str], unsafe: bool,
                 custom_objects: str | None) -> FloatLayers:
    """The `wanted` layers of the exported cut (named as `cut` names them; an unknown or
    ambiguous name is refused here, before anything is converted)."""
    from keras_cut.model.opening import open_model

    _, graph = open_model(cut_file, custom_objects, unsafe, "export")
    cut = FlatGraph(graph)
    try:
        return FloatLayers(model, cut, wanted)
    except KerasCutError:
        _, parent = open_model(model, custom_objects, unsafe, "export")
        whole = FlatGraph(parent)
        for name in wanted:  # a layer of the model the cut leaves out says so
            if _resolves(whole, name) and not _resolves(cut, name):
                raise UsageError(Option.KEEP_FLOAT, f" {name!r} is a layer of the model but "
                                 "not of the exported cut (it runs before its inputs or after "
                                 "its outputs)", layer=name) from None
        raise


def _resolves(flat: FlatGraph, name: str) -> bool:
    try:
        flat.resolve(name, Option.KEEP_FLOAT)
    except KerasCutError:
        return False
    return True


def try_keep_float(export: Callable[[list[str], Path], Any], kept: list[str],
                   ranked: list[str], say: Progress) -> list[FloatTrial]:
    """Export again with one more layer kept in float each time, until the proof passes or
    FLOAT_TRIALS exports are made: first the layer that loses most on its own in `ranked`,
    then the one that loses most in the last trial's artifact (a second culprit shows only
    once the first is float). A layer that cannot be kept in float is left out and the next
    tried. `export` makes one (an `ExportResult`, with its --locate)."""
    trials: list[FloatTrial] = []
    layers, refused = list(kept), set()
    for _ in range(ATTEMPTS):
        layer = next((x for x in ranked if x not in layers and x not in refused), None)
        if layer is None or sum(t.problem is None for t in trials) >= FLOAT_TRIALS:
            break
        attempt = [*layers, layer]
        say(f"trying int8 with {', '.join(attempt)} kept in float")
        with tempfile.TemporaryDirectory(prefix="keras-cut-float-") as folder:
            try:
                tried = export(attempt, Path(folder) / "try.tflite")
            except KerasCutError as exc:  # this layer cannot be kept: go on without it
                trials.append(FloatTrial(attempt, False, problem=str(exc)))
                refused.add(layer)
                continue
        report: Any = tried.verify
        cosines = [o.cosine_similarity for o in report.outputs] if report is not None else []
        trials.append(FloatTrial(attempt, bool(tried.proven), min(cosines, default=None)))
        if tried.proven:
            break
        layers = attempt
        location = report.locate if report is not None else None
        if location is not None and location.own_losses:
            ranked = [x for x, _ in location.own_losses]
    return trials
