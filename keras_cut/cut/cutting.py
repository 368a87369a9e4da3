"""`cut`: save a submodel of a saved model — prefix, head, segment, at any nesting depth.

The submodel file is written from the parent file itself: the kept layers' configs are copied
and rewired (`submodel`), their arrays copied dataset by dataset (`filewriter`). Nothing from
the file runs and TensorFlow is never imported, so a model with Lambda layers or custom
classes is cut without their code; the result says what loading it will need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keras_cut.core.address import CallAddress
from keras_cut.core.errors import CutError, ModelFileError
from keras_cut.core.writing import FORMATS, atomic_output, check_output
from keras_cut.cut.plan import CutPlan, ModelCall, plan_cut
from keras_cut.cut.submodel import Submodel, build_submodel
from keras_cut.cut.writer import write_submodel
from keras_cut.layers import known
from keras_cut.model.costs import Cost, flat_cost, share
from keras_cut.model.endpoint import Endpoint, Role
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import Tensor
from keras_cut.model.opening import open_model
from keras_cut.model.safety import BROKEN, UNLOADABLE, UNSAFE, Finding, FindingKind, find_hazards

Progress = Callable[[str], None]


@dataclass
class CutResult:
    output: str
    format: str
    inputs: list[Endpoint]
    outputs: list[Endpoint]
    layers: list[str]  # parent layer paths kept
    dropped: list[str]  # parent layer paths left out
    params: int
    trainable_params: int
    frozen: bool
    size_bytes: int
    notices: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)  # what loading the submodel will need
    verify: Any = None  # the VerifyReport of `cut --verify`
    cost: Cost = field(default_factory=Cost)  # per sample: what the submodel computes
    parent_cost: Cost = field(default_factory=Cost)  # and what the whole parent computes

    def macs_share(self) -> float | None:
        return share(self.cost.macs, self.cost.macs_known, self.parent_cost.macs,
                     self.parent_cost.macs_known)

    def memory_share(self) -> float | None:
        return share(self.cost.activation_bytes, self.cost.activation_known,
                     self.parent_cost.activation_bytes, self.parent_cost.activation_known)

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "output": self.output,
            "format": self.format,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "layers": self.layers,
            "dropped": self.dropped,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "frozen": self.frozen,
            "size_bytes": self.size_bytes,
            "notices": self.notices,
            "needs": self.needs,
            "macs": self.cost.macs,
            "macs_complete": self.cost.macs_known,
            "parent_macs": self.parent_cost.macs,
            "parent_macs_complete": self.parent_cost.macs_known,
            "macs_share": self.macs_share(),
            "activation_bytes": self.cost.activation_bytes,
            "activation_bytes_complete": self.cost.activation_known,
            "parent_activation_bytes": self.parent_cost.activation_bytes,
            "parent_activation_bytes_complete": self.parent_cost.activation_known,
            "activation_share": self.memory_share(),
        }
        if self.verify is not None:
            doc["verify"] = self.verify.to_dict()
        return doc


def plan_model_cut(
    model: str | Path, output_layers: list[str], input_layers: list[str], whole: bool = False,
    code: str | None = None, unsafe: bool = False,
) -> tuple[Any, Any, CutPlan]:
    """Open the file and plan the cut, without TensorFlow (unless `code` must build a model
    saved as its class, `open_model`); names are checked here."""
    model_file, graph = open_model(model, code, unsafe, "convert" if whole else "cut")
    plan = plan_cut(FlatGraph(graph), list(output_layers), list(input_layers), whole)
    return model_file, graph, plan


def cut_model(
    model: str | Path,
    output: str | Path,
    output_layers: list[str] | tuple[str, ...] = (),
    input_layers: list[str] | tuple[str, ...] = (),
    freeze: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    verify: bool = False,
    unsafe: bool = False,
    custom_objects: str | None = None,
    whole: bool = False,
) -> CutResult:
    """Cut `model` and write the submodel to `output` (.keras or .h5), atomically.

    With `verify`, the file is checked against `model` (`verify_models`, which loads both with
    Keras; `unsafe` and `custom_objects` apply to that loading only) before it is renamed into
    place; if they disagree it is kept beside `output` under the name `result.output` gives."""
    say = progress or (lambda _msg: None)
    model = Path(model)
    model_file, graph, plan = plan_model_cut(model, list(output_layers), list(input_layers),
                                             whole, custom_objects, unsafe)
    if whole:
        _refuse_tf_ops(model, graph)
    output = check_output(output, model, force)
    fmt = FORMATS[output.suffix.lower()]
    kept = plan.kept_paths
    findings = find_hazards(model_file, graph)
    _refuse_broken(model, findings, set(kept))
    # a conversion keeps the model's name; a cut is named after its parent
    sub = build_submodel(plan, graph.name if whole else f"{graph.name}_cut",
                         legacy_parent=model_file.legacy,
                         legacy=model_file.legacy and fmt == "h5", freeze=freeze)
    report = None
    say(f"writing {output}")
    with atomic_output(output) as pending:
        write_submodel(model_file, sub, pending.path, fmt, _record(model, plan, sub, freeze),
                       freeze)
        if verify:
            from keras_cut.verify.verification import verify_models

            report = verify_models(model, pending.path, unsafe=unsafe,
                                   custom_objects=custom_objects, progress=progress,
                                   submodel_label=str(output))
            if not report.passed:
                pending.target = _unverified_name(output)
    written = pending.target
    kept_set = set(kept)
    params, trainable = _params(sub, freeze)
    notices = _notices(plan)
    if whole:
        notices += [f"converted {change.layer or '(model)'}: {change.message}"
                    for change in model_file.legacy_changes]
    elif model_file.legacy and model_file.legacy_changes:
        notices.append(
            f"{model} is a tf.keras 2 file; the submodel's config carries keras-cut's legacy "
            f"normalisation ({len(model_file.legacy_changes)} change(s), see `keras-cut "
            "inspect`)"
        )
    if report is not None and not report.passed:
        notices.append(f"verify found differences; the submodel was kept as {written} for "
                       f"examination, not written to {output}")
    return CutResult(
        output=str(written),
        format=fmt,
        inputs=plan.inputs,
        outputs=written_outputs(plan, sub),
        layers=kept,
        dropped=[
            path for _, layer, _ in graph.walk()
            if (path := layer.path) not in kept_set and not layer.is_input
            and layer.submodel is None
        ],
        params=params,
        trainable_params=trainable,
        frozen=freeze,
        size_bytes=written.stat().st_size,
        notices=notices,
        needs=_needs(findings, kept_set, {layer.path: layer.registered_name or
                                          layer.class_name for _, layer, _ in graph.walk()}),
        verify=report,
        cost=cut_cost(plan),
        parent_cost=flat_cost(plan.flat),
    )


def convert_model(model: str | Path, output: str | Path, force: bool = False,
                  progress: Progress | None = None, verify: bool = False, unsafe: bool = False,
                  custom_objects: str | None = None) -> CutResult:
    """Rewrite the whole model into `output` with the file-level writer: a tf.keras 2 file
    becomes a Keras 3 file carrying every normalisation (listed in the result's notices)."""
    return cut_model(model, output, (), (), force=force, progress=progress, verify=verify,
                     unsafe=unsafe, custom_objects=custom_objects, whole=True)


def _refuse_tf_ops(path: Path, graph: Any) -> None:
    ops = [layer for _, layer, _ in graph.walk() if layer.class_name in known.TF_OP_LAYERS]
    if ops:
        names = ", ".join(layer.path for layer in ops[:3]) + (", ..." if len(ops) > 3 else "")
        raise CutError(
            f"{path}: holds {len(ops)} TensorFlow operation(s) recorded by tf.keras 2 ({names}) "
            "that keras-cut cannot translate to Keras 3 yet, so it cannot convert this file"
        )


def _refuse_broken(path: Path, findings: list[Finding], kept: set[str]) -> None:
    """Arrays that do not fit a kept layer's config would be copied into a broken submodel;
    findings about layers the cut drops do not matter."""
    unbuildable = [f for f in findings if f.kind is FindingKind.CONFIG
                   and f.severity is UNLOADABLE and f.layer in kept]
    if unbuildable:
        where = "; ".join(f"{f.layer!r}: {f.message}" for f in unbuildable[:2])
        raise CutError(f"{path}: the cut keeps a layer that no saved file can hold ({where})")
    # a finding about a nested model counts where the cut keeps any layer inside it
    broken = [f for f in findings if f.severity == BROKEN and f.layer
              and (f.layer in kept or any(k.startswith(f.layer + "/") for k in kept))]
    if broken:
        where = "; ".join(f"{f.layer}: {f.message}" for f in broken[:2])
        raise ModelFileError(
            f"{path}: the weights of kept layers do not match the architecture ({where}); the file "
            "is damaged or mixes two models"
        )


def _needs(findings: list[Finding], kept: set[str], classes: dict[str, str]) -> list[str]:
    """What loading the submodel will need: for each package, the kept layers that need it
    (`classes`: path -> class, as named to users); for anything else, each layer."""
    needs = []
    by_package: dict[str, list[str]] = {}
    for f in findings:
        if f.layer not in kept:
            continue
        if f.severity == UNLOADABLE and f.needs:
            layers = by_package.setdefault(f.needs, [])
            if f.layer not in layers:
                layers.append(f.layer)
            continue
        if f.severity == UNSAFE:
            needs.append(f"kept layer {f.layer!r} ({f.message}): loading the submodel needs "
                         "safe_mode=False (keras-cut --unsafe)")
        elif f.kind is FindingKind.TF_OP:
            needs.append(f"kept layer {f.layer!r} ({f.message}): loading the submodel needs "
                         "tf.keras 2 (tf_keras)")
        elif f.severity == UNLOADABLE:
            needs.append(f"kept layer {f.layer!r} ({f.message}): loading the submodel needs "
                         "that code (custom_objects; keras-cut --custom-objects)")
    for package, layers in by_package.items():
        shown = ", ".join(f"{p!r} ({classes.get(p, '?')})" for p in layers[:3]) + (
            f" and {len(layers) - 3} more" if len(layers) > 3 else "")
        needs.append(f"loading the submodel needs {package} (import it before "
                     f"keras.saving.load_model; keras-cut --custom-objects {package}): kept "
                     f"layer(s) {shown} use its classes or functions")
    return needs


def _params(sub: Submodel, freeze: bool) -> tuple[int, int]:
    layers = [layer.source for layer in sub.layers if layer.source is not None]
    params = sum(layer.params for layer in layers)
    trainable = 0 if freeze else sum(layer.trainable_params for layer in layers)
    return params, trainable


def _unverified_name(output: Path) -> Path:
    candidate = output.with_name(f"{output.stem}.unverified{output.suffix}")
    n = 1
    while candidate.exists():
        candidate = output.with_name(f"{output.stem}.unverified-{n}{output.suffix}")
        n += 1
    return candidate


def written_outputs(plan: CutPlan, sub: Submodel) -> list[Endpoint]:
    """The plan's outputs named as the submodel names them: the layer each output is (a nested
    model kept whole, not the inner layer that computes it)."""
    return [replace(p, name=ref[0]) for p, ref in zip(plan.outputs, sub.outputs, strict=True)]


def _mask_sources(plan: CutPlan, tensor: Any) -> list[str]:
    """Layers before `tensor` that make a Keras mask (Embedding(mask_zero=True), Masking)."""
    flat, found, seen = plan.flat, [], set()
    stack = [tensor.node]
    while stack:
        node = stack.pop()
        if node in seen or node not in flat.position:
            continue
        seen.add(node)
        layer = flat.layer(node)
        if known.makes_mask(layer.class_name, layer.config):
            found.append(flat.label(node))
        stack.extend(t.node for t in flat.inputs_of(node))
    return found


def _notices(plan: CutPlan) -> list[str]:
    notes = []
    for p in plan.inputs:
        if p.role in (Role.CUT_INPUT, Role.CROSSING):
            sources = _mask_sources(plan, p.parent)
            if sources:
                notes.append(
                    f"a mask from {', '.join(repr(s) for s in sources[:2])} may reach "
                    f"{p.source!r} in the parent, but the submodel's input {p.name!r} carries "
                    "none: padded positions are computed as if they were real (verify compares "
                    "them; feed the mask yourself if the layers after the cut use it)"
                )
    for p in plan.inputs:
        if p.role is Role.CROSSING:
            notes.append(
                f"added input {p.name!r}: the output of {p.source!r} crosses the cut "
                "(a skip connection or branch from before it is still needed)"
            )
    for path, name in plan.renames.items():
        notes.append(f"layer {path!r} is named {name!r} in the submodel (its name was taken)")
    return notes


def _record(model: Path, plan: CutPlan, sub: Submodel, freeze: bool) -> dict[str, Any]:
    # No checksum of the parent: hashing a 1 GB file would cost more than the cut itself.
    return {
        "tool": "keras-cut",
        "parent": {"file": model.name, "bytes": model.stat().st_size},
        "inputs": [p.record() for p in plan.inputs],
        "outputs": [p.record() for p in written_outputs(plan, sub)],
        "renamed": plan.renames,
        "layers": plan.layer_sources,
        "frozen": freeze,
    }


def cut_cost(plan: CutPlan) -> Cost:
    """The cost of what a cut keeps: its kept calls (a nested model kept whole: all of its
    calls), fed by the submodel's inputs."""
    nodes: list[CallAddress] = []
    for step in plan.steps:
        if isinstance(step, ModelCall):
            inner = step.context + ((step.layer, step.call),)
            nodes += [n for n in plan.flat.nodes if n.context[: len(inner)] == inner]
        else:
            nodes.append(step)
    inputs = [(p.name, Tensor(p.shape, p.dtype)) for p in plan.inputs]
    return flat_cost(plan.flat, nodes, inputs)
