"""`verify`: prove that a submodel computes what its parent computes at the same points.

Correspondence is planned without TensorFlow: each submodel input is a parent input or the
output of a parent layer call, each submodel output the output of a parent layer call (from the
record `cut` stores in the file, else by name). Then both models run on the same seeded data:
the parent through a probe built from Keras' own node graph, the submodel fed with the parent's
activations at its inputs. A disagreement is data in the report, never an exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import provenance
from .errors import CutError, LayerNameError, UsageError
from .flatgraph import FlatGraph, FlatTensor
from .graph import LayerGraph
from .inspection import open_model
from .safety import check_loadable, find_hazards

DEFAULT_SAMPLES = 32
DEFAULT_BATCH = 8
DEFAULT_SEED = 0
# Same weights and same ops agree to ~1e-6 on CPU; these leave room for float32 round-off in
# deep stacks (ResNet50 activations differ by up to ~2e-6 between graph and eager execution).
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-5
FLOAT_RANGE = (-1.0, 1.0)  # seeded float inputs: uniform in [-1, 1)
INT_HIGH = 100  # seeded integer inputs not feeding an Embedding: [0, 100)
DEFAULT_DIM = 8  # an unknown (None) non-batch dimension, unless --input-shape says otherwise

Progress = Callable[[str], None]


@dataclass
class OutputCheck:
    name: str
    source: str
    shape: list[int | None]
    parent_shape: list[int | None]
    dtype: str
    parent_dtype: str
    max_abs_error: float = 0.0
    mean_abs_error: float = 0.0
    max_rel_error: float = 0.0
    mismatched: int = 0  # elements outside atol + rtol * |parent|
    elements: int = 0
    nan: int = 0
    inf: int = 0
    problem: str = ""  # shape/dtype disagreement, if any

    @property
    def passed(self) -> bool:
        return not self.problem and self.mismatched == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "source": self.source, "shape": self.shape,
            "parent_shape": self.parent_shape, "dtype": self.dtype,
            "parent_dtype": self.parent_dtype, "max_abs_error": _finite(self.max_abs_error),
            "mean_abs_error": _finite(self.mean_abs_error),
            "max_rel_error": _finite(self.max_rel_error), "mismatched": self.mismatched,
            "elements": self.elements, "nan": self.nan, "inf": self.inf,
            "problem": self.problem or None, "passed": self.passed,
        }


@dataclass
class WeightCheck:
    checked: int = 0
    mismatched: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatched

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "mismatched": self.mismatched}


@dataclass
class VerifyReport:
    parent: str
    submodel: str
    samples: int
    batch_size: int
    seed: int | None
    atol: float
    rtol: float
    inputs: list[dict[str, Any]]
    outputs: list[OutputCheck]
    weights: WeightCheck
    notices: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs) and self.weights.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "parent": self.parent, "submodel": self.submodel,
            "samples": self.samples, "batch_size": self.batch_size, "seed": self.seed,
            "atol": self.atol, "rtol": self.rtol, "inputs": self.inputs,
            "outputs": [o.to_dict() for o in self.outputs], "weights": self.weights.to_dict(),
            "notices": self.notices,
        }


@dataclass
class Link:
    """One submodel input or output and the parent tensor it corresponds to."""

    name: str
    source: str
    kind: str  # parent_input, cut_input, crossing, output
    tensor: FlatTensor


@dataclass
class Correspondence:
    inputs: list[Link]
    outputs: list[Link]
    renamed: dict[str, str]  # parent path -> submodel layer name


def verify_models(
    parent: str | Path,
    submodel: str | Path,
    samples: int = DEFAULT_SAMPLES,
    batch_size: int = DEFAULT_BATCH,
    seed: int = DEFAULT_SEED,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    inputs: str | Path | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    unsafe: bool = False,
    custom_objects: str | None = None,
    progress: Progress | None = None,
    submodel_label: str | None = None,
) -> VerifyReport:
    """Compare `submodel` with `parent` on seeded random (or given) inputs.

    `submodel_label` names the submodel in the report when `submodel` is a temporary file
    (`cut --verify` checks the file before it is renamed into place)."""
    say = progress or (lambda _msg: None)
    if samples <= 0:
        raise UsageError(f"--samples must be at least 1 (got {samples})")
    if batch_size <= 0:
        raise UsageError(f"--batch-size must be at least 1 (got {batch_size})")
    if atol < 0 or rtol < 0 or math.isnan(atol) or math.isnan(rtol):
        raise UsageError("--atol and --rtol must be zero or positive")
    parent, submodel = Path(parent), Path(submodel)
    parent_file, parent_graph = open_model(parent)
    sub_file, sub_graph = open_model(submodel)
    for path, model_file, graph in ((parent, parent_file, parent_graph),
                                    (submodel, sub_file, sub_graph)):
        check_loadable(path, find_hazards(model_file, graph), unsafe, bool(custom_objects))
    flat = FlatGraph(parent_graph)
    links = correspond(flat, sub_graph, provenance.read(submodel), submodel)
    notices: list[str] = []
    data = _parent_data(flat, parent_graph, samples, seed, inputs, input_shapes or {}, notices)
    samples = len(next(iter(data.values())))

    from .backend import loading, running  # TensorFlow from here on

    custom = loading.load_custom_objects(custom_objects)
    say(f"loading {parent}")
    parent_model, load_note = loading.load_parent(parent_file, unsafe, custom)
    if load_note:
        notices.append(load_note)
    say(f"loading {submodel_label or submodel}")
    sub_model = loading.load_model(submodel, unsafe=unsafe, custom_objects=custom)
    fed = [link for link in links.inputs if link.kind != "parent_input"]
    probe = running.probe_model(
        parent_model, [_key(t.tensor) for t in fed] + [_key(t.tensor) for t in links.outputs]
    )
    parent_order = [parent_graph.by_name[r.layer].name for r in parent_graph.inputs]
    run_probe, run_sub = running.runner(probe), running.runner(sub_model)
    checks = [_new_check(link) for link in links.outputs]
    abs_sums = [0.0] * len(checks)
    for start in range(0, samples, batch_size):
        stop = min(start + batch_size, samples)
        say(f"batch {start // batch_size + 1} of {math.ceil(samples / batch_size)}")
        batch = {name: data[name][start:stop] for name in parent_order}
        reference = run_probe([batch[name] for name in parent_order])
        at_inputs = dict(zip([link.name for link in fed], reference[: len(fed)]))
        feed = [batch[link.tensor.layer] if link.kind == "parent_input"
                else at_inputs[link.name] for link in links.inputs]
        got = run_sub(feed)
        for i, check in enumerate(checks):
            abs_sums[i] += _compare(check, got[i], reference[len(fed) + i], atol, rtol)
    for check, total in zip(checks, abs_sums):
        check.mean_abs_error = total / check.elements if check.elements else 0.0
    say("comparing weights")
    weights = _compare_weights(running, parent_model, sub_model, links.renamed)
    return VerifyReport(
        parent=str(parent), submodel=submodel_label or str(submodel), samples=samples,
        batch_size=batch_size,
        seed=None if inputs else seed, atol=atol, rtol=rtol,
        inputs=[{"name": link.name, "source": link.source, "kind": link.kind}
                for link in links.inputs],
        outputs=checks, weights=weights, notices=notices,
    )


# --- correspondence (no TensorFlow) ---------------------------------------------------------


def correspond(flat: FlatGraph, sub: LayerGraph, record: dict[str, Any] | None,
               sub_path: Path) -> Correspondence:
    """Which parent tensor each submodel input and output stands for; error if none does."""
    sub_inputs = [sub.by_name[r.layer].name for r in sub.inputs]
    sub_outputs = [sub.by_name[r.layer].name for r in sub.outputs]
    sources_in, sources_out, kinds, renamed = _read_record(record, sub_inputs, sub_outputs)
    parent_inputs = {flat.top.by_name[r.layer].name: flat.canonical(flat.tensor((), r))
                     for r in flat.top.inputs}
    inputs = []
    for name, source in sources_in:
        if source is None and name in parent_inputs:
            inputs.append(Link(name, name, "parent_input", parent_inputs[name]))
            continue
        tensor, label = _source_tensor(flat, name, source, renamed, sub_path, "input")
        kind = "parent_input" if tensor in parent_inputs.values() else "cut_input"
        inputs.append(Link(name, label, kinds.get(name, kind) if kind != "parent_input"
                           else kind, tensor))
    outputs = []
    for name, source in sources_out:
        tensor, label = _source_tensor(flat, name, source, renamed, sub_path, "output")
        outputs.append(Link(name, label, "output", tensor))
    _check_layers_known(flat, sub, renamed, sub_path)
    return Correspondence(inputs, outputs, renamed)


def _read_record(
    record: dict[str, Any] | None, sub_inputs: list[str], sub_outputs: list[str]
) -> tuple[list[tuple[str, str | None]], list[tuple[str, str | None]], dict[str, str],
           dict[str, str]]:
    """Sources from keras-cut's record when it describes exactly these inputs and outputs;
    otherwise none (matching by name). The record is read as untrusted data."""
    plain = ([(n, None) for n in sub_inputs], [(n, None) for n in sub_outputs], {}, {})
    if not isinstance(record, dict):
        return plain
    ins, outs = record.get("inputs"), record.get("outputs")
    if not isinstance(ins, list) or not isinstance(outs, list):
        return plain
    if not all(isinstance(i, dict) and isinstance(i.get("source"), str) for i in ins + outs):
        return plain
    if [i.get("name") for i in ins] != sub_inputs or [o.get("name") for o in outs] != sub_outputs:
        return plain
    kinds = {i["name"]: i["kind"] for i in ins if isinstance(i.get("kind"), str)}
    renamed = record.get("renamed") if isinstance(record.get("renamed"), dict) else {}
    renamed = {k: v for k, v in renamed.items() if isinstance(k, str) and isinstance(v, str)}
    return ([(i["name"], i["source"]) for i in ins], [(o["name"], o["source"]) for o in outs],
            kinds, renamed)


def _source_tensor(flat: FlatGraph, name: str, source: str | None, renamed: dict[str, str],
                   sub_path: Path, what: str) -> tuple[FlatTensor, str]:
    label = source
    if label is None:
        label = _label_by_name(flat, name, renamed, sub_path, what)
    match = re.fullmatch(r"(.*)\[(\d+)\]", label)
    spec, index = (match.group(1), int(match.group(2))) if match else (label, 0)
    try:
        node = flat.resolve(spec, f"{what} {name!r}")
    except LayerNameError as exc:
        raise CutError(
            f"{sub_path}: {what} {name!r} stands for parent layer {spec!r}, which the parent "
            "does not have (or not unambiguously); is this submodel cut from this parent?"
        ) from exc
    outs = flat.outputs_of(node)
    if index >= len(outs):
        raise CutError(f"{sub_path}: {what} {name!r} names output {index} of {spec!r}, "
                       f"which has {len(outs)}")
    return outs[index], label


def _label_by_name(flat: FlatGraph, name: str, renamed: dict[str, str], sub_path: Path,
                   what: str) -> str:
    back = {v: k for k, v in renamed.items()}
    if name in back:
        return back[name]
    call = None
    match = re.fullmatch(r"(.*)_call(\d+)", name)
    candidates = [p for p in flat.top.all_paths() if p.rsplit("/", 1)[-1] == name]
    if not candidates and match:
        name, call = match.group(1), int(match.group(2))
        candidates = [p for p in flat.top.all_paths() if p.rsplit("/", 1)[-1] == name]
    if len(candidates) != 1:
        why = "no layer" if not candidates else f"several layers ({', '.join(candidates)})"
        raise CutError(
            f"{sub_path}: {what} {name!r} matches {why} of the parent by name, and the file "
            "carries no keras-cut record saying which; is it cut from this parent?"
        )
    return candidates[0] + (f"@{call}" if call is not None else "")


def _check_layers_known(flat: FlatGraph, sub: LayerGraph, renamed: dict[str, str],
                        sub_path: Path) -> None:
    parent_names = {p.rsplit("/", 1)[-1] for p in flat.top.all_paths()}
    parent_names |= set(renamed.values())
    for _, layer, _ in sub.walk():
        if layer.is_input:
            continue
        if layer.name not in parent_names:
            raise CutError(
                f"{sub_path}: layer {layer.path!r} ({layer.class_name}) has no counterpart in "
                "the parent; is this submodel cut from this parent?"
            )


def _key(t: FlatTensor) -> tuple[tuple[tuple[str, int], ...], str, int, int]:
    return (t.context, t.layer, t.call, t.index)


# --- inputs ----------------------------------------------------------------------------------


def _parent_data(flat: FlatGraph, graph: LayerGraph, samples: int, seed: int,
                 inputs: str | Path | None, shapes: dict[str, tuple[int, ...]],
                 notices: list[str]) -> dict[str, np.ndarray]:
    """Arrays for each parent input: from --inputs, or seeded random data that fits each input."""
    names = [graph.by_name[r.layer].name for r in graph.inputs]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise UsageError(f"--input-shape names {unknown[0]!r}, which is not an input of the "
                         f"parent (inputs: {', '.join(names)})")
    specs = {}
    for ref, name in zip(graph.inputs, names):
        tensor = graph.tensor(ref)
        specs[name] = (tensor.shape or (None,), tensor.dtype or "float32")
    if inputs is not None:
        return _load_inputs(Path(inputs), specs, samples)
    rng = np.random.default_rng(seed)
    data = {}
    for ref, name in zip(graph.inputs, names):
        shape, dtype = specs[name]
        dims = list(shape[1:])
        if name in shapes:
            given = shapes[name]
            if len(given) != len(dims) or any(d is not None and d != g
                                               for d, g in zip(dims, given)):
                raise UsageError(f"--input-shape {name}={','.join(map(str, given))} does not "
                                 f"fit the input's shape {tuple(shape)}")
            dims = list(given)
        elif None in dims:
            dims = [DEFAULT_DIM if d is None else d for d in dims]
            notices.append(f"input {name!r} has unknown dimensions {tuple(shape)}; used "
                           f"{tuple(dims)} (set them with --input-shape {name}=...)")
        full = (samples, *dims)
        if dtype == "string":
            raise UsageError(f"input {name!r} takes strings; give real data with --inputs "
                             "FILE.npz")
        if dtype == "bool":
            data[name] = rng.integers(0, 2, size=full).astype(bool)
        elif "int" in dtype:
            high = _vocabulary(flat, flat.canonical(flat.tensor((), ref))) or INT_HIGH
            data[name] = rng.integers(0, high, size=full).astype(dtype)
        else:
            data[name] = rng.uniform(*FLOAT_RANGE, size=full).astype(dtype)
    return data


def _vocabulary(flat: FlatGraph, tensor: FlatTensor) -> int | None:
    """The smallest Embedding input_dim this integer input feeds, if it feeds one."""
    sizes = []
    for node in flat.consumers.get(tensor, []):
        layer = flat.layer(node)
        if layer.class_name == "Embedding" and isinstance(layer.config.get("input_dim"), int):
            sizes.append(layer.config["input_dim"])
    return min(sizes) if sizes else None


def _load_inputs(path: Path, specs: dict[str, tuple[Any, str]], samples: int
                 ) -> dict[str, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"--inputs {path}: cannot be read as .npz ({exc})") from exc
    missing = [n for n in specs if n not in arrays]
    extra = [n for n in arrays if n not in specs]
    if missing or extra:
        raise UsageError(
            f"--inputs {path}: arrays must be named after the parent's inputs "
            f"({', '.join(specs)}); missing {missing or 'none'}, unexpected {extra or 'none'}"
        )
    data, count = {}, None
    for name, (shape, dtype) in specs.items():
        array = arrays[name]
        if array.ndim != len(shape) or any(d is not None and d != a
                                           for d, a in zip(shape[1:], array.shape[1:])):
            raise UsageError(f"--inputs {path}: {name!r} has shape {array.shape}, the input "
                             f"takes {tuple(shape)}")
        if not np.can_cast(array.dtype, dtype, casting="same_kind"):
            raise UsageError(f"--inputs {path}: {name!r} is {array.dtype}, the input takes "
                             f"{dtype}")
        if count is not None and len(array) != count:
            raise UsageError(f"--inputs {path}: arrays have different numbers of samples")
        count = len(array)
        data[name] = array[:samples].astype(dtype)
    if not count:
        raise UsageError(f"--inputs {path}: the arrays hold no samples")
    return data


def parse_input_shapes(values: list[str]) -> dict[str, tuple[int, ...]]:
    """--input-shape NAME=D1,D2,… (non-batch dimensions)."""
    shapes = {}
    for value in values:
        name, sep, dims = value.partition("=")
        try:
            parsed = tuple(int(d) for d in dims.split(","))
        except ValueError:
            parsed = ()
        if not sep or not name or not parsed or any(d <= 0 for d in parsed):
            raise UsageError(f"--input-shape {value!r}: expected NAME=D1,D2,… with positive "
                             "integers (the dimensions after the batch)")
        shapes[name] = parsed
    return shapes


# --- comparison ------------------------------------------------------------------------------


def _new_check(link: Link) -> OutputCheck:
    return OutputCheck(name=link.name, source=link.source, shape=[], parent_shape=[],
                       dtype="", parent_dtype="")


def _compare(check: OutputCheck, got: np.ndarray, want: np.ndarray, atol: float,
             rtol: float) -> float:
    """Fold one batch into the check; return the batch's sum of absolute errors."""
    check.shape = [None, *got.shape[1:]]
    check.parent_shape = [None, *want.shape[1:]]
    check.dtype, check.parent_dtype = str(got.dtype), str(want.dtype)
    if got.shape != want.shape:
        check.problem = f"shape {tuple(check.shape)} differs from the parent's " \
                        f"{tuple(check.parent_shape)}"
        return 0.0
    if got.dtype != want.dtype:
        check.problem = f"dtype {got.dtype} differs from the parent's {want.dtype}"
    a, b = got.astype(np.float64), want.astype(np.float64)
    check.nan += int(np.isnan(a).sum())
    check.inf += int(np.isinf(a).sum())
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(same, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    bad = diff > atol + rtol * np.abs(np.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0))
    check.mismatched += int(bad.sum())
    check.elements += diff.size
    if diff.size:
        check.max_abs_error = max(check.max_abs_error, float(diff.max()))
        scale = np.abs(b)
        big = scale > max(atol, np.finfo(np.float32).tiny)
        if big.any():
            check.max_rel_error = max(check.max_rel_error, float((diff[big] / scale[big]).max()))
    finite = diff[np.isfinite(diff)]
    return float(finite.sum())


def _compare_weights(runtime: Any, parent: Any, sub: Any, renamed: dict[str, str]) -> WeightCheck:
    """Every weight the submodel holds must equal the parent's, bit for bit, by name."""
    back = {v: k for k, v in renamed.items()}
    by_path = dict(runtime.all_layers(parent))
    by_leaf: dict[str, list[Any]] = {}
    for path, layer in by_path.items():
        by_leaf.setdefault(path.rsplit("/", 1)[-1], []).append(layer)
    check = WeightCheck()
    for path, layer in runtime.all_layers(sub):
        if runtime.is_model(layer) or not layer.weights:
            continue
        leaf = path.rsplit("/", 1)[-1]
        original = by_path.get(back[leaf]) if leaf in back else None
        if original is None:
            candidates = by_leaf.get(leaf, [])
            original = candidates[0] if len(candidates) == 1 else None
        if original is None:
            check.mismatched.append(f"{path}: no single parent layer of that name")
            continue
        theirs = {w.name: w for w in original.weights}
        for w in layer.weights:
            check.checked += 1
            other = theirs.get(w.name)
            label = f"{path}/{w.name}"
            if other is None:
                check.mismatched.append(f"{label}: the parent layer has no such weight")
                continue
            a, b = np.asarray(w.numpy()), np.asarray(other.numpy())
            if a.shape != b.shape or a.dtype != b.dtype:
                check.mismatched.append(f"{label}: {a.dtype}{list(a.shape)} vs parent "
                                        f"{b.dtype}{list(b.shape)}")
            elif a.tobytes() != b.tobytes():
                diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
                check.mismatched.append(f"{label}: differs (max abs {diff:.3g})")
    return check


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
