"""`diff`: what changed between two model files — structure, configs, weights — without
TensorFlow and without running anything from either file.

Layers are matched level by level (nested models recursively, by path): by name first, then the
unmatched ones by their order in the graph and their class (a renamed layer). For matched layers
the report gives the class, the connections (in A's names), the config fields that differ and
each stored array: identical, shape/dtype changed, or values changed with max/mean absolute
difference and the fraction of elements changed. Arrays are read one pair at a time; equal bytes
skip the arithmetic.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_cut.diff.filediff import ChangeKind, FileChange, file_changes
from keras_cut.file.modelfile import ModelFile
from keras_cut.layers.shapes import format_shape
from keras_cut.model.graph import Layer, LayerGraph, Weight
from keras_cut.model.opening import open_model
from keras_cut.model.structure import call_arguments, loose_changes
from keras_cut.verify.comparison import check_tolerance

ADDED, REMOVED, RENAMED, CHANGED = "added", "removed", "renamed", "changed"


@dataclass
class FieldChange:
    field: str  # dotted path inside the layer's config ("dtype", "kernel_initializer.seed")
    old: Any
    new: Any
    kind: ChangeKind = ChangeKind.BEHAVIOUR

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new, "kind": str(self.kind)}


@dataclass
class WeightChange:
    name: str
    status: str  # added, removed, shape, dtype, values, bits (equal values, other bytes)
    old: str = ""  # dtype[shape]
    new: str = ""
    max_abs_diff: float | None = None  # over the elements finite on both sides
    mean_abs_diff: float | None = None
    changed_fraction: float | None = None
    nan: int = 0  # elements NaN on one side only
    inf: int = 0  # elements infinite on one side, or infinities of opposite signs

    @property
    def kind(self) -> ChangeKind:
        return ChangeKind.BITS if self.status == "bits" else ChangeKind.BEHAVIOUR

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "old": self.old or None,
                "new": self.new or None, "max_abs_diff": _finite(self.max_abs_diff),
                "mean_abs_diff": _finite(self.mean_abs_diff),
                "changed_fraction": self.changed_fraction, "nan": self.nan, "inf": self.inf,
                "kind": str(self.kind)}


@dataclass
class LayerChange:
    path: str  # A's path (B's for an added layer)
    new_path: str | None  # B's path when renamed
    status: str  # added, removed, renamed, changed
    class_name: str
    new_class_name: str | None = None  # when the class changed
    connections: tuple[str, str] | None = None  # old -> new, in A's names
    config: list[FieldChange] = field(default_factory=list)
    arguments: list[FieldChange] = field(default_factory=list)  # "call 0: kwargs.training"
    weights: list[WeightChange] = field(default_factory=list)

    def kinds(self) -> set[ChangeKind]:
        """What the differences in this entry mean."""
        found = {c.kind for c in self.config + self.arguments} | {w.kind for w in self.weights}
        if self.status != CHANGED or self.connections or self.new_class_name:
            found.add(ChangeKind.BEHAVIOUR)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "new_path": self.new_path, "status": self.status,
            "class_name": self.class_name, "new_class_name": self.new_class_name,
            "connections": {"old": self.connections[0], "new": self.connections[1]}
            if self.connections else None,
            "config": [c.to_dict() for c in self.config],
            "call_arguments": [c.to_dict() for c in self.arguments],
            "weights": [w.to_dict() for w in self.weights],
            "kinds": sorted(str(k) for k in self.kinds()),
        }


@dataclass
class EndpointChange:
    kind: str  # input or output
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "old": self.old, "new": self.new}


@dataclass
class DiffReport:
    a: dict[str, Any]
    b: dict[str, Any]
    endpoints: list[EndpointChange]
    layers: list[LayerChange]
    totals: dict[str, tuple[int, int]]
    arrays_compared: int
    structure_only: bool
    atol: float
    files: list[FileChange] = field(default_factory=list)
    ignore: frozenset[ChangeKind] = frozenset()
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """No difference of a kind not ignored."""
        kinds = {ChangeKind.BEHAVIOUR} if self.endpoints else set()
        kinds |= {f.kind for f in self.files}
        for change in self.layers:
            kinds |= change.kinds()
        return kinds <= self.ignore

    @property
    def summary(self) -> dict[str, int]:
        counts = {ADDED: 0, REMOVED: 0, RENAMED: 0, CHANGED: 0}
        for change in self.layers:
            counts[change.status] += 1
        counts["arrays_differ"] = sum(len(c.weights) for c in self.layers)
        counts["endpoints_changed"] = len(self.endpoints)
        counts["file_changes"] = len(self.files)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical, "a": self.a, "b": self.b,
            "structure_only": self.structure_only, "atol": self.atol,
            "endpoints": [e.to_dict() for e in self.endpoints],
            "layers": [c.to_dict() for c in self.layers],
            "totals": {k: {"old": a, "new": b} for k, (a, b) in self.totals.items()},
            "files": [f.to_dict() for f in self.files],
            "ignored": sorted(str(k) for k in self.ignore),
            "arrays_compared": self.arrays_compared, "summary": self.summary,
            "notes": self.notes,
        }


def diff_models(a: str | Path, b: str | Path, structure_only: bool = False,
                atol: float = 0.0, code: str | None = None, unsafe: bool = False,
                ignore: frozenset[ChangeKind] | set[ChangeKind] = frozenset()) -> DiffReport:
    """Compare two model files; `atol` treats value changes up to it as equal; differences of
    the kinds in `ignore` are reported but leave the files identical. `code` builds models
    saved as their class (`open_model`)."""
    atol = check_tolerance("atol", atol)
    file_a, graph_a = open_model(a, code, unsafe, "compare")
    file_b, graph_b = open_model(b, code, unsafe, "compare")
    pairs: list[Pair] = []
    changes: list[LayerChange] = []
    # an absent field is the constructor's default, a null one None: the same only where two
    # formats write defaults differently (a tf.keras 2 file and its Keras 3 conversion)
    strict = (file_a.format, file_a.legacy) == (file_b.format, file_b.legacy)
    cut_from = _cut_map(Path(b), Path(a), graph_a)
    cut_into = _cut_map(Path(a), Path(b), graph_b) if cut_from is None else None
    if cut_from is not None:
        back = _compare_cut(graph_a, graph_b, cut_from, changes, pairs, strict, sub_is_b=True)
    elif cut_into is not None:
        back = _compare_cut(graph_b, graph_a, cut_into, changes, pairs, strict, sub_is_b=False)
    else:
        back = _compare_level(graph_a, graph_b, changes, pairs, strict)
    report = DiffReport(
        a=_describe(file_a, graph_a), b=_describe(file_b, graph_b),
        endpoints=_endpoints(graph_a, graph_b, back),
        layers=changes,
        totals={"params": (graph_a.params, graph_b.params),
                "trainable_params": (graph_a.trainable_params, graph_b.trainable_params),
                "weight_bytes": (graph_a.weight_bytes, graph_b.weight_bytes)},
        arrays_compared=0, structure_only=structure_only, atol=atol,
        files=file_changes(file_a, file_b), ignore=frozenset(ignore),
    )
    if cut_from is not None or cut_into is not None:
        sub, parent = (b, a) if cut_from is not None else (a, b)
        report.notes.append(f"{sub} was cut from {parent} (its keras-cut record says so): "
                            "layers are matched through the record, wherever the cut moved them")
    if file_a.format != file_b.format or file_a.legacy != file_b.legacy:
        report.notes.append(f"formats differ: {_format(file_a)} vs {_format(file_b)}; layers, "
                            "configs and arrays are compared as Keras 3 reads them")
    _compare_weights(file_a, file_b, pairs, report, structure_only, atol)
    report.layers = [c for c in changes if c.kinds()]
    return report


def _format(model_file: ModelFile) -> str:
    return "tf.keras 2 .h5" if model_file.legacy else f".{model_file.format}"


def _describe(model_file: ModelFile, graph: LayerGraph) -> dict[str, Any]:
    return {"file": str(model_file.path), "format": model_file.format,
            "legacy": model_file.legacy, "keras_version": model_file.keras_version,
            "model": graph.name, "class_name": graph.class_name}


# --- structure -------------------------------------------------------------------------------


def _match(a: LayerGraph, b: LayerGraph, strict: bool
           ) -> list[tuple[Layer | None, Layer | None]]:
    """Pairs (A layer, B layer), None on the side that lacks it: same name first; then, among
    the rest, the same class with the same config (a plain rename); then by graph order and
    class."""
    only_a = [layer for layer in a.layers if layer.name not in b.by_name]
    only_b = [layer for layer in b.layers if layer.name not in a.by_name]
    renamed: dict[str, Layer] = {}
    for la in only_a:
        for lb in only_b:
            if lb not in renamed.values() and _same_but_name(la, lb, strict):
                renamed[la.name] = lb
                break
    rest_a = [la for la in only_a if la.name not in renamed]
    rest_b = [lb for lb in only_b if lb not in renamed.values()]
    matcher = difflib.SequenceMatcher(None, [layer.class_name for layer in rest_a],
                                      [layer.class_name for layer in rest_b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for la, lb in zip(rest_a[i1:i2], rest_b[j1:j2], strict=True):
                renamed[la.name] = lb
    paired_b = {lb.name for lb in renamed.values()}
    pairs: list[tuple[Layer | None, Layer | None]] = []
    for layer in a.layers:
        pairs.append((layer, b.by_name.get(layer.name) or renamed.get(layer.name)))
    pairs += [(None, layer) for layer in only_b if layer.name not in paired_b]
    return pairs


def _same_but_name(la: Layer, lb: Layer, strict: bool) -> bool:
    return la.class_name == lb.class_name and la.submodel is None and lb.submodel is None \
        and not _config_changes(la.config, lb.config, strict) and \
        [(w.name, w.shape) for w in la.weights] == [(w.name, w.shape) for w in lb.weights]


def _cut_map(sub: Path, parent: Path, parent_graph: LayerGraph) -> dict[str, str] | None:
    """When `sub` carries keras-cut's record naming `parent` (file name and size): its top-level
    layer name -> the parent layer path it is."""
    from keras_cut.model import provenance

    record = provenance.read(sub)
    if not isinstance(record, dict) or not isinstance(record.get("parent"), dict):
        return None
    origin = record["parent"]
    try:
        same = origin.get("file") == parent.name and origin.get("bytes") == parent.stat().st_size
    except OSError:
        return None
    layers = record.get("layers")
    if not same or not isinstance(layers, dict):
        return None
    paths = set(parent_graph.all_paths())
    return {k: v for k, v in layers.items() if isinstance(k, str) and v in paths}


Pair = tuple[Layer, Layer, LayerChange]  # matched layers and the change entry they fill


def _compare_cut(parent: LayerGraph, sub: LayerGraph, layer_map: dict[str, str],
                 changes: list[LayerChange], pairs: list[Pair], strict: bool, sub_is_b: bool
                 ) -> dict[str, str]:
    """A cut against its parent: each submodel layer against the parent layer it was cut from
    (opened-up nested layers included); parent layers the cut does not keep are removed (added
    when the submodel is A); new input layers are added (removed). Returns B's top-level
    layer name -> A's name for each matched pair, as `_compare_level` does."""
    by_path = {layer.path: layer for _, layer, _ in parent.walk()}
    kept: set[str] = set()
    back: dict[str, str] = {}
    gone, new = (REMOVED, ADDED) if sub_is_b else (ADDED, REMOVED)
    for layer in sub.layers:
        same_name = parent.by_name.get(layer.name)
        source = by_path.get(layer_map.get(layer.name, "")) or \
            (same_name if layer.is_input and same_name is not None and same_name.is_input
             else None)  # a cut's new input may be named after the layer it replaces
        if source is None:
            changes.append(LayerChange(layer.path, None, new, layer.class_name))
            continue
        kept.add(source.path)
        if source.submodel is not None:
            kept.update(inner.path for _, inner, _ in source.submodel.walk())
        la, lb = (source, layer) if sub_is_b else (layer, source)
        back[lb.path] = la.path
        _compare_pair(la, lb, la.path != lb.path, None, changes, pairs, strict)
    around = {k.rsplit("/", i)[0] for k in kept for i in range(1, k.count("/") + 1)}
    for path, layer in by_path.items():
        outer = path.rsplit("/", 1)[0] if "/" in path else None
        if path in kept or path in around or (outer is not None and outer not in around):
            continue  # kept, holds kept layers, or inside a nested model reported whole
        changes.append(LayerChange(path, None, gone, layer.class_name))
    return back


def _compare_level(a: LayerGraph, b: LayerGraph, changes: list[LayerChange],
                   pairs: list[Pair], strict: bool) -> dict[str, str]:
    """Compare one graph level (nested models recursively); returns B's layer name -> A's
    for each matched pair."""
    matched = _match(a, b, strict)
    back = {lb.name: la.name for la, lb in matched if la is not None and lb is not None}
    for la, lb in matched:
        if lb is None:
            assert la is not None
            changes.append(LayerChange(la.path, None, REMOVED, la.class_name))
        elif la is None:
            changes.append(LayerChange(lb.path, None, ADDED, lb.class_name))
        else:
            _compare_pair(la, lb, la.name != lb.name, back, changes, pairs, strict)
    return back


def _compare_pair(la: Layer, lb: Layer, renamed: bool, back: dict[str, str] | None,
                  changes: list[LayerChange], pairs: list[Pair], strict: bool) -> None:
    """One matched pair: class and where it comes from, inputs (when `back` maps B's names to
    A's) and call arguments, config; nested models are compared layer by layer."""
    change = LayerChange(la.path, lb.path if renamed else None, RENAMED if renamed else CHANGED,
                         la.class_name)
    if la.class_name != lb.class_name:
        change.new_class_name = lb.class_name
    change.config += _origin_changes(la, lb)
    if back is not None:
        old, new = _connections(la), _connections(lb, back)
        if old != new:
            change.connections = (old, new)
    if back is not None or len(la.calls) == len(lb.calls):  # a cut may keep fewer calls
        change.arguments = _argument_changes(la, lb, strict)
    if la.submodel is None or lb.submodel is None:
        change.config += _config_changes(la.config, lb.config, strict)
    else:
        change.config += _config_changes(_model_fields(la.config), _model_fields(lb.config),
                                         strict)
    changes.append(change)
    pairs.append((la, lb, change))
    if la.submodel is not None and lb.submodel is not None:
        _compare_level(la.submodel, lb.submodel, changes, pairs, strict)


def _origin_changes(la: Layer, lb: Layer) -> list[FieldChange]:
    """Where each layer's class comes from; whether Keras loads the entry as another entry's
    object (`shared_object_id`); an inner name other than the layer's own."""
    found = []
    # with the class name: what an origin one format leaves out resolves to (`align_formats`)
    a = {k: la.raw[k] for k in ("class_name", "module", "registered_name") if k in la.raw}
    b = {k: lb.raw[k] for k in ("class_name", "module", "registered_name") if k in lb.raw}
    for key, old, new in loose_changes(a, b):  # fields only one format writes, as in configs
        if key != "class_name":  # a changed class is reported as such
            found.append(FieldChange(key, old, new, ChangeKind.SAFETY))
    shared = ["shared_object_id" in layer.raw for layer in (la, lb)]
    if shared[0] != shared[1]:
        said = ["shared with another entry" if s else ABSENT_TEXT for s in shared]
        found.append(FieldChange("shared_object_id", said[0], said[1]))
    inner = [layer.config.get("name", layer.name) for layer in (la, lb)]
    own = [inner[0] == la.name, inner[1] == lb.name]
    if own != [True, True] and (own[0] != own[1] or inner[0] != inner[1]):
        found.append(FieldChange("config.name (the name Keras builds the layer with)",
                                 inner[0], inner[1]))
    return found


ABSENT_TEXT = "(absent)"


def _argument_changes(la: Layer, lb: Layer, strict: bool) -> list[FieldChange]:
    """What each call passes besides its input tensors (`training=True`, a causal mask)."""
    found = []
    for i, (ca, cb) in enumerate(zip(la.calls, lb.calls, strict=False)):
        old, new = call_arguments(ca.data), call_arguments(cb.data)
        for key, x, y in loose_changes(old, new, strict):
            found.append(FieldChange(f"call {i}: {key}", x, y))
    return found


def _connections(layer: Layer, rename: dict[str, str] | None = None) -> str:
    """Each call's inputs, in A's names: "conv1; add@1[0]"."""
    rename = rename or {}
    calls = []
    for call in layer.calls:
        refs = [f"{rename.get(r.layer, r.layer)}" + (f"@{r.call}" if r.call else "")
                + (f"[{r.index}]" if r.index else "") for r in call.inputs]
        calls.append(", ".join(refs) or "-")
    return "; ".join(calls)


def _endpoints(a: LayerGraph, b: LayerGraph, back: dict[str, str]) -> list[EndpointChange]:
    changes = []
    for kind, refs_a, refs_b in (("input", a.inputs, b.inputs),
                                 ("output", a.outputs, b.outputs)):
        old = [_endpoint(a, r, r.layer) for r in refs_a]
        new = [_endpoint(b, r, back.get(r.layer, r.layer)) for r in refs_b]
        for i in range(max(len(old), len(new))):
            o = old[i] if i < len(old) else None
            n = new[i] if i < len(new) else None
            if o is None or n is None or not _same_endpoint(o, n):
                changes.append(EndpointChange(kind, _endpoint_text(o), _endpoint_text(n)))
    return changes


Endpoint = tuple[str, Any, Any]  # name, shape (None: not known), dtype (None: not known)


def _endpoint(graph: LayerGraph, ref: Any, name: str) -> Endpoint:
    tensor = graph.tensor(ref)
    return (f"{name}{f'[{ref.index}]' if ref.index else ''}", tensor.shape, tensor.dtype)


def _same_endpoint(a: Endpoint, b: Endpoint) -> bool:
    """A shape or dtype keras-cut could not work out is not a difference in itself."""
    return a[0] == b[0] and (a[1] is None or b[1] is None or tuple(a[1]) == tuple(b[1])) and \
        (a[2] is None or b[2] is None or a[2] == b[2])


def _endpoint_text(e: Endpoint | None) -> str | None:
    return None if e is None else f"{e[0]} {format_shape(e[1])} {e[2] or '?'}"


# --- configs ---------------------------------------------------------------------------------

IGNORED_FIELDS = {"name"}  # a rename is reported as such


def _model_fields(config: dict[str, Any]) -> dict[str, Any]:
    """A nested model's own fields (its layers are compared one by one)."""
    return {k: v for k, v in config.items() if k not in ("layers", "input_layers",
                                                          "output_layers")}


def _config_changes(old: dict[str, Any], new: dict[str, Any], strict: bool
                    ) -> list[FieldChange]:
    changes = []
    for key, o, n in loose_changes(old, new, strict):
        if key.split(".", 1)[0] in IGNORED_FIELDS:
            continue
        leaf = key.rsplit(".", 1)[-1]
        kind = ChangeKind.SAFETY if leaf in ("module", "registered_name") and "." in key \
            else ChangeKind.BEHAVIOUR
        changes.append(FieldChange(key, o, n, kind))
    return changes


# --- weights ---------------------------------------------------------------------------------


def _weight_pairs(la: Layer, lb: Layer, format_a: str = "keras", format_b: str = "keras"
                  ) -> list[tuple[Weight | None, Weight | None]]:
    """Arrays at the same place in the layer's group with the same shape first (one array
    added to a layer must not make every array look renamed; an `.h5` file's arrays at the
    place a `.keras` file keeps them), then by name, then by position; the rest added or
    removed."""
    place_a, place_b = _places(la, format_a), _places(lb, format_b)
    rest_a, rest_b = list(la.weights), list(lb.weights)
    pairs: list[tuple[Weight | None, Weight | None]] = []
    for same in (lambda x, y: place_a(x) == place_b(y) and x.shape == y.shape,
                 lambda x, y: x.name == y.name):
        for wa in list(rest_a):
            wb = next((w for w in rest_b if same(wa, w)), None)
            if wb is not None:
                pairs.append((wa, wb))
                rest_a.remove(wa)
                rest_b.remove(wb)
    if len(rest_a) == len(rest_b):
        pairs += list(zip(rest_a, rest_b, strict=True))
    else:
        pairs += [(w, None) for w in rest_a] + [(None, w) for w in rest_b]
    order = {id(w): i for i, w in enumerate(la.weights + lb.weights)}
    return sorted(pairs, key=lambda p: order[id(p[0] if p[0] is not None else p[1])])


def _places(layer: Layer, fmt: str) -> Any:
    """A layer's array -> where a `.keras` file keeps it."""
    if fmt == "keras":
        return lambda w: w.entry.name
    from keras_cut.cut.writer import keras_places

    places = keras_places(layer)
    return lambda w: places.get(w.entry.name, w.entry.name)


def _compare_weights(file_a: ModelFile, file_b: ModelFile, pairs: list[Pair],
                     report: DiffReport, structure_only: bool, atol: float) -> None:
    todo = []
    for la, lb, change in pairs:
        for wa, wb in _weight_pairs(la, lb, file_a.format, file_b.format):
            if wa is None or wb is None:
                w = wa or wb
                assert w is not None
                change.weights.append(WeightChange(
                    w.name, REMOVED if wb is None else ADDED,
                    old=_sig(wa) if wa else "", new=_sig(wb) if wb else ""))
            elif wa.shape != wb.shape or wa.dtype != wb.dtype:
                change.weights.append(WeightChange(
                    wa.name, "shape" if wa.shape != wb.shape else "dtype", _sig(wa), _sig(wb)))
            elif not structure_only:
                todo.append((change, wa, wb))
    if not todo:
        return
    with file_a.open_weights() as h5a, file_b.open_weights() as h5b:
        for change, wa, wb in todo:
            report.arrays_compared += 1
            found = _values(file_a.read_weight(h5a, wa.entry), file_b.read_weight(h5b, wb.entry),
                            atol)
            if found is not None:
                found.name = wa.name
                found.old, found.new = _sig(wa), _sig(wb)
                change.weights.append(found)


def _values(a: Any, b: Any, atol: float) -> WeightChange | None:
    """None when the bytes are equal; `bits` when the values are (0.0 and -0.0, NaN payloads);
    else the statistics. NaN and infinity never hide in them: elements NaN on one side only,
    and infinities that differ, are counted apart; max and mean are over the elements finite
    on both sides, and any counted element is a change whatever `atol`."""
    import numpy as np

    if a.tobytes() == b.tobytes():
        return None
    if a.dtype.kind not in "fc":
        changed = a != b
        count = int(changed.sum())
        if not count:
            return WeightChange("", "bits", changed_fraction=0.0)
        return WeightChange("", "values", changed_fraction=count / max(a.size, 1))
    x, y = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), \
        b.astype(np.complex128 if b.dtype.kind == "c" else np.float64)
    nan_x, nan_y = np.isnan(x), np.isnan(y)
    finite = np.isfinite(x) & np.isfinite(y)
    nan = nan_x ^ nan_y
    inf = ~finite & ~nan_x & ~nan_y & (x != y)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(np.where(finite, x - y, 0))
    changed = (diff > atol) | nan | inf
    count = int(changed.sum())
    if not count:
        equal = bool(((x == y) | (nan_x & nan_y)).all())
        return WeightChange("", "bits", changed_fraction=0.0) if equal else None
    return WeightChange("", "values", max_abs_diff=float(diff.max()) if finite.any() else None,
                        mean_abs_diff=float(diff[finite].mean()) if finite.any() else None,
                        changed_fraction=count / diff.size, nan=int(nan.sum()),
                        inf=int(inf.sum()))


def _sig(w: Weight | None) -> str:
    return f"{w.dtype}{list(w.shape)}" if w is not None else ""


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None
