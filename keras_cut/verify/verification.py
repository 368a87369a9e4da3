"""`verify`: prove that a submodel computes what its parent computes at the same points.

The jobs are split like a comparator's: `correspondence` ties every submodel input, output and
layer to the parent (no TensorFlow), `feeds` makes the inputs, `comparison` judges outputs,
`golden` keeps a parent's answers for later, and `backend.running` runs the models. This module
runs them in order: the parent by replaying Keras' own node graph (fed by input name, reading
the activations at the submodel's inputs and outputs), the submodel through Keras' own call
fed with those activations. A disagreement is data in the report, never an exception; when an
output fails, every kept layer is compared on the failing batch to name where it starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from keras_cut.core.address import TensorAddress
from keras_cut.core.errors import KerasCutError, LoadError, Option, Part, RunError, UsageError
from keras_cut.core.writing import atomic_output, check_output
from keras_cut.file.modelfile import ModelFile
from keras_cut.model import provenance
from keras_cut.model.endpoint import Endpoint
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import LayerGraph
from keras_cut.model.opening import open_model
from keras_cut.model.safety import check_loadable, find_hazards
from keras_cut.model.structure import (
    ConfigCheck,
    ParentStructure,
    check_structure,
    parent_structure,
)
from keras_cut.verify import golden as goldens
from keras_cut.verify.comparison import OutputCheck, Tolerances, agree, finite
from keras_cut.verify.correspondence import Correspondence, correspond, endpoint_names, match_calls
from keras_cut.verify.feeds import parent_data

DEFAULT_SAMPLES = 32
DEFAULT_BATCH = 8
DEFAULT_SEED = 0
GOLDEN_FORMATS = {".npz": "npz"}

Progress = Callable[[str], None]


@dataclass
class WeightCheck:
    checked: int = 0
    mismatched: list[str] = field(default_factory=list)
    against: str = "parent"  # or "golden file" (SHA-256 of the parent's arrays)

    @property
    def passed(self) -> bool:
        return not self.mismatched

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "mismatched": self.mismatched,
                "against": self.against}


@dataclass
class Divergence:
    """Where a failing output starts to go wrong: the first kept layer call, in graph order,
    whose activation differs from the parent's on the first failing batch."""

    batch: int
    compared: int  # layer calls compared
    layer: str | None = None  # the submodel's layer call (None: every kept layer agrees)
    parent_layer: str | None = None
    max_abs_error: float | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "compared": self.compared, "layer": self.layer,
                "parent_layer": self.parent_layer,
                "max_abs_error": None if self.max_abs_error is None
                else finite(self.max_abs_error), "problem": self.problem or None}


@dataclass
class VerifyReport:
    parent: str
    submodel: str
    samples: int
    batch_size: int
    seed: int | None
    atol: float
    rtol: float
    inputs: list[Endpoint]
    outputs: list[OutputCheck]
    weights: WeightCheck
    configs: ConfigCheck
    notices: list[str] = field(default_factory=list)
    golden: str | None = None  # the golden file checked against, instead of the parent
    saved_golden: str | None = None
    divergence: Divergence | None = None

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs) and self.weights.passed and \
            self.configs.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "parent": self.parent, "submodel": self.submodel,
            "samples": self.samples, "batch_size": self.batch_size, "seed": self.seed,
            "atol": self.atol, "rtol": self.rtol, "inputs": [e.label() for e in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs], "weights": self.weights.to_dict(),
            "configs": self.configs.to_dict(), "notices": self.notices, "golden": self.golden,
            "saved_golden": self.saved_golden,
            "divergence": self.divergence.to_dict() if self.divergence else None,
        }


def verify_models(
    parent: str | Path,
    submodel: str | Path,
    samples: int = DEFAULT_SAMPLES,
    batch_size: int = DEFAULT_BATCH,
    seed: int = DEFAULT_SEED,
    tolerances: Tolerances | None = None,
    inputs: str | Path | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    unsafe: bool = False,
    custom_objects: str | None = None,
    progress: Progress | None = None,
    submodel_label: str | None = None,
    save_golden: str | Path | None = None,
    force: bool = False,
) -> VerifyReport:
    """Compare `submodel` with `parent` (a model file, or a golden file written earlier with
    `save_golden`) on seeded random (or given) inputs.

    `submodel_label` names the submodel in the report when `submodel` is a temporary file
    (`cut_model(verify=True)` checks the file before it is renamed into place). What
    `tolerances` leaves unset comes from the golden file, else the defaults."""
    say = progress or (lambda _msg: None)
    parent, submodel = Path(parent), Path(submodel)
    is_golden = parent.suffix.lower() == ".npz"  # a model file is never an .npz
    _check_options(samples, batch_size, seed, is_golden, save_golden, inputs)
    golden = goldens.read(parent) if is_golden else None
    tol = (tolerances or Tolerances()).over(golden.tolerances if golden else None)
    golden_path = check_output(save_golden, submodel, force, GOLDEN_FORMATS, (parent,)) \
        if save_golden is not None else None

    sub_file, sub_graph = open_model(submodel, custom_objects, unsafe, "verify")
    sub_flat = FlatGraph(sub_graph)
    if golden is not None:
        check_loadable(submodel, find_hazards(sub_file, sub_graph), unsafe, bool(custom_objects))
        return _verify_golden(parent, golden, submodel, sub_flat, tol, batch_size, unsafe,
                              custom_objects, say, submodel_label,
                              assets_by_path(sub_file, sub_graph))

    parent_file, parent_graph = open_model(parent, custom_objects, unsafe, "verify against")
    for path, model_file, graph in ((parent, parent_file, parent_graph),
                                    (submodel, sub_file, sub_graph)):
        check_loadable(path, find_hazards(model_file, graph), unsafe, bool(custom_objects))
    flat = FlatGraph(parent_graph)
    record = provenance.read(submodel)
    links = correspond(flat, sub_flat, record, submodel)
    structure = parent_structure(flat, _kept_paths(sub_flat, links.parent_path),
                                 [link.parent for link in links.inputs],
                                 [link.parent for link in links.outputs],
                                 assets_by_path(parent_file, parent_graph))
    configs = check_structure(sub_flat, links.parent_path, structure, _frozen(record),
                              assets_by_path(sub_file, sub_graph))
    tol.check_names([link.name for link in links.outputs],
                    [link.source for link in links.outputs])
    notices: list[str] = []
    data = parent_data(flat, parent_graph, samples, seed, inputs, input_shapes or {}, notices)
    samples = len(next(iter(data.values())))

    _backend(say)  # TensorFlow from here on
    from keras_cut.backend.keras import loading, running, saved

    custom = loading.load_custom_objects(custom_objects)
    say(f"loading {parent}")
    parent_model, load_note = saved.load_saved_model(parent_file, unsafe, custom)
    notices += [load_note] if load_note else []
    say(f"loading {submodel_label or submodel}")
    sub_model = _load_submodel(sub_file, unsafe, custom, submodel, submodel_label,
                               notices)
    wanted = [link.parent for link in links.inputs + links.outputs]
    batches = _Batches(
        parent=running.parent_function(parent_model, wanted),
        sub=_submodel_function(sub_model, links, submodel), links=links,
        checks=[OutputCheck(link.name, link.source, *tol.for_output(link.name, link.source))
                for link in links.outputs], keep=golden_path is not None)
    batches.run(data, batch_size, parent, Path(submodel_label or submodel), inputs, say)
    checks, first_failure = batches.checks, batches.first_failure
    notices += [f"{c.parent_nonfinite:,} of {c.elements:,} values of the parent's {c.name!r} "
                "are NaN or infinite on these inputs: the submodel matches them only by giving "
                "the same, which proves little; give other data" for c in checks
                if c.parent_nonfinite]
    say("comparing weights")
    hashes: dict[str, str] | None = {} if golden_path is not None else None
    weights = _compare_weights(parent_model, sub_model, links, hashes)
    weights.mismatched += _layers_not_loaded(sub_model, sub_graph)
    divergence = None
    if first_failure is not None:
        say(f"looking for the first diverging layer (batch {first_failure[0]})")
        divergence = _first_divergence(parent_model, sub_model, flat, sub_flat, links,
                                       first_failure, tol)
    report = VerifyReport(
        parent=str(parent), submodel=submodel_label or str(submodel), samples=samples,
        batch_size=batch_size, seed=None if inputs else seed, atol=tol.global_atol,
        rtol=tol.global_rtol,
        inputs=[link.end for link in links.inputs],
        outputs=checks, weights=weights, configs=configs, notices=notices,
        divergence=divergence,
    )
    if golden_path is not None:
        _save_golden(golden_path, report, links, batches.kept_inputs, batches.kept_outputs,
                     parent, hashes or {}, tol, structure)
    return report


def _check_options(samples: int, batch_size: int, seed: int, is_golden: bool,
                   save_golden: Any, inputs: Any) -> None:
    if seed < 0:
        raise UsageError(Option.SEED, f" must be 0 or more (got {seed})")
    if samples <= 0:
        raise UsageError(Option.SAMPLES, f" must be at least 1 (got {samples})")
    if batch_size <= 0:
        raise UsageError(Option.BATCH_SIZE, f" must be at least 1 (got {batch_size})")
    if is_golden and save_golden is not None:
        raise UsageError(Option.SAVE_GOLDEN, " needs the parent model, not a golden file")
    if is_golden and inputs is not None:
        raise UsageError(Option.INPUTS, ": a golden file carries its own inputs")


def _load_submodel(sub_file: Any, unsafe: bool, custom: Any, submodel: Path,
                   label: str | None, notices: list[str]) -> Any:
    """Keras' load of the submodel; `cut --verify` checks a temporary file, so an error names
    the user's output (`label`) instead."""
    from keras_cut.backend.keras import saved

    try:
        sub_model, note = saved.load_saved_model(sub_file, unsafe, custom)
    except LoadError as exc:
        if label is None:
            raise
        raise exc.replaced(str(submodel), label) from exc
    notices += [note] if note else []
    return sub_model


Failure = tuple[int, dict[str, Any], dict[str, Any]]  # batch number, parent feed, sub feed


@dataclass
class _Batches:
    """Both models run batch by batch: the parent's activations at the submodel's inputs feed
    the submodel, its activations at the outputs are the reference."""

    parent: Any  # feed by parent input name -> activations at the linked tensors
    sub: tuple[Any, list[int]]  # the submodel's call, and where each linked output is
    links: Correspondence
    checks: list[OutputCheck]
    keep: bool  # keep what was fed and expected (a golden file)
    first_failure: Failure | None = None
    kept_inputs: list[list[np.ndarray]] = field(default_factory=list)
    kept_outputs: list[list[np.ndarray]] = field(default_factory=list)

    def run(self, data: dict[str, np.ndarray], batch_size: int, parent: Path, submodel: Path,
            given: Any, say: Progress) -> None:
        samples = len(next(iter(data.values())))
        run_sub, positions = self.sub
        n_in = len(self.links.inputs)
        for number, start in enumerate(range(0, samples, batch_size), 1):
            say(f"batch {number} of {math.ceil(samples / batch_size)}")
            batch = {name: array[start:start + batch_size] for name, array in data.items()}
            reference = _run(parent, self.parent, batch, given)
            feed = {link.layer: value for link, value in zip(self.links.inputs,
                                                             reference[:n_in], strict=True)}
            got = _run(submodel, run_sub, feed, given)
            for i, check in enumerate(self.checks):
                check.add(got[positions[i]], reference[n_in + i])
            if self.first_failure is None and not all(c.passed for c in self.checks):
                self.first_failure = (number, batch, feed)
            if self.keep:
                self.kept_inputs.append(reference[:n_in])
                self.kept_outputs.append(reference[n_in:])
        for check in self.checks:
            check.finish()


def assets_by_path(model_file: ModelFile, graph: LayerGraph) -> dict[str, dict[str, str]]:
    """Each layer's saved assets ({file name: SHA-256}) by layer path."""
    by_key = model_file.layer_assets()
    found: dict[str, dict[str, str]] = {}

    def visit(level: LayerGraph, key: tuple[str, ...]) -> None:
        for layer in level.layers:
            if key + (layer.name,) in by_key:
                found[layer.path] = by_key[key + (layer.name,)]
            if layer.submodel is not None:
                visit(layer.submodel, key + (layer.name,))

    if by_key:
        visit(graph, ())
    return found


def _kept_paths(sub: FlatGraph, parent_path: Callable[[str], str | None]) -> set[str]:
    """The parent layer paths the submodel's layers stand for."""
    paths = {parent_path(layer.path) for _, layer, graph in sub.top.walk()
             if not (layer.is_input and graph is sub.top)}
    return {p for p in paths if p is not None}


def _frozen(record: dict[str, Any] | None) -> bool:
    """Whether keras-cut's record says the cut set every layer's `trainable` to false."""
    return isinstance(record, dict) and record.get("frozen") is True


def _record_layers(record: dict[str, Any] | None) -> Callable[[str], str]:
    """A submodel layer path -> the parent path the record gives its top-level layer."""
    layers = record.get("layers") if isinstance(record, dict) else None
    layers = layers if isinstance(layers, dict) else {}

    def parent_path(sub_path: str) -> str:
        head, sep, rest = sub_path.partition("/")
        return str(layers.get(head, head)) + sep + rest

    return parent_path


GOLDEN_HINT = "the golden file's inputs do not fit this submodel; was it written for it?"


def _run(path: Path, function: Any, feed: dict[str, Any], given: Any) -> list[Any]:
    """Run one batch; Keras refusing the data (an id outside a vocabulary, a shape the model
    cannot take) is a one-line error, not a difference and not a traceback. `given`: the
    --inputs file, or a hint of its own (golden files)."""
    try:
        return function(feed)
    except (KerasCutError, AssertionError):
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())[:240]
        hint: tuple[Part, ...] = (
            (given,) if given == GOLDEN_HINT else ("check the arrays in ", Option.INPUTS)
            if given is not None else
            ("give real data with ", Option.INPUTS, " FILE.npz (and ", Option.INPUT_SHAPES,
             " for unknown dimensions)"))
        if "scope name" in detail:  # TensorFlow names its ops after the layers
            hint = ("TensorFlow refuses a layer name of the model (control characters and "
                    "some punctuation cannot name its operations); rename the layer",)
        raise RunError(f"{path}: Keras could not run the model on the inputs ({detail}); ",
                       *hint) from exc


def _submodel_function(sub_model: Any, links: Correspondence, path: Path
                       ) -> tuple[Any, list[int]]:
    """The submodel's compiled call, and where each linked output is among its flat outputs
    (Keras flattens dict outputs by key, not in config order)."""
    from keras_cut.backend.keras import running

    run, keys = running.model_function(sub_model)
    positions = []
    for link in links.outputs:
        key = link.sub
        if key not in keys:
            raise KerasCutError(f"{path}: Keras' loaded submodel has no output {link.name!r} "
                                "where its config has one; the file is inconsistent")
        positions.append(keys.index(key))
    return run, positions


# --- weights ---------------------------------------------------------------------------------


def _compare_weights(parent: Any, sub: Any, links: Correspondence,
                     hashes: dict[str, str] | None = None) -> WeightCheck:
    """Everything Keras saves for each submodel layer must equal what it saves for the parent
    layer it stands for, array by array at the same place inside the layer, bit for bit.
    `hashes`, when given, collects a digest of each of those parent arrays (golden files)."""
    from keras_cut.backend.keras import running

    by_path = dict(running.all_layers(parent))
    check = WeightCheck()
    for path, layer in running.all_layers(sub):
        if running.is_model(layer):
            continue
        mine = running.weight_state(layer)
        if not mine:
            continue
        source = links.parent_path(path)
        original = by_path.get(source) if source else None
        if original is None:
            check.checked += len(mine)
            check.mismatched.append(f"{path}: no parent layer {source or path!r}")
            continue
        theirs = running.weight_state(original)
        if hashes is not None and source is not None:
            hashes.update({goldens.weight_key(source, key): goldens.digest(array)
                           for key, (_, array) in theirs.items()})
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
                _compare_array(check, where, mine[key][1], theirs[key][1])
    return check


def _layers_not_loaded(model: Any, graph: LayerGraph) -> list[str]:
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


# --- where a failure starts ------------------------------------------------------------------


def _first_divergence(parent_model: Any, sub_model: Any, flat: FlatGraph,
                      sub_flat: FlatGraph, links: Correspondence, failure: Failure,
                      tol: Tolerances) -> Divergence:
    """Run both models eagerly on the failing batch, recording every layer call, and compare
    each kept call with the parent call it stands for, producers first."""
    from keras_cut.backend.keras import running

    number, batch, feed = failure
    mine = running.walk(sub_model, feed)
    theirs = running.walk(parent_model, batch)
    result = Divergence(batch=number, compared=0)
    for match in match_calls(flat, sub_flat, links):
        if match.problem:
            result.layer = sub_flat.label(match.node)
            result.parent_layer = flat.label(match.parent) if match.parent else \
                links.parent_path(sub_flat.path(match.node))
            result.problem = match.problem
            return result
        for sub_t, parent_t in match.pairs:
            a, b = mine.get(sub_t), theirs.get(parent_t)
            if a is None or b is None:
                continue
            result.compared += 1
            a, b = np.asarray(a), np.asarray(b)
            ok, err = agree(a, b, tol.global_atol, tol.global_rtol)
            if not ok:
                result.layer = sub_flat.label(match.node) + _index(sub_flat, sub_t)
                result.parent_layer = flat.label(parent_t.node) + _index(flat, parent_t)
                if a.shape != b.shape:
                    result.problem = f"shape {a.shape[1:]} vs the parent's {b.shape[1:]}"
                else:
                    result.max_abs_error = err
                return result
    result.problem = ("every kept layer agrees with the parent on this batch; the outputs are "
                      "taken from other tensors than the parent's")
    return result


def _index(flat: FlatGraph, t: TensorAddress) -> str:
    return f"[{t.index}]" if len(flat.outputs_of(t.node)) > 1 else ""


# --- golden files ----------------------------------------------------------------------------


def _save_golden(path: Path, report: VerifyReport, links: Correspondence,
                 inputs: list[list[np.ndarray]], outputs: list[list[np.ndarray]],
                 parent: Path, hashes: dict[str, str], tol: Tolerances,
                 structure: ParentStructure) -> None:
    record = goldens.Golden(
        parent={"file": parent.name, "bytes": parent.stat().st_size}, seed=report.seed,
        samples=report.samples, tolerances=tol,
        inputs=[replace(link.end, shape=(None, *a.shape[1:]), dtype=str(a.dtype))
                for link, a in zip(links.inputs, inputs[0], strict=True)],
        outputs=[replace(link.end, shape=(None, *a.shape[1:]), dtype=str(a.dtype))
                 for link, a in zip(links.outputs, outputs[0], strict=True)],
        weights=hashes, structure=structure,
        input_arrays=[np.concatenate(parts) for parts in zip(*inputs, strict=True)],
        output_arrays=[np.concatenate(parts) for parts in zip(*outputs, strict=True)],
    )
    with atomic_output(path) as pending:
        goldens.write(pending.path, record)
    report.saved_golden = str(path)


def _verify_golden(path: Path, golden: goldens.Golden, submodel: Path, sub_flat: FlatGraph,
                   tol: Tolerances, batch_size: int, unsafe: bool, custom_objects: str | None,
                   say: Progress, submodel_label: str | None,
                   sub_assets: dict[str, dict[str, str]]) -> VerifyReport:
    """Check the submodel against a golden file: no parent is opened or loaded."""
    sub = sub_flat.top
    names_in = endpoint_names(sub_flat, sub.inputs)
    names_out = endpoint_names(sub_flat, sub.outputs)
    goldens.check_against(
        golden, path,
        [(n, *_shape_dtype(sub_flat, r)) for n, r in zip(names_in, sub.inputs, strict=True)],
        [(n, *_shape_dtype(sub_flat, r)) for n, r in zip(names_out, sub.outputs, strict=True)],
    )
    tol.check_names(names_out, [t.source for t in golden.outputs])
    _backend(say)
    from keras_cut.backend.keras import loading, running

    custom = loading.load_custom_objects(custom_objects)
    say(f"loading {submodel_label or submodel}")
    sub_model = loading.load_model(submodel, unsafe=unsafe, custom_objects=custom)
    run, keys = running.model_function(sub_model)
    positions = [keys.index(r.at_top()) for r in sub.outputs]
    checks = [OutputCheck(name, t.source, *tol.for_output(name, t.source))
              for name, t in zip(names_out, golden.outputs, strict=True)]
    samples = len(golden.input_arrays[0]) if golden.input_arrays else 0
    for number, start in enumerate(range(0, samples, batch_size), 1):
        say(f"batch {number} of {math.ceil(samples / batch_size)}")
        feed = {r.layer: a[start:start + batch_size]
                for r, a in zip(sub.inputs, golden.input_arrays, strict=True)}
        got = _run(Path(submodel_label or submodel), run, feed, GOLDEN_HINT)
        for check, position, want in zip(checks, positions, golden.output_arrays, strict=True):
            check.add(got[position], want[start:start + batch_size])
    for check in checks:
        check.finish()
    record = provenance.read(submodel)
    parent_path = _record_layers(record)
    configs = check_structure(sub_flat, parent_path, golden.structure, _frozen(record),
                              sub_assets, against="golden file")
    weights = WeightCheck(against="golden file")
    for sub_path, layer in running.all_layers(sub_model):
        if running.is_model(layer):
            continue
        source = parent_path(sub_path)
        for key, (label, value) in running.weight_state(layer).items():
            weights.checked += 1
            stored = golden.weights.get(goldens.weight_key(source, key))
            if stored is None:
                weights.mismatched.append(f"{sub_path}/{label}: not in the golden file")
            elif goldens.digest(value) != stored:
                weights.mismatched.append(f"{sub_path}/{label}: differs from the parent's "
                                          "(SHA-256)")
    notices = []
    if any(not c.passed for c in checks):
        notices.append("the first diverging layer is found only against the parent model; "
                       "run `keras-cut verify PARENT SUBMODEL` to see it")
    return VerifyReport(
        parent=f"{golden.parent.get('file')} (golden file {path})",
        submodel=submodel_label or str(submodel), samples=samples, batch_size=batch_size,
        seed=golden.seed, atol=tol.global_atol, rtol=tol.global_rtol,
        inputs=golden.inputs,
        outputs=checks, weights=weights, configs=configs, notices=notices, golden=str(path),
    )


def _shape_dtype(flat: FlatGraph, ref: Any) -> tuple[list, str]:
    shape, dtype = flat.shape_dtype(TensorAddress((), ref.layer, ref.call, ref.index))
    return list(shape or []), str(dtype)


def _backend(say: Any) -> None:
    """keras-cut's TensorFlow side; a one-line error when TensorFlow cannot be imported."""
    say("loading TensorFlow")
    try:
        from keras_cut.backend.keras import loading

        loading.keras_module()
    except ImportError as exc:
        raise LoadError(f"verify runs both models, and TensorFlow cannot be imported ({exc}); "
                        "install it (pip install tensorflow)") from exc
