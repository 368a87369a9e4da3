"""`cut`: save a submodel of a saved model — prefix, head, segment, at any nesting depth."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import provenance
from .cutplan import CROSSING, CutPlan, PlannedTensor, plan_cut
from .errors import LoadError, ModelFileError, UnsafeModelError
from .flatgraph import FlatGraph
from .inspection import open_model
from .safety import BROKEN, UNLOADABLE, UNSAFE, Finding, find_hazards
from .shapes import Shape
from .writing import FORMATS, atomic_output, check_output

Progress = Callable[[str], None]


@dataclass
class CutTensor:
    name: str
    shape: Shape | None
    dtype: str | None
    source: str  # the parent layer (path, `@N` call) it corresponds to
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": None if self.shape is None else list(self.shape),
                "dtype": self.dtype, "source": self.source, "kind": self.kind}


@dataclass
class CutResult:
    output: str
    format: str
    inputs: list[CutTensor]
    outputs: list[CutTensor]
    layers: list[str]  # parent layer paths kept
    dropped: list[str]  # parent layer paths left out
    params: int
    trainable_params: int
    frozen: bool
    size_bytes: int
    notices: list[str] = field(default_factory=list)
    # In-process handles for `cut --verify` (not part of the result's data).
    parent_model: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
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
        }


def plan_model_cut(
    model: str | Path, output_layers: list[str], input_layers: list[str]
) -> tuple[Any, Any, CutPlan]:
    """Open the file and plan the cut, without TensorFlow; names are checked here."""
    model_file, graph = open_model(model)
    plan = plan_cut(FlatGraph(graph), list(output_layers), list(input_layers))
    return model_file, graph, plan


def check_loadable(path: Path, findings: list[Finding], unsafe: bool, custom: bool) -> None:
    """Refuse before loading what would run code (without --unsafe), needs missing code, or
    holds weights that do not fit its config."""
    broken = [f for f in findings if f.severity == BROKEN]
    if broken:
        where = "; ".join(f"{f.layer}: {f.message}" for f in broken[:2])
        raise ModelFileError(
            f"{path}: the weights do not match the architecture ({where}); the file is damaged "
            "or mixes two models"
        )
    blocked = [f for f in findings if f.severity == UNSAFE]
    if blocked and not unsafe:
        where = "; ".join(f"{f.layer or '(file)'}: {f.message}" for f in blocked[:3])
        raise UnsafeModelError(
            f"{path}: refusing to load, it would run code or read other files ({where}); "
            "pass --unsafe only if you trust where this file came from"
        )
    missing = [f for f in findings if f.severity == UNLOADABLE]
    if missing and not custom:
        where = "; ".join(f"{f.layer}: {f.message}" for f in missing[:3])
        raise LoadError(
            f"{path}: needs code that is not in the file ({where}); pass --custom-objects "
            "FILE.py or MODULE that defines it"
        )


def cut_model(
    model: str | Path,
    output: str | Path,
    output_layers: list[str] | tuple[str, ...] = (),
    input_layers: list[str] | tuple[str, ...] = (),
    freeze: bool = False,
    force: bool = False,
    unsafe: bool = False,
    custom_objects: str | None = None,
    progress: Progress | None = None,
    keep_parent: bool = False,
) -> CutResult:
    """Cut `model` and save the submodel to `output` (.keras or .h5), atomically.

    Only the layers the submodel keeps are built and only their weights read, unless
    `keep_parent` (for `cut --verify`, which needs the whole parent loaded by Keras anyway)."""
    say = progress or (lambda _msg: None)
    model = Path(model)
    model_file, graph, plan = plan_model_cut(model, list(output_layers), list(input_layers))
    output = check_output(output, model, force)
    findings = find_hazards(model_file, graph)
    check_loadable(model, findings, unsafe, custom=bool(custom_objects))

    from . import runtime  # TensorFlow from here on

    custom = runtime.load_custom_objects(custom_objects)
    fmt = FORMATS[output.suffix.lower()]
    parent, load_note = None, None
    if keep_parent or not runtime.can_build_partially(plan):
        say("loading TensorFlow and the whole model")
        parent, load_note = runtime.load_parent(model_file, unsafe=unsafe, custom_objects=custom)
        renames = runtime.renamed_layers(parent, plan.renames)
    else:
        say("loading TensorFlow and the layers the submodel keeps")
        renames = contextlib.nullcontext()
    with renames:
        if parent is not None:
            submodel = runtime.build_submodel(parent, plan, name=f"{graph.name}_cut")
        else:
            submodel = runtime.build_partial(model_file, plan, f"{graph.name}_cut", unsafe, custom)
        if freeze:
            submodel.trainable = False
            for layer in submodel.layers:
                layer.trainable = False
        say(f"saving {output}")
        with atomic_output(output) as tmp, runtime.streaming_save():
            submodel.save(tmp)
            provenance.write(tmp, fmt, _record(model, plan, freeze))
    params, trainable = runtime.count_params(submodel)
    kept = plan.kept_paths
    kept_set = set(kept)
    return CutResult(
        output=str(output),
        format=fmt,
        inputs=[_cut_tensor(p) for p in plan.inputs],
        outputs=[_cut_tensor(p) for p in plan.outputs],
        layers=kept,
        dropped=[
            path for _, layer, _ in graph.walk()
            if (path := layer.path) not in kept_set and not layer.is_input
            and layer.submodel is None
        ],
        params=params,
        trainable_params=trainable,
        frozen=freeze,
        size_bytes=output.stat().st_size,
        notices=_notices(plan) + ([load_note] if load_note else []),
        parent_model=parent,
    )


def _cut_tensor(p: PlannedTensor) -> CutTensor:
    return CutTensor(p.name, p.shape, p.dtype, p.source, p.kind)


def _notices(plan: CutPlan) -> list[str]:
    notes = []
    for p in plan.inputs:
        if p.kind == CROSSING:
            notes.append(
                f"added input {p.name!r}: the output of {p.source!r} crosses the cut "
                "(a skip connection or branch from before it is still needed)"
            )
    for path, name in plan.renames.items():
        notes.append(f"layer {path!r} is named {name!r} in the submodel (its name was taken)")
    return notes


def _record(model: Path, plan: CutPlan, freeze: bool) -> dict[str, Any]:
    # No checksum of the parent: hashing a 1 GB file would cost more than the cut itself.
    return {
        "tool": "keras-cut",
        "parent": {"file": model.name, "bytes": model.stat().st_size},
        "inputs": [{"name": p.name, "source": p.source, "kind": p.kind} for p in plan.inputs],
        "outputs": [{"name": p.name, "source": p.source} for p in plan.outputs],
        "renamed": plan.renames,
        "frozen": freeze,
    }
