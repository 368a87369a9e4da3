"""`verify`: prove that a submodel computes what its parent computes at the same points.

The jobs are split like a comparator's: `correspondence` ties every submodel input, output and
layer to the parent (no TensorFlow), `feeds` makes the inputs, `comparison` judges outputs,
`execution` runs both models batch by batch (the parent by replaying Keras' own node graph,
reading the activations at the submodel's inputs and outputs; the submodel through Keras' own
call, fed with those activations), `weights` compares every saved array, `divergence` names
where a failing output starts to differ, and `golden`/`golden_check` keep a parent's answers for
later. This module runs those steps in order. A disagreement is data in the report
(`report`), never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keras_cut.backend.runtime import artifact_format, runtime_name
from keras_cut.core.errors import KerasCutError, Option, UsageError
from keras_cut.core.writing import check_output
from keras_cut.file.modelfile import ModelFile
from keras_cut.model import provenance
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import LayerGraph, compute_dtypes
from keras_cut.model.opening import open_model
from keras_cut.model.safety import check_loadable, find_hazards
from keras_cut.model.structure import (
    ConfigCheck,
    ParentStructure,
    check_structure,
    parent_structure,
)
from keras_cut.verify import golden as goldens
from keras_cut.verify.artifact_check import (
    empty_structure,
    locate_in_artifact,
    verify_artifact_against_golden,
    verify_artifact_against_parent,
)
from keras_cut.verify.comparison import Tolerances, check_notices
from keras_cut.verify.correspondence import Correspondence, correspond
from keras_cut.verify.divergence import first_divergence
from keras_cut.verify.execution import (
    Batches,
    artifact_function,
    import_backend,
    load_submodel,
    submodel_function,
)
from keras_cut.verify.feeds import parent_data
from keras_cut.verify.golden_check import verify_golden, write_golden
from keras_cut.verify.parent_process import Parent, ParentProcess, cores, worth_it
from keras_cut.verify.report import (
    DEFAULT_BATCH,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    Progress,
    VerifyReport,
)
from keras_cut.verify.weights import compare_weights, layers_not_loaded

GOLDEN_FORMATS = {".npz": "npz"}


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
    artifact: tuple[Path, str] | None = None,
    prepare_artifact: Callable[[Any], None] | None = None,
    locate: bool = False,
) -> VerifyReport:
    """Compare `submodel` with `parent` (a model file, or a golden file written earlier with
    `save_golden`) on seeded random (or given) inputs.

    `submodel_label` names the submodel in the report when `submodel` is a temporary file
    (`cut_model(verify=True)` checks the file before it is renamed into place). What
    `tolerances` leaves unset comes from the golden file, else the defaults. With `artifact`
    (path, format), the submodel's outputs are the artifact's, run in its own runtime: the
    artifact exported from `submodel` is what is proven; `prepare_artifact`, when given, writes
    that artifact from Keras' loaded submodel (so the model exported is the one whose weights
    and configs are compared) before it runs. `locate` (an artifact against its parent) adds
    where inside the artifact its values leave the parent's, layer by layer (`locate`)."""
    say = progress or (lambda _msg: None)
    parent, submodel = Path(parent), Path(submodel)
    is_golden = parent.suffix.lower() == ".npz"  # a model file is never an .npz
    _check_options(samples, batch_size, seed, is_golden, save_golden, inputs)
    # the parent's second process imports TensorFlow while the files are read and checked
    # (--locate loads the parent here anyway, to record every layer: one process)
    with _parent_process(not is_golden and not custom_objects and not locate) as child:
        golden = goldens.read(parent) if is_golden else None
        tol = (tolerances or Tolerances()).over(golden.tolerances if golden else None)
        golden_path = check_output(save_golden, submodel, force, GOLDEN_FORMATS, (parent,)) \
            if save_golden is not None else None
        fmt = artifact_format(submodel)
        _check_locate(locate, artifact[1] if artifact else fmt, golden is not None)
        if fmt is not None and golden is not None:  # the runtime only, no TensorFlow
            return verify_artifact_against_golden(parent, golden, submodel, fmt, tol,
                                                  batch_size, say)
        if fmt is not None:
            return _artifact_against_parent(parent, submodel, fmt, tol, samples,
                                            batch_size, seed, inputs, input_shapes, unsafe,
                                            custom_objects, say, golden_path, child, locate)

        sub_file, sub_graph = open_model(submodel, custom_objects, unsafe, "verify")
        sub_flat = FlatGraph(sub_graph)
        if golden is not None:
            check_loadable(submodel, find_hazards(sub_file, sub_graph), unsafe,
                           bool(custom_objects))
            return verify_golden(parent, golden, submodel, sub_flat, tol, batch_size, unsafe,
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
        configs = check_structure(sub_flat, links.parent_path, structure,
                                  provenance.is_frozen(record),
                                  assets_by_path(sub_file, sub_graph))
        tol.check_names([link.name for link in links.outputs],
                        [link.source for link in links.outputs])
        notices: list[str] = []
        data = parent_data(flat, parent_graph, samples, seed, inputs, input_shapes or {}, notices)
        samples = len(next(iter(data.values())))
        wanted = [link.parent for link in links.inputs + links.outputs]
        parent_side = Parent(parent, parent_file, unsafe, child)
        parent_side.start(wanted, data, batch_size, inputs,
                          sorted(_kept_paths(sub_flat, links.parent_path)))
        return _run_both(parent_side, parent, submodel, sub_file, sub_graph, flat, sub_flat,
                         links, structure, configs, tol, data, batch_size, seed, inputs,
                         unsafe, custom_objects, say, submodel_label, golden_path, artifact,
                         prepare_artifact, notices, locate)


def _run_both(parent_side: Parent, parent: Path, submodel: Path, sub_file: ModelFile,
              sub_graph: LayerGraph, flat: FlatGraph, sub_flat: FlatGraph,
              links: Correspondence, structure: ParentStructure, configs: ConfigCheck,
              tol: Tolerances, data: dict[str, Any], batch_size: int, seed: int,
              inputs: str | Path | None, unsafe: bool, custom_objects: str | None,
              say: Progress, submodel_label: str | None, golden_path: Path | None,
              artifact: tuple[Path, str] | None,
              prepare_artifact: Callable[[Any], None] | None,
              notices: list[str], locate: bool) -> VerifyReport:
    """Both models loaded and run (the parent here or in its second process), compared."""
    samples = len(next(iter(data.values())))
    import_backend(say)  # TensorFlow from here on
    from keras_cut.backend.keras import loading

    custom = loading.load_custom_objects(custom_objects)
    if parent_side.child is not None:
        loading.use_threads(cores() // 2)  # the other half is the parent's
    parent_side.load(custom, say)
    say(f"loading {submodel_label or submodel}")
    at = len(notices)
    try:
        sub_model = load_submodel(sub_file, unsafe, custom, submodel, submodel_label,
                                   notices)
    except KerasCutError:
        parent_side.note()  # the parent's own load error, if it had one, comes first
        raise
    if prepare_artifact is not None:
        prepare_artifact(sub_model)
    batches = Batches(
        parent=parent_side.run,
        sub=submodel_function(sub_model, links, submodel) if artifact is None else
        artifact_function(artifact[0], artifact[1], sub_model, links,
                          Path(submodel_label or submodel)), links=links,
        checks=[tol.check(link.name, link.source)
                for link in links.outputs], keep=golden_path is not None)
    load_note = parent_side.note()
    notices[at:at] = [load_note] if load_note else []
    batches.run(data, batch_size, parent, Path(submodel_label or submodel), inputs, say)
    checks, first_failure = batches.checks, batches.first_failure
    notices += check_notices(checks, compute_dtypes(sub_graph))
    notices += [f"{c.parent_nonfinite:,} of {c.elements:,} values of the parent's {c.name!r} "
                "are NaN or infinite on these inputs: the submodel matches them only by giving "
                "the same, which proves little; give other data" for c in checks
                if c.parent_nonfinite]
    say("comparing weights")
    hashes: dict[str, str] | None = {} if golden_path is not None else None
    weights = compare_weights(parent_side.state, sub_model, links, hashes, parent_side.fetch)
    weights.mismatched += layers_not_loaded(sub_model, sub_graph)
    divergence, location = None, None
    # a quantized artifact is judged by cosine over all samples: no one batch fails
    failed = first_failure is not None or not all(check.passed for check in checks)
    if failed and artifact is not None and locate:
        location = locate_in_artifact(artifact[0], artifact[1], parent_side, flat, links,
                                      batches, data, tol, say, batches.sub)
    elif failed and artifact is not None:
        notices.append("the artifact's outputs differ from the parent's; --locate finds where "
                       "inside the artifact they start to differ")
    elif first_failure is not None:
        say(f"looking for the first diverging layer (batch {first_failure[0]})")
        divergence = first_divergence(parent_side.model(), sub_model, flat, sub_flat, links,
                                       first_failure, tol)
    report = VerifyReport(
        parent=str(parent), submodel=submodel_label or str(submodel), samples=samples,
        batch_size=batch_size, seed=None if inputs else seed, atol=tol.global_atol,
        rtol=tol.global_rtol,
        inputs=[link.end for link in links.inputs],
        outputs=checks, weights=weights, configs=configs, notices=notices,
        divergence=divergence,
        runtime=None if artifact is None else runtime_name(artifact[1]), locate=location,
    )
    if golden_path is not None:
        write_golden(golden_path, report, links, batches.kept_inputs, batches.kept_outputs,
                     parent, hashes or {}, tol, structure)
    return report


@contextmanager
def _parent_process(wanted: bool) -> Iterator[ParentProcess | None]:
    """A second process for the parent when it pays off, ended when verify is."""
    child = ParentProcess() if wanted and worth_it() else None
    try:
        yield child
    finally:
        if child is not None:
            child.close()


def _check_locate(locate: bool, fmt: str | None, against_golden: bool) -> None:
    if not locate:
        return
    if fmt is None:
        raise UsageError(Option.LOCATE, " looks inside an artifact (.tflite, .onnx, .xml); for a "
                         "Keras submodel, verify names the first diverging layer by itself")
    if fmt not in ("litert", "onnx", "openvino"):
        raise UsageError(Option.LOCATE, " reads .tflite, .onnx and .xml artifacts, not a "
                         "SavedModel")
    if against_golden:
        raise UsageError(Option.LOCATE, " compares with the parent's layers: give the parent "
                         "model, not a golden file")


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


def _artifact_against_parent(parent: Path, artifact: Path, fmt: str, tol: Tolerances,
                             samples: int, batch_size: int, seed: int,
                             inputs: str | Path | None,
                             input_shapes: dict[str, tuple[int, ...]] | None, unsafe: bool,
                             custom_objects: str | None, say: Progress,
                             golden_path: Path | None,
                             child: ParentProcess | None, locate: bool) -> VerifyReport:
    """An exported artifact against its parent: the parent run by Keras, the artifact by its
    own runtime, tied by the record `export` keeps inside the artifact."""
    parent_file, parent_graph = open_model(parent, custom_objects, unsafe, "verify against")
    check_loadable(parent, find_hazards(parent_file, parent_graph), unsafe, bool(custom_objects))
    flat = FlatGraph(parent_graph)
    notices: list[str] = []
    data = parent_data(flat, parent_graph, samples, seed, inputs, input_shapes or {}, notices)
    parent_side = Parent(parent, parent_file, unsafe, child)
    custom: dict[str, Any] = {}
    if parent_side.child is None:  # else this process needs the artifact's runtime only
        import_backend(say)
        from keras_cut.backend.keras import loading

        custom = loading.load_custom_objects(custom_objects)
    report, batches, links, tol = verify_artifact_against_parent(
        parent, artifact, fmt, flat, data, tol, batch_size, None if inputs else seed,
        parent_side, custom, notices, say, keep=golden_path is not None, locate=locate)
    if golden_path is not None:
        write_golden(golden_path, report, links, batches.kept_inputs, batches.kept_outputs,
                     parent, {}, tol, empty_structure())
    return report
