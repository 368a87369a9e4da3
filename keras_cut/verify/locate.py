"""`verify --locate`: where inside an artifact its values leave the parent's, by Keras layer.

The artifact runs once with every intermediate tensor kept (its runtime's own way: the
`intermediates` module of each runtime's backend); Keras runs the parent on the same batch,
every layer call recorded (`running.walk`). Each artifact tensor is tied to the Keras layer
whose TensorFlow name scope it carries: the converters keep TensorFlow's op names, which are
`<model>/<layer scope>/.../<op>`, fused operations joining several names with `;`. TensorFlow
makes a scope name unique in its graph by adding `_1`, `_2`... (`Graph.unique_name`); Keras
enters each layer's scope twice per call, so ops land in `conv2d_1` for a layer `conv2d`,
and in `conv2d_1_2` for a layer `conv2d_1`. The scopes are worked out by replaying that rule
over the layers in the order Keras calls them (`scope_names`), and the rule that ties more
scopes to layers wins (once or twice per call), so a version of TensorFlow that enters a scope
once still matches.

A layer's value is the last tensor of its scope whose shape is the Keras activation's (as is,
or channels-first where the converter changed the layout, as ONNX does for convolutions). A
tensor that carries several layers' scopes (LiteRT fuses Conv+BatchNorm+ReLU, Dense+activation)
stands for the group, compared with the group's last layer, the others named as fused into it.
Layers with no tensor of their own are named as unmatched, never guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_cut.core.address import CallAddress, TensorAddress
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.verify.comparison import finite

SCALE_RANGE = (0.5, 2.0)  # norm ratio a quantized tensor may have to its Keras activation
KEEP_FLOAT_DB = 6.0  # a layer losing this much SNR on its own is worth keeping in float
CLEAN_DB = 200.0  # the SNR of a tensor with no error at all, for differences
OUTPUT_MARK = " (output)"  # after an artifact output's name, in the table
SAMPLES = 4  # the failing batch's first samples: enough to show where, small enough to keep
_INDEX = re.compile(r":\d+$")
_DIGITS = re.compile(r"_?\d+$")
# TensorFlow ops that compute a layer's product before its bias is added: with use_bias, a
# tensor made by these alone is not the layer's output (LiteRT folds a Dense's bias into the
# next Dense and keeps `h/MatMul` as the only tensor named after the first)
# tf.nn.batch_normalization's ops before its output (`add_1`, x * inv + shift)
BEFORE_SHIFT = {"add", "Rsqrt", "mul", "mul_1", "mul_2", "sub", "Neg"}
BEFORE_BIAS = {"MatMul", "BatchMatMulV2", "convolution", "Conv2D", "Conv3D", "depthwise",
               "Tensordot", "einsum", "Einsum"}


@dataclass
class LayerRow:
    """One Keras layer call compared with the artifact tensor that stands for it."""

    layer: str  # as the user names it: path, `@call` where called more than once
    class_name: str
    tensor: str  # the artifact's tensor (its name, shortened to the first of fused names)
    fused: list[str] = field(default_factory=list)  # layers the converter fused into this one
    # layers before it with no tensor of their own whose only consumer leads here: what they
    # compute is first seen in this tensor
    unseen: list[str] = field(default_factory=list)
    layout: str | None = None  # "channels first"/"channels last": the artifact's other layout
    max_abs_error: float = 0.0
    mean_abs_error: float = 0.0
    cosine: float | None = None
    snr_db: float | None = None  # None: no error at all (infinite)
    passed: bool = True
    name: str = ""  # the artifact tensor's exact name, as its runtime knows it


    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "class_name": self.class_name, "tensor": self.tensor,
                "fused": self.fused, "seen_through": self.unseen, "layout": self.layout,
                "max_abs_error": finite(self.max_abs_error),
                "mean_abs_error": finite(self.mean_abs_error),
                "cosine_similarity": None if self.cosine is None else finite(self.cosine),
                "snr_db": None if self.snr_db is None else finite(self.snr_db),
                "passed": self.passed, "tensor_name": self.name}


@dataclass
class Evidence:
    """What the comparison was made from, for a reproducer: the parent's activations by tensor,
    the artifact's tensors by exact name, and each compared layer call by its label."""

    flat: FlatGraph
    records: dict[TensorAddress, Any]
    tensors: dict[str, Any]
    calls: dict[str, CallAddress]
    inputs: dict[TensorAddress, str] = field(default_factory=dict)  # the artifact's, by name
    outputs: list[TensorAddress] = field(default_factory=list)  # the parent tensors, in order
    tolerances: Any = None  # the `Tolerances` the artifact was judged by
    quantized: str | None = None  # the quantization its keras-cut record names
    kept_float: list[str] = field(default_factory=list)  # the layers it keeps in float


@dataclass
class Location:
    """Every matched layer in the order Keras runs them, the first past tolerance, what the
    error does after it, and the layers no tensor stands for."""

    batch: int  # the batch (1-based) whose first samples were compared
    samples: int
    rows: list[LayerRow]
    unmatched: list[str]
    judged_by: str  # "atol/rtol" or "cosine"
    unmatched_before: list[str] = field(default_factory=list)  # run before the first failing
    downstream: list[str] = field(default_factory=list)  # matched layers the first failing feeds
    # the first layer that has tensors of its shape no name claims, none agreeing with it
    disagreeing: str | None = None
    evidence: Evidence | None = field(default=None, repr=False, compare=False)
    # a quantized artifact: the layers that lose the most SNR on their own, most first, with
    # the dB each loses (its SNR below the worst of the tensors feeding it)
    own_losses: list[tuple[str, float]] = field(default_factory=list)

    @property
    def keep_float(self) -> list[str]:
        """The few layers to try in float: those losing at least 6 dB on their own (at most
        three), else the one losing most; none where no output fails."""
        if self.first is None or not self.own_losses:
            return []
        big = [layer for layer, lost in self.own_losses[:3] if lost >= KEEP_FLOAT_DB]
        return big or [self.own_losses[0][0]]

    @property
    def first(self) -> LayerRow | None:
        return next((row for row in self.rows if not row.passed), None)

    @property
    def trend(self) -> str | None:
        """After the first failing layer, at the last matched layer it feeds: "recovers"
        (agrees again), "grows" (an error more than twice the first) or "stays"; None when it
        feeds no matched layer."""
        first = self.first
        fed = [row for row in self.rows if row.layer in self.downstream]
        last = fed[-1] if fed else None
        if first is None or last is None:
            return None
        if last.passed:
            return "recovers"
        return "grows" if last.max_abs_error > 2 * first.max_abs_error else "stays"

    def to_dict(self) -> dict[str, Any]:
        first = self.first
        return {"batch": self.batch, "samples": self.samples, "judged_by": self.judged_by,
                "first_failing_layer": first.layer if first else None,
                "first_failing_class": first.class_name if first else None,
                "trend": self.trend, "layers": [row.to_dict() for row in self.rows],
                "unmatched": self.unmatched, "downstream": self.downstream,
                "first_without_agreeing_tensor": self.disagreeing,
                "own_snr_loss_db": [{"layer": layer, "db": finite(lost)}
                                    for layer, lost in self.own_losses],
                "keep_float_suggestion": self.keep_float,
                "unmatched_before_first_failing": self.unmatched_before}


def scope_names(calls: list[CallAddress], entries: int) -> dict[tuple[str, ...], CallAddress]:
    """The TensorFlow scope each layer call's ops land in (below the model's own scope), when
    every call enters its layer's scope `entries` times, in the order of `calls`."""
    used: dict[str, int] = {}
    scopes: dict[tuple[str, ...], CallAddress] = {}
    entered: dict[tuple[tuple[str, int], ...], tuple[str, ...]] = {(): ()}

    def unique(name: str) -> str:  # tensorflow.python.framework.ops.Graph.unique_name
        key = name.lower()
        i = used.get(key, 0)
        used[key] = i + 1
        if i > 0:
            base = key
            while key in used:
                key = f"{base}_{i}"
                i += 1
            used[key] = 1
            name = f"{name}_{i - 1}"
        return name

    def enter(prefix: tuple[str, ...], layer: str) -> tuple[str, ...]:
        name = ""
        for _ in range(entries):
            name = unique("/".join((*prefix, layer)))
        return (*prefix, name.rsplit("/", 1)[-1])

    for call in calls:
        for depth in range(1, len(call.context) + 1):  # nested models are entered first
            context = call.context[:depth]
            if context not in entered:
                model, model_call = context[-1]
                entered[context] = enter(entered[context[:-1]], model)
                scopes[entered[context]] = CallAddress(context[:-1], model, model_call)
        own = call.context + ((call.layer, call.call),)
        if own in entered:  # a nested model's own call: entered with its first layer
            continue
        scopes[enter(entered[call.context], call.layer)] = call
    return scopes


def tensor_calls(name: str, scopes: dict[tuple[str, ...], CallAddress]) -> list[CallAddress]:
    """The layer calls whose scopes a tensor's name carries (several for a fused op)."""
    found: list[CallAddress] = []
    for part in name.split(";"):
        parts = _INDEX.sub("", part).split("/")
        scope = tuple(parts[1:-1])  # the model's own scope first, the op's name last
        for end in range(len(scope), 0, -1):
            call = scopes.get(scope[:end])
            if call is not None:
                if call not in found:
                    found.append(call)
                break
    return found


def best_scopes(calls: list[CallAddress], names: Iterable[str]
                ) -> dict[tuple[str, ...], CallAddress]:
    """The scope rule (twice or once per call) that ties the most of the artifact's tensor
    names to layers."""
    names = list(names)
    best: dict[tuple[str, ...], CallAddress] = {}
    best_count = -1
    for entries in (2, 1):
        scopes = scope_names(calls, entries)
        count = len({c for n in names for c in tensor_calls(n, scopes)})
        if count > best_count:
            best, best_count = scopes, count
    return best


def span(flat: FlatGraph, inputs: list[TensorAddress], outputs: list[TensorAddress]
         ) -> set[CallAddress]:
    """The layer calls between the artifact's inputs and its outputs in the parent."""
    stop = {flat.canonical(t) for t in inputs}
    found: set[CallAddress] = set()
    todo = [flat.canonical(t).node for t in outputs if flat.canonical(t) not in stop]
    while todo:
        node = todo.pop()
        if node in found or flat.layer(node).is_input:
            continue
        found.add(node)
        todo += [t.node for t in (flat.canonical(x) for x in flat.inputs_of(node))
                 if t not in stop]
    return found


def layouts(value: np.ndarray, shape: tuple[int, ...]) -> list[tuple[np.ndarray, str | None]]:
    """`value` read as an array of `shape`: as it is, moved from channels-first to channels-last
    (ONNX keeps convolutions in NCHW) and from channels-last to channels-first (LiteRT keeps
    NHWC inside a `data_format="channels_first"` model); every reading that fits (a 48x48 map
    with 48 channels fits all three)."""
    found: list[tuple[np.ndarray, str | None]] = []
    if value.shape == shape:
        found.append((value, None))
    if value.ndim == len(shape) >= 3 and value.shape[0] == shape[0]:
        for moved, layout in ((np.moveaxis(value, 1, -1), "channels first"),
                              (np.moveaxis(value, -1, 1), "channels last")):
            if moved.shape == shape:
                found.append((moved, layout))
    return found


def compare(got: np.ndarray, want: np.ndarray, atol: float, rtol: float,
            min_cosine: float | None) -> dict[str, Any]:
    """A layer agrees when its largest error is within atol + rtol x its largest activation:
    float32 round-off grows with a tensor's scale, so inside the model the tolerance follows
    the layer's scale (the outputs themselves are judged element by element); a quantized
    artifact's layers by cosine similarity."""
    a, b = np.asarray(got, np.float64), np.asarray(want, np.float64)
    error = np.abs(a - b)
    worst = float(np.nan_to_num(error, nan=np.inf).max()) if error.size else 0.0
    scale = float(np.nan_to_num(np.abs(b), nan=0.0, posinf=0.0).max()) if b.size else 0.0
    ok = worst <= atol + rtol * scale
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    cosine = float(np.sum(a * b) / norms) if norms > 0 else (1.0 if not a.any() and not b.any()
                                                            else 0.0)
    noise = float(np.sum((a - b) ** 2))
    snr = 10 * math.log10(float(np.sum(b ** 2)) / noise) if noise > 0 and b.any() else None
    if min_cosine is not None:  # pointing the same way, and of the same size: a tensor 255
        ratio = math.sqrt(float(np.sum(a * a)) / float(np.sum(b * b))) if b.any() else 1.0
        ok = math.isfinite(cosine) and cosine >= min_cosine and \
            SCALE_RANGE[0] <= ratio <= SCALE_RANGE[1]  # times larger does not agree
    return {"max_abs_error": worst, "mean_abs_error": float(error.mean()) if error.size else 0.0,
            "cosine": cosine, "snr_db": snr, "passed": ok}


def locate(flat: FlatGraph, records: dict[TensorAddress, Any], calls: list[CallAddress],
           tensors: list[tuple[str, Any]], outputs: dict[CallAddress, tuple[str, Any]],
           atol: float, rtol: float, min_cosine: float | None, batch: int,
           samples: int) -> Location:
    """Each of `calls` (the artifact's layer calls, in the order Keras runs them) compared,
    where an artifact tensor stands for it, with its Keras activation in `records`.
    `outputs`: the artifact's own outputs by the layer call each stands for (their names are
    the converter's, `Identity:0`, outside any scope), the last word on those layers."""
    scopes = best_scopes(calls, (name for name, _ in tensors))
    order = {call: i for i, call in enumerate(calls)}
    early: set[str] = set()
    owned, fused, loose = _attribute(flat, tensors, scopes, order, early)
    for call, (name, value) in outputs.items():
        if call in order:
            owned.setdefault(call, []).append((name + OUTPUT_MARK, np.asarray(value)))
    consumers: dict[CallAddress, set[CallAddress]] = {}
    for call in calls:
        for t in flat.inputs_of(call):
            consumers.setdefault(flat.canonical(t).node, set()).add(call)
    rows: dict[CallAddress, LayerRow] = {}
    values: dict[CallAddress, np.ndarray] = {}
    for call in calls:
        found = _row(flat, call, owned.get(call, []), records, (atol, rtol, min_cosine),
                     early)
        if found is not None:
            rows[call], values[call] = found
    folded = _fold_forward(flat, calls, rows, values, consumers, records,
                           (atol, rtol, min_cosine))
    claimed = {c for group in fused.values() for c in group} | set(rows) | set(folded)
    disagreeing = by_value(flat, calls, order, records, loose, tensors, rows, claimed, atol,
                           rtol, min_cosine)
    rows = dict(sorted(rows.items(), key=lambda item: order[item[0]]))
    for owner in list(fused):  # a name shared by a constant (a shared layer's bias, another
        fused[owner] = {c for c in fused[owner]  # call's scope) is not a fusion
                        if c not in rows and c.layer != owner.layer}
        if owner in rows:
            rows[owner].fused = [flat.label(c) for c in sorted(fused[owner],
                                                               key=order.__getitem__)]
    covered = {c: c for c in rows} | {c: owner for owner in rows for c in fused.get(owner, ())}
    for call, owner in folded.items():
        covered[call] = owner
        rows[owner].unseen.insert(0, flat.label(call))
    _seen_through(flat, calls, order, consumers, covered, rows)
    unmatched = [call for call in calls if call not in covered]
    first = next((order[c] for c, row in rows.items() if not row.passed), None)
    # an unmatched layer before the first failing one could be where it starts, unless every
    # layer reading it was seen to agree (or is such a layer itself)
    cleared: set[CallAddress] = set()
    for call in sorted(unmatched, key=order.__getitem__, reverse=True):
        readers = consumers.get(call, set())
        if readers and all(r in cleared or (r in covered and rows[covered[r]].passed)
                           for r in readers):
            cleared.add(call)
    before = [flat.label(c) for c in unmatched
              if first is not None and order[c] < first and c not in cleared]
    location = Location(batch, samples, list(rows.values()), [flat.label(c) for c in unmatched],
                        "cosine" if min_cosine is not None else "atol/rtol", before)
    # the first layer with no agreeing tensor whose effect is not seen agreeing further on (a
    # convolution folded into its BatchNormalization agrees through the BatchNormalization)
    suspects = [c for c in disagreeing if first is not None and order[c] <= first
                and c not in cleared and (c not in covered or not rows[covered[c]].passed)]
    location.disagreeing = flat.label(suspects[0]) if suspects else None
    if first is not None:
        start = calls[first]
        fed = _downstream(start, consumers)
        location.downstream = [rows[c].layer for c in calls if c in fed and c in rows]
    if min_cosine is not None:
        location.own_losses = own_losses(flat, rows, covered)
    location.evidence = Evidence(flat, records, dict(tensors),
                                 {flat.label(c): c for c in calls})
    return location


Owned = dict[CallAddress, list[tuple[str, np.ndarray]]]


def _attribute(flat: FlatGraph, tensors: list[tuple[str, Any]],
               scopes: dict[tuple[str, ...], CallAddress], order: dict[CallAddress, int],
               early: set[str]) -> tuple[Owned, dict[CallAddress, set[CallAddress]],
                                         list[tuple[int, str, np.ndarray]]]:
    """Each numeric tensor to the latest layer call its name carries (the others it names
    fused into it), or, when no name claims it, to the loose ones (with its position). The
    names of tensors made by ops before the layer's bias or shift go into `early`."""
    owned: Owned = {}
    fused: dict[CallAddress, set[CallAddress]] = {}
    loose: list[tuple[int, str, np.ndarray]] = []
    for index, (name, value) in enumerate(tensors):
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            continue
        named = [c for c in tensor_calls(name, scopes) if c in order]
        if not named:
            loose.append((index, name, value))
            continue
        owner = max(named, key=order.__getitem__)
        owned.setdefault(owner, []).append((name, value))
        if _before_output(flat, owner, name, scopes):
            early.add(name)
            continue
        fused.setdefault(owner, set()).update(c for c in named if c != owner)
    return owned, fused, loose


def by_value(flat: FlatGraph, calls: list[CallAddress], order: dict[CallAddress, int],
             records: dict[TensorAddress, Any], loose: list[tuple[int, str, np.ndarray]],
             tensors: list[tuple[str, Any]], rows: dict[CallAddress, LayerRow],
             claimed: set[CallAddress], atol: float, rtol: float,
             min_cosine: float | None) -> list[CallAddress]:
    """Layers no name ties to a tensor, tied by value instead: the first tensor no name claims,
    after the tensors of the layers feeding it, that agrees with the layer's Keras activation
    (an artifact whose names were stripped, the convolutions OpenVINO renames). A layer the
    artifact computes wrongly finds none and stays unmatched, so what it feeds fails. Returns
    the layers that had tensors of their shape there, none agreeing."""
    disagreeing: list[CallAddress] = []
    if not loose:
        return disagreeing
    where = {_INDEX.sub("", name.split(";")[0]): i for i, (name, _) in enumerate(tensors)}
    at = {call: where.get(row.tensor, -1) for call, row in rows.items()}
    for call in calls:
        want = records.get(TensorAddress(call.context, call.layer, call.call, 0))
        if call in claimed or want is None:
            continue
        want = np.asarray(want)
        after = max((at.get(flat.canonical(t).node, -1) for t in flat.inputs_of(call)),
                    default=-1)
        for index, name, value in loose:
            if index <= after:
                continue
            readings = [(compare(v, want, atol, rtol, min_cosine), layout)
                        for v, layout in layouts(value, want.shape)]
            good = [(stats, layout) for stats, layout in readings if stats["passed"]]
            if readings and not good and call not in disagreeing:
                disagreeing.append(call)
            if good:
                stats, layout = good[0]
                rows[call] = LayerRow(flat.label(call), flat.layer(call).class_name,
                                      _INDEX.sub("", name.split(";")[0]) + " (by value)",
                                      layout=layout, name=name, **stats)
                at[call] = index
                if call in disagreeing:
                    disagreeing.remove(call)
                break
    return disagreeing


def own_losses(flat: FlatGraph, rows: dict[CallAddress, LayerRow],
               covered: dict[CallAddress, CallAddress]) -> list[tuple[str, float]]:
    """Each compared layer's own loss of precision in a quantized artifact: how far its SNR
    falls below the worst SNR of the compared tensors feeding its group (the layers fused into
    it or seen through it included; a group fed only by the artifact's inputs: below the best
    SNR any quantized layer keeps, what quantizing an input costs). Accumulated error, which
    every later layer inherits, cancels out; most lost first. SNRs are capped at that best
    one, so layers computed exactly (float operations, no error) weigh as the best quantized
    one does, not as an infinite SNR."""
    finite = [row.snr_db for row in rows.values() if row.snr_db is not None]
    best = max(finite, default=CLEAN_DB)

    def snr(row: LayerRow) -> float:
        return best if row.snr_db is None else min(row.snr_db, best)

    losses = []
    for call, row in rows.items():
        group = {c for c, owner in covered.items() if owner == call} | {call}
        fed = _owners_above(flat, group, covered)
        before = [snr(rows[owner]) for owner in fed if owner != call]
        losses.append((row.layer, (min(before) if before else best) - snr(row)))
    return sorted(losses, key=lambda item: -item[1])


def _owners_above(flat: FlatGraph, group: set[CallAddress],
                  covered: dict[CallAddress, CallAddress]) -> set[CallAddress]:
    """The compared rows nearest above `group`: through layers no row covers, up to the
    artifact's inputs."""
    found: set[CallAddress] = set()
    seen = set(group)
    todo = [flat.canonical(t).node for member in group for t in flat.inputs_of(member)]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        if node in covered:
            found.add(covered[node])
        elif not flat.layer(node).is_input:
            todo += [flat.canonical(t).node for t in flat.inputs_of(node)]
    return found


def _downstream(start: CallAddress, consumers: dict[CallAddress, set[CallAddress]]
                ) -> set[CallAddress]:
    """The layer calls `start` feeds, directly or not."""
    found: set[CallAddress] = set()
    todo = list(consumers.get(start, ()))
    while todo:
        call = todo.pop()
        if call not in found:
            found.add(call)
            todo += consumers.get(call, ())
    return found


def _seen_through(flat: FlatGraph, calls: list[CallAddress], order: dict[CallAddress, int],
                  consumers: dict[CallAddress, set[CallAddress]],
                  covered: dict[CallAddress, CallAddress],
                  rows: dict[CallAddress, LayerRow]) -> None:
    """A layer with no tensor of its own (a convolution folded into its BatchNormalization,
    ops a converter renamed) whose output feeds exactly one layer, already seen: it is seen
    through that layer's row. Later layers first, so chains resolve."""
    for call in sorted(calls, key=order.__getitem__, reverse=True):
        after = consumers.get(call, set())
        if call in covered or len(after) != 1:
            continue
        (consumer,) = after
        owner = covered.get(consumer)
        if owner is not None:
            covered[call] = owner
            rows[owner].unseen.insert(0, flat.label(call))


def _before_output(flat: FlatGraph, call: CallAddress, name: str,
                   scopes: dict[tuple[str, ...], CallAddress]) -> bool:
    """A tensor whose every op in the layer's scope comes before the layer's output: a layer
    with a bias before the bias is added; a BatchNormalization before its shift is added
    (LiteRT keeps `batchnorm/mul_1` and fuses the `add_1` into the next op)."""
    layer = flat.layer(call)
    ops = [_INDEX.sub("", part).rsplit("/", 1)[-1] for part in name.split(";")
           if call in tensor_calls(part, scopes)]
    if layer.class_name == "BatchNormalization":
        return bool(ops) and all(op in BEFORE_SHIFT for op in ops)
    if not layer.config.get("use_bias"):
        return False
    return bool(ops) and all(_DIGITS.sub("", op) in BEFORE_BIAS for op in ops)


def _row(flat: FlatGraph, call: CallAddress, candidates: list[tuple[str, np.ndarray]],
         records: dict[TensorAddress, Any], rule: tuple[float, float, float | None],
         early: set[str]) -> tuple[LayerRow, np.ndarray] | None:
    """The layer's row, from the last of its scope's tensors with its activation's shape (and
    that tensor's value). A tensor made before the layer's bias or shift (`early`) stands for
    the layer unless it differs from the activation by exactly that: a constant per channel
    (the converter added it in the next op); a zero bias it dropped agrees as it is."""
    want = records.get(TensorAddress(call.context, call.layer, call.call, 0))
    if want is None or not candidates:
        return None
    want = np.asarray(want)
    for name, value in reversed(candidates):  # the scope's last tensor of that shape
        row = _reading(flat, call, name.removesuffix(OUTPUT_MARK), value, want, rule)
        if row is not None and name in early and not row.passed and \
                _shift_apart(value, want, row.layout, rule):
            continue
        if row is not None:
            if name.endswith(OUTPUT_MARK):  # shown as the runtime names it: `Identity:0`
                row.tensor = _INDEX.sub("", name.split(";")[0])
            return row, value
    return None


def _reading(flat: FlatGraph, call: CallAddress, name: str, value: np.ndarray,
             want: np.ndarray, rule: tuple[float, float, float | None]) -> LayerRow | None:
    """`call`'s row read from one tensor; None where no layout gives its shape. Where two
    layouts fit, the one that agrees better is the artifact's."""
    readings = layouts(value, want.shape)
    if not readings:
        return None
    stats, layout = min(((compare(v, want, *rule), layout) for v, layout in readings),
                        key=lambda pair: pair[0]["max_abs_error"])
    return LayerRow(flat.label(call), flat.layer(call).class_name,
                    _INDEX.sub("", name.split(";")[0]), layout=layout, name=name, **stats)


def _shift_apart(value: np.ndarray, want: np.ndarray, layout: str | None,
                 rule: tuple[float, float, float | None]) -> bool:
    """`value` (read in `layout`) differs from `want` by a constant per channel (the last axis
    in Keras' layout): a bias or shift still to be added."""
    read = next((v for v, how in layouts(value, want.shape) if how == layout), None)
    if read is None or want.ndim < 2:
        return False
    gap = np.asarray(want, np.float64) - np.asarray(read, np.float64)
    axes = tuple(range(gap.ndim - 1))
    spread = float(np.max(gap.max(axis=axes) - gap.min(axis=axes)))
    atol, rtol, min_cosine = rule
    scale = float(np.abs(want).max())
    allowed = 0.05 * float(np.abs(gap).max()) if min_cosine is not None else \
        10 * (atol + rtol * scale)
    return bool(np.abs(gap).max() > 0) and spread <= allowed


def _fold_forward(flat: FlatGraph, calls: list[CallAddress], rows: dict[CallAddress, LayerRow],
                  values: dict[CallAddress, np.ndarray],
                  consumers: dict[CallAddress, set[CallAddress]],
                  records: dict[TensorAddress, Any], rule: tuple[float, float, float | None]
                  ) -> dict[CallAddress, CallAddress]:
    """A converter folds a layer into the one it feeds and names the result after the first
    (LiteRT folds a BatchNormalization's scale into the convolution before it, and drops its
    shift where it is zero: `conv/convolution1` holds conv+BN). A failing row whose tensor
    agrees with its only reader's activation instead is that reader's row; one whose only
    reader is a BatchNormalization with an agreeing row of its own is a part of that fold.
    Either way it is seen through the reader. Returns {folded layer: reader}."""
    folded: dict[CallAddress, CallAddress] = {}
    for call in calls:
        row, readers = rows.get(call), consumers.get(call, set())
        if row is None or row.passed or len(readers) != 1:
            continue
        (reader,) = readers
        mine = rows.get(reader)
        if mine is not None:
            if mine.passed and flat.layer(reader).class_name == "BatchNormalization":
                folded[call] = reader
                del rows[call]
            continue
        want = records.get(TensorAddress(reader.context, reader.layer, reader.call, 0))
        moved = None if want is None else _reading(flat, reader, row.name, values[call],
                                                   np.asarray(want), rule)
        if moved is not None and moved.passed:
            moved.tensor = row.tensor
            rows[reader] = moved
            values[reader] = values[call]
            folded[call] = reader
            del rows[call]
    return folded
