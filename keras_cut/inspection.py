"""`inspect`: what a saved model holds, from the file alone (no TensorFlow)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .classmodel import (
    ClassModelReport,
    FileHeader,
    inspect_class_model,
    is_class_model,
    needs_code_error,
    nested_class_models,
)
from .costs import Cost, flat_cost, layer_call_costs
from .errors import UsageError
from .flatgraph import FlatGraph
from .graph import Layer, LayerGraph, TensorRef, build_graph
from .jsonvalues import as_dict
from .modelfile import ModelFile, read_model_file
from .safety import Finding, find_hazards
from .shapes import Shape


@dataclass
class TensorInfo:
    name: str
    shape: Shape | None
    dtype: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": _shape_list(self.shape), "dtype": self.dtype}


@dataclass
class LayerRow:
    name: str  # the path, as `cut` accepts it
    class_name: str
    depth: int
    output_shapes: list[list[Shape | None]]  # per call, per output tensor
    params: int
    trainable_params: int
    trainable: bool
    inbound: list[list[str]]  # per call, the tensors it takes ("conv1", "shared@1")
    is_model: bool
    macs: list[int | None] = field(default_factory=list)  # per call, per sample; None: unknown
    activation_bytes: list[int | None] = field(default_factory=list)  # per call, per sample
    runs: int = 1  # how often its model runs per sample (a nested model called twice: 2)

    @property
    def output_shape(self) -> Any:
        """Keras-style: one shape, a list for several outputs, a list per call if they differ."""
        per_call = [_one_or_list(shapes) for shapes in self.output_shapes]
        if not per_call:
            return None
        return per_call[0] if all(p == per_call[0] for p in per_call) else per_call

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class_name": self.class_name,
            "output_shape": _jsonable(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "trainable": self.trainable,
            "inbound": [ref for call in self.inbound for ref in call],
            "calls": len(self.output_shapes),
            "depth": self.depth,
            "macs": _total(self.macs, self.runs),
            "macs_per_call": self.macs,
            "activation_bytes": _total(self.activation_bytes, self.runs),
            "activation_bytes_per_call": self.activation_bytes,
            "runs": self.runs,
        }


@dataclass
class InspectReport(FileHeader):
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    weight_bytes: int
    findings: list[Finding] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    built_from: Any = None  # backend.materialize.BuiltFrom: the graph was built by code

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.header_dict(),
            "layer_graph": True,  # false: a model saved as its class, read without its code
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "layers": [row.to_dict() for row in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "weight_bytes": self.weight_bytes,
            "total_macs": self.cost.macs,
            "total_macs_complete": self.cost.macs_known,
            "activation_bytes": self.cost.activation_bytes,
            "activation_bytes_complete": self.cost.activation_known,
            "largest_activation": self.cost.to_dict()["largest_activation"],
            "unknown_cost_layers": self.cost.unknown,
            "findings": [f.to_dict() for f in self.findings],
            "built_from": self.built_from.to_dict() if self.built_from else None,
        }


@dataclass
class WeightDetail:
    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    min: float | None
    max: float | None
    mean: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, shape=list(self.shape))


@dataclass
class LayerDetail:
    row: LayerRow
    config: dict[str, Any]
    weights: list[WeightDetail]
    findings: list[Finding]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.row.to_dict(),
            "config": self.config,
            "weights": [w.to_dict() for w in self.weights],
            "findings": [f.to_dict() for f in self.findings],
        }


def open_model(path: str | Path, code: str | None = None, unsafe: bool = False,
               what: str = "see the layers of") -> tuple[ModelFile, LayerGraph]:
    """Read a model file and build its graph; the one way every command opens a file.

    A model saved as its class (a keras_hub backbone) has no graph in the file: with `code`
    (`--custom-objects`, the user's opt-in to running it) it is built and its functional
    graph read instead (`backend.materialize`); without, the error says so (`what` the
    command wanted to do)."""
    return graph_of(read_model_file(path), code, unsafe, what)


def graph_of(model_file: ModelFile, code: str | None = None, unsafe: bool = False,
             what: str = "see the layers of") -> tuple[ModelFile, LayerGraph]:
    """`open_model` for a file already read."""
    if is_class_model(model_file):
        if not code:
            raise needs_code_error(model_file, what)
        return _built_from_code(model_file, code, unsafe)
    graph = build_graph(model_file)
    if code and nested_class_models(model_file, graph):
        return _built_from_code(model_file, code, unsafe, graph)
    return model_file, graph


def _built_from_code(model_file: ModelFile, code: str, unsafe: bool,
                     graph: LayerGraph | None = None) -> tuple[ModelFile, LayerGraph]:
    from .backend import materialize
    from .safety import UNSAFE, check_loadable, config_findings

    # building runs the model's code: what would run code from the file needs --unsafe first
    config = model_file.config
    inner = as_dict(config.get("config"))
    found = find_hazards(model_file, graph) if graph is not None else \
        list(config_findings("", inner))
    check_loadable(model_file.path, [f for f in found if f.severity == UNSAFE], unsafe, True)
    registered = config.get("registered_name")
    storage, built_from = materialize.functional_copy(
        model_file.path, str(config.get("class_name")),
        registered if isinstance(registered, str) else None, code, unsafe)
    built = read_model_file(storage)
    built.path, built.storage, built.built_from = model_file.path, storage, built_from
    built.date_saved, built.keras_version = model_file.date_saved, model_file.keras_version
    built.format = model_file.format
    return built, build_graph(built)


def inspect_model(
    path: str | Path, depth: int | None = None, filter: str | None = None,
    code: str | None = None, unsafe: bool = False,
) -> InspectReport | ClassModelReport:
    """Describe the model at `path`: header, layers (nested to `depth`), params, findings.

    A model saved as its class (a keras_hub backbone) is described from the file alone
    (`ClassModelReport`) unless `code` builds its graph (`open_model`)."""
    model_file = read_model_file(path)
    if is_class_model(model_file) and not code:
        if filter is not None:
            raise needs_code_error(model_file, "filter the layers of")
        return inspect_class_model(model_file)
    model_file, graph = graph_of(model_file, code, unsafe)
    pattern = compile_filter(filter)
    runs = {id(graph): 1}  # how often each (nested) model runs per sample
    for _, layer, owner in graph.walk():
        if layer.submodel is not None:
            runs[id(layer.submodel)] = runs.get(id(layer.submodel), 0) + \
                runs[id(owner)] * len(layer.calls)
    rows = [
        _row(graph_of, layer, d, runs.get(id(graph_of), 1))
        for d, layer, graph_of in graph.walk(depth)
        if pattern is None or pattern.search(layer.path) or pattern.search(layer.class_name)
    ]
    if pattern is not None and not rows:
        raise UsageError(f"--filter {filter!r} matches no layer (it is searched in layer paths "
                         "and class names)")
    return InspectReport(
        file=str(model_file.path),
        format=model_file.format,
        keras_version=model_file.keras_version,
        date_saved=model_file.date_saved,
        name=graph.name,
        class_name=graph.class_name,
        inputs=[_tensor_info(graph, ref) for ref in graph.inputs],
        outputs=[_tensor_info(graph, ref) for ref in graph.outputs],
        layers=rows,
        total_params=graph.params,
        trainable_params=graph.trainable_params,
        weight_bytes=graph.weight_bytes,
        findings=find_hazards(model_file, graph),
        cost=flat_cost(FlatGraph(graph)),
        built_from=model_file.built_from,
    )


def inspect_layer(path: str | Path, spec: str, code: str | None = None,
                  unsafe: bool = False) -> LayerDetail:
    """One layer in detail: config, weights with value statistics, findings."""
    import numpy as np

    model_file, graph = open_model(path, code, unsafe, "show a layer of")
    layer, _ = graph.find(spec)
    depth, owner = next((d, g) for d, candidate, g in graph.walk() if candidate is layer)
    weights = []
    if layer.weights:
        with model_file.open_weights() as h5:
            for w in layer.weights:
                value = np.asarray(model_file.read_weight(h5, w.entry), dtype=np.float64)
                empty = value.size == 0
                weights.append(
                    WeightDetail(
                        w.name, w.shape, w.dtype, w.trainable and layer.trainable,
                        None if empty else float(value.min()),
                        None if empty else float(value.max()),
                        None if empty else float(value.mean()),
                    )
                )
    findings = [f for f in find_hazards(model_file, graph) if f.layer == layer.path]
    return LayerDetail(_row(owner, layer, depth), layer.config, weights, findings)


def _row(graph: LayerGraph, layer: Layer, depth: int, runs: int = 1) -> LayerRow:
    macs, activation = layer_call_costs(graph, layer)
    if layer.is_input and depth > 0:  # a nested model's input: the caller's tensor, not a copy
        activation = [0] * len(activation)
    return LayerRow(
        name=layer.path,
        class_name=layer.class_name,
        depth=depth,
        output_shapes=[[t.shape for t in call.outputs] for call in layer.calls],
        params=layer.params,
        trainable_params=layer.trainable_params,
        trainable=layer.trainable,
        inbound=[[ref_label(graph, ref) for ref in call.inputs] for call in layer.calls],
        is_model=layer.submodel is not None,
        macs=macs,
        activation_bytes=activation,
        runs=runs,
    )


def ref_label(graph: LayerGraph, ref: TensorRef) -> str:
    """How a tensor is named to users: its layer's path, `@N` if that layer has several calls."""
    producer = graph.by_name[ref.layer]
    label = producer.path
    if len(producer.calls) > 1:
        label += f"@{ref.call}"
    if ref.index:
        label += f"[{ref.index}]"
    return label


def _tensor_info(graph: LayerGraph, ref: TensorRef) -> TensorInfo:
    tensor = graph.tensor(ref)
    return TensorInfo(ref_label(graph, ref), tensor.shape, tensor.dtype)


def compile_filter(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--filter {pattern!r} is not a valid regular expression ({exc})") from exc


def _total(values: list[int | None], runs: int = 1) -> int | None:
    """All calls, each time its model runs."""
    if not values or None in values:
        return None
    return runs * sum(values)  # type: ignore[arg-type]


def _one_or_list(shapes: list[Shape | None]) -> Any:
    return shapes[0] if len(shapes) == 1 else shapes


def _shape_list(shape: Shape | None) -> list[int | None] | None:
    return None if shape is None else list(shape)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
