"""The layer graph of a saved model, built from its config and weight index without Keras.

A `LayerGraph` holds one Functional or Sequential model: its layers, each layer's calls (Keras
"nodes"), the tensors between them (shape, dtype) and its inputs/outputs. A layer that is itself
a model carries its own `LayerGraph`. Layers are addressed by path (`backbone/block_13_expand`)
and a call of a layer used more than once by `NAME@N` (N counts from 0).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from keras_cut.core.address import TensorAddress
from keras_cut.core.errors import LayerNameError, ModelFileError, Option, Part
from keras_cut.core.jsonvalues import as_dict
from keras_cut.core.packages import package_of
from keras_cut.file.modelfile import (
    ModelFile,
    NestedKey,
    WeightEntry,
    is_model_config,
    layer_name,
    model_layer_configs,
)
from keras_cut.layers.known import infer_output_shapes, name_weights
from keras_cut.layers.shapes import Shape
from keras_cut.layers.tfops import is_constant_entry
from keras_cut.model.names import LayerName, NameSyntaxError, Segment, escape, parse_name

MODEL_CLASSES = {"Functional", "Sequential", "Model"}


@dataclass
class Tensor:
    shape: Shape | None
    dtype: str | None


@dataclass
class Call:
    """One call of a layer: the tensors it consumed and the ones it produced."""

    index: int
    inputs: list[TensorAddress]
    outputs: list[Tensor] = field(default_factory=list)
    # The serialized call as the file has it (Keras 3 {"args", "kwargs"} or a legacy list),
    # replayed by `cut`; None for Sequential layers, which are called on the previous output.
    data: Any = None


@dataclass
class Weight:
    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    entry: WeightEntry

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def nbytes(self) -> int:
        return self.entry.nbytes


@dataclass
class Layer:
    name: str
    path: str
    class_name: str
    module: str | None
    registered_name: str | None
    config: dict[str, Any]  # the layer's own config (the "config" of its serialized form)
    trainable: bool  # effective: False when the layer or any model around it is frozen
    calls: list[Call] = field(default_factory=list)
    weights: list[Weight] = field(default_factory=list)
    submodel: LayerGraph | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the serialized layer

    @property
    def params(self) -> int:
        own = sum(w.size for w in self.weights)
        return own + (self.submodel.params if self.submodel else 0)

    @property
    def trainable_params(self) -> int:
        own = sum(w.size for w in self.weights if w.trainable and self.trainable)
        return own + (self.submodel.trainable_params if self.submodel else 0)

    @property
    def weight_bytes(self) -> int:
        own = sum(w.nbytes for w in self.weights)
        return own + (self.submodel.weight_bytes if self.submodel else 0)

    @property
    def is_input(self) -> bool:
        return self.class_name == "InputLayer"


@dataclass
class LayerGraph:
    name: str
    class_name: str
    prefix: str  # "" for the top model, "backbone/" inside a nested model
    layers: list[Layer]
    inputs: list[TensorAddress]
    outputs: list[TensorAddress]
    order: list[tuple[str, int]]  # every (layer, call) in an order where producers come first
    output_keys: list[str] | None = None  # a dict of outputs: its keys, in `outputs`' order
    input_keys: list[str] | None = None  # a dict of inputs: its keys, in `inputs`' order

    def __post_init__(self) -> None:
        self.by_name = {layer.name: layer for layer in self.layers}

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    def tensor(self, ref: TensorAddress) -> Tensor:
        call = self.by_name[ref.layer].calls[ref.call]
        return call.outputs[ref.index] if ref.index < len(call.outputs) else Tensor(None, None)

    def walk(
        self, max_depth: int | None = None, depth: int = 0
    ) -> Iterator[tuple[int, Layer, LayerGraph]]:
        """Every layer, nested ones right after their model: (depth, layer, owning graph)."""
        for layer in self.layers:
            yield depth, layer, self
            if layer.submodel is not None and (max_depth is None or depth < max_depth):
                yield from layer.submodel.walk(max_depth, depth + 1)

    def all_paths(self) -> list[str]:
        return [layer.path for _, layer, _ in self.walk()]

    def find(self, spec: str) -> tuple[Layer, int | None]:
        """The layer at `spec` ("backbone/conv1", "shared@1") and the call chosen, if any."""
        name = parse_layer_spec(spec)
        found: list[tuple[Layer, int | None, bool]] = []
        self._find(name.segments, found)
        if not found:
            raise LayerNameError(*self._why_not_found(spec, name), layer=spec)
        # `NAME@N` as a call of NAME first, else as a layer named "NAME@N" (`NAME\@N` always)
        valid = [f for f in found if f[1] is None or 0 <= f[1] < max(len(f[0].calls), 1)]
        layer, call, _ = (valid or found)[0]
        if call is not None and not 0 <= call < max(len(layer.calls), 1):
            raise LayerNameError(
                f"layer {layer.path!r} is called {len(layer.calls)} time(s); "
                f"{spec!r} asks for call {call} (calls count from 0)"
            )
        return layer, call

    def _find(self, segments: tuple[Segment, ...],
              found: list[tuple[Layer, int | None, bool]]) -> None:
        """Every reading of `segments`: `NAME@N` as a call, or as a name containing `@N`."""
        first, rest = segments[0], segments[1:]
        for name, call in first.readings():
            layer = self.by_name.get(name)
            if layer is None:
                continue
            if not rest:
                found.append((layer, call, name == first.literal))
            elif layer.submodel is not None:
                layer.submodel._find(rest, found)

    def why_not_found(self, spec: str) -> tuple[Part, ...]:
        """One line for a name that is not in the model, with what the user may have meant."""
        return self._why_not_found(spec, parse_layer_spec(spec))

    def _why_not_found(self, spec: str, name: LayerName) -> tuple[Part, ...]:
        graph: LayerGraph = self
        for segment in name.segments[:-1]:
            layer = graph.by_name.get(segment.name) or graph.by_name.get(segment.literal or "")
            if layer is None:
                break
            if layer.submodel is None:
                package = package_of(layer.module, layer.registered_name)
                if package and package != "keras":
                    return (f"layer {layer.path!r} is a {layer.class_name} from {package}, whose "
                            "layers exist only when its code runs: to reach inside it, pass ",
                            Option.CUSTOM_OBJECTS, f" {package} (this runs that code)")
                return (f"layer {layer.path!r} is a {layer.class_name}, not a nested model, so "
                        f"{spec!r} does not exist; see `keras-cut inspect`",)
            graph = layer.submodel
        return (unknown_layer_message(spec, self.all_paths()),)


def parse_layer_spec(spec: str, option: Part = "the layer name") -> LayerName:
    """Parse a layer name as typed (`names`); a malformed one is a LayerNameError."""
    try:
        return parse_name(spec)
    except NameSyntaxError as exc:
        raise LayerNameError(option, f": {exc}", layer=spec) from None


def close_matches(path: str, paths: list[str]) -> list[str]:
    """Paths a user may have meant: the same name at another depth first, then look-alikes."""
    leaf = path.rsplit("/", 1)[-1]
    by_leaf: dict[str, list[str]] = {}
    for p in paths:
        by_leaf.setdefault(p.rsplit("/", 1)[-1], []).append(p)
    found = [p for p in by_leaf.get(leaf, []) if p != path]
    import difflib  # only for a name that is not there

    candidates = difflib.get_close_matches(path, paths, n=3, cutoff=0.6)
    for near in difflib.get_close_matches(leaf, list(by_leaf), n=3, cutoff=0.6):
        candidates += by_leaf[near]
    for p in candidates:
        if p not in found:
            found.append(p)
    return found[:4]


def unknown_layer_message(spec: str, paths: list[str], prefix: str = "") -> str:
    """One line for a name the model does not have, with what the user may have meant (never
    the name itself)."""
    name = parse_layer_spec(spec)
    path = "/".join(escape(s.name) for s in name.segments)
    if path in paths and name.segments[-1].call is not None:
        return (f"{prefix}layer {path!r} has no call {name.segments[-1].call} "
                "(calls count from 0; `keras-cut inspect` lists them)")
    close = [c for c in close_matches(path, paths) if c not in (spec.strip(), path)]
    quoted = ", ".join("'" + c + "'" for c in close)  # as typed: no repr() doubling of `\\`
    hint = f"; did you mean {quoted}?" if close else ""
    return f"{prefix}no layer {path!r} in the model{hint} (see `keras-cut inspect`)"


# --- building -----------------------------------------------------------------------------------


def build_graph(model_file: ModelFile) -> LayerGraph:
    """The layer graph of a model file; raise ModelFileError if the config is not a model."""
    config = model_file.config
    if not is_model_config(config):
        raise ModelFileError(
            f"{model_file.path}: the top-level object is a {config.get('class_name')!r}, not a "
            "Functional or Sequential model; keras-cut cannot see inside subclassed models"
        )
    return _Builder(model_file).build(config, prefix="", key=(), parent_trainable=True)


class _Builder:
    def __init__(self, model_file: ModelFile):
        self.file = model_file
        self.where = str(model_file.path)

    def fail(self, message: str) -> ModelFileError:
        return ModelFileError(f"{self.where}: {message}")

    def build(
        self, config: dict[str, Any], prefix: str, key: NestedKey, parent_trainable: bool
    ) -> LayerGraph:
        inner = as_dict(config.get("config"))
        name = str(inner.get("name") or layer_name(config) or "model")
        trainable = parent_trainable and inner.get("trainable", True) is not False
        layer_configs = model_layer_configs(config)
        layers: list[Layer] = []
        seen: set[str] = set()
        for raw in layer_configs:
            lname = layer_name(raw)
            if not lname:
                raise self.fail(f"a layer of model {name!r} has no name")
            if lname in seen:
                raise self.fail(f"model {name!r} has two layers named {lname!r}")
            seen.add(lname)
            layers.append(self._layer(raw, lname, prefix, key, trainable))
        if config.get("class_name") == "Sequential":
            inputs, outputs = self._chain_sequential(name, layers, inner)
        else:
            self._read_calls(name, layers, layer_configs)
            inputs = self._endpoints(name, inner.get("input_layers"), layers, "input")
            outputs = self._endpoints(name, inner.get("output_layers"), layers, "output")
        graph = LayerGraph(
            name=name,
            class_name=str(config.get("class_name")),
            prefix=prefix,
            layers=layers,
            inputs=inputs,
            outputs=outputs,
            order=[],
        )
        graph.order = self._toposort(graph)
        declared = inner.get("output_layers") if isinstance(inner, dict) else None
        if isinstance(declared, dict) and len(declared) == len(outputs):
            graph.output_keys = sorted(declared)  # the order `_endpoints` flattened them in
        declared = inner.get("input_layers") if isinstance(inner, dict) else None
        if isinstance(declared, dict) and len(declared) == len(inputs):
            graph.input_keys = sorted(declared)
        self._fill_tensors(graph, layer_configs)
        return graph

    def _layer(
        self, raw: dict[str, Any], lname: str, prefix: str, key: NestedKey, parent_trainable: bool
    ) -> Layer:
        inner = as_dict(raw.get("config"))
        class_name = str(raw.get("class_name") or "?")
        trainable = parent_trainable and inner.get("trainable", True) is not False
        layer = Layer(
            name=lname,
            path=prefix + escape(lname),
            class_name=class_name,
            module=raw.get("module") if isinstance(raw.get("module"), str) else None,
            registered_name=raw.get("registered_name")
            if isinstance(raw.get("registered_name"), str)
            else None,
            config=inner,
            trainable=trainable,
            raw=raw,
        )
        entries = self.file.weights.get(key + (lname,), [])
        specs = name_weights(class_name, inner, [e.name for e in entries])
        layer.weights = [
            Weight(spec_name, e.shape, e.dtype, spec_trainable, e)
            for (spec_name, spec_trainable), e in zip(specs, entries, strict=False)
        ]
        if is_model_config(raw):
            layer.submodel = self.build(raw, prefix + escape(lname) + "/", key + (lname,),
                                        trainable)
        return layer

    def _read_calls(
        self, model: str, layers: list[Layer], layer_configs: list[dict[str, Any]]
    ) -> None:
        by_name = {layer.name: layer for layer in layers}
        for layer, raw in zip(layers, layer_configs, strict=True):
            nodes = raw.get("inbound_nodes") or []
            if not isinstance(nodes, list):
                raise self.fail(f"layer {layer.path!r} has malformed inbound_nodes")
            for i, node in enumerate(nodes):
                refs = _node_inputs(node)
                if refs is None:
                    raise self.fail(f"layer {layer.path!r} has a malformed call (node {i})")
                for ref in refs:
                    producer = by_name.get(ref.layer)
                    if producer is None:
                        raise self.fail(
                            f"layer {layer.path!r} takes its input from {ref.layer!r}, which "
                            f"model {model!r} does not have; the config is damaged"
                        )
                layer.calls.append(Call(index=i, inputs=refs, data=node))
        for layer in layers:
            if layer.is_input and not layer.calls:
                layer.calls.append(Call(index=0, inputs=[]))
        for layer in layers:
            for call in layer.calls:
                for ref in call.inputs:
                    producer = by_name[ref.layer]
                    if ref.call >= len(producer.calls):
                        raise self.fail(
                            f"layer {layer.path!r} uses call {ref.call} of {producer.path!r}, "
                            f"which is called {len(producer.calls)} time(s); the config is damaged"
                        )

    def _chain_sequential(
        self, name: str, layers: list[Layer], inner: dict[str, Any]
    ) -> tuple[list[TensorAddress], list[TensorAddress]]:
        if not layers:
            raise self.fail(f"Sequential model {name!r} has no layers")
        if not layers[0].is_input:
            shape = inner.get("build_input_shape")
            first = layers[0].config
            shape = shape or first.get("batch_input_shape") or first.get("batch_shape")
            if shape is None:
                raise self.fail(
                    f"Sequential model {name!r} was never built (no input shape recorded), so "
                    "it has no graph to cut; build it on an input and save it again"
                )
            synthetic = Layer(
                name=f"{name}_input",
                path=layers[0].path.rsplit("/", 1)[0] + "/" + f"{name}_input"
                if "/" in layers[0].path
                else f"{name}_input",
                class_name="InputLayer",
                module="keras.layers",
                registered_name=None,
                config={"batch_shape": shape, "dtype": _policy_dtype(first) or "float32"},
                trainable=True,
            )
            layers.insert(0, synthetic)
        layers[0].calls = [Call(index=0, inputs=[])]
        for prev, layer in itertools.pairwise(layers):
            layer.calls = [Call(index=0, inputs=[TensorAddress((), prev.name)])]
        return [TensorAddress((), layers[0].name)], [TensorAddress((), layers[-1].name)]

    def _endpoints(
        self, model: str, value: Any, layers: list[Layer], what: str
    ) -> list[TensorAddress]:
        by_name = {layer.name: layer for layer in layers}
        if isinstance(value, dict):
            # Keras flattens a dict of inputs/outputs by sorted key (keras.tree.flatten), and a
            # call's output index counts in that order, not in the config's.
            value = [value[key] for key in sorted(value)]
        if not isinstance(value, list) or not value:
            raise self.fail(f"model {model!r} lists no {what}s")
        if len(value) == 3 and isinstance(value[0], str):
            value = [value]  # a single endpoint written flat: ["name", 0, 0]
        refs = []
        for item in value:
            ref = parse_history(item)
            if ref is None:
                raise self.fail(f"model {model!r} has a malformed {what} entry {item!r}")
            layer = by_name.get(ref.layer)
            if layer is None:
                raise self.fail(
                    f"model {model!r} names {ref.layer!r} as an {what}, but has no such layer"
                )
            if ref.call >= 1 and not self.file.legacy and _starts_with_own_node(layer):
                # Keras 3 numbers a nested Functional model's calls from 1 here (its
                # construction is node 0), though from 0 in inbound_nodes
                # (keras/src/models/functional.py, get_config and get_tensor).
                ref = TensorAddress((), ref.layer, ref.call - 1, ref.index)
            if ref.call >= len(layer.calls):
                raise self.fail(f"model {model!r}: {what} {ref.layer!r} refers to a missing call")
            refs.append(ref)
        return refs

    def _toposort(self, graph: LayerGraph) -> list[tuple[str, int]]:
        nodes = [(layer.name, call.index) for layer in graph.layers for call in layer.calls]
        waiting = {node: 0 for node in nodes}
        consumers: dict[tuple[str, int], list[tuple[str, int]]] = {n: [] for n in nodes}
        for layer in graph.layers:
            for call in layer.calls:
                for ref in {(r.layer, r.call) for r in call.inputs}:
                    consumers[ref].append((layer.name, call.index))
                    waiting[(layer.name, call.index)] += 1
        ready = deque(n for n in nodes if waiting[n] == 0)
        order = []
        while ready:
            node = ready.popleft()
            order.append(node)
            for consumer in consumers[node]:
                waiting[consumer] -= 1
                if waiting[consumer] == 0:
                    ready.append(consumer)
        if len(order) != len(nodes):
            stuck = sorted({name for name, _ in nodes if waiting[(name, _)] > 0})
            raise self.fail(
                f"the layers of model {graph.name!r} form a cycle "
                f"({', '.join(stuck[:5])}); the config is damaged"
            )
        return order

    def _fill_tensors(self, graph: LayerGraph, layer_configs: list[dict[str, Any]]) -> None:
        recorded = _recorded_tensors(layer_configs)
        built = getattr(self.file, "built_from", None)  # shapes Keras gave a graph built by code
        hints: dict[str, list[list[Any]]] = built.shapes if built is not None else {}
        for name, index in graph.order:
            layer = graph.by_name[name]
            call = layer.calls[index]
            in_shapes = [graph.tensor(ref).shape for ref in call.inputs]
            if layer.submodel is not None:
                inferred = [layer.submodel.tensor(r).shape for r in layer.submodel.outputs]
                dtypes = [layer.submodel.tensor(r).dtype for r in layer.submodel.outputs]
            else:
                inferred = infer_output_shapes(layer.class_name, layer.config, in_shapes) or []
                dtype = _input_dtype(layer) if layer.is_input else _policy_dtype(layer.config)
                dtypes = [dtype] * max(len(inferred), 1)
            calls = hints.get(layer.path, [])
            hinted = [_shape(list(s)) for s in calls[index]] if index < len(calls) else []
            count = max(
                [len(inferred), len(hinted), 1]
                + [t + 1 for (n, c, t) in recorded if (n, c) == (name, index)]
            )
            call.outputs = []
            for t in range(count):
                shape, dtype = recorded.get((name, index, t), (None, None))
                if layer.is_input and t < len(inferred) and inferred[t] is not None:
                    shape = inferred[t]  # Keras builds an input from its own config, not from
                    # what its consumers recorded (which a damaged file may contradict)
                if shape is None and t < len(hinted):
                    shape = hinted[t]
                if shape is None and t < len(inferred):
                    shape = inferred[t]
                if dtype is None and t < len(dtypes):
                    dtype = dtypes[t]
                call.outputs.append(Tensor(shape, dtype))


def _starts_with_own_node(layer: Layer) -> bool:
    """A nested Functional model (not a Sequential): Keras counts its construction as a call
    when it writes or reads a model's input_layers and output_layers."""
    return layer.submodel is not None and layer.class_name != "Sequential"


def _node_inputs(node: Any) -> list[TensorAddress] | None:
    """The tensors a serialized call consumes, in argument order; None if malformed."""
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        refs: list[TensorAddress] = []
        _collect_tensors(node.get("args", []), refs)
        _collect_tensors(node.get("kwargs", {}), refs)
        return refs
    if isinstance(node, list):  # tf.keras 2: [[name, node, tensor, kwargs], ...]
        if parse_history(node) is not None or is_constant_entry(node):
            # a TFOpLambda (a TensorFlow function applied to a tensor) writes its one entry
            # flat: [name, node, tensor, {kwargs}]
            node = [node]
        refs = []
        for item in node:
            ref = parse_history(item)
            if ref is None and not is_constant_entry(item):
                return None
            if ref is not None:
                refs.append(ref)
            if len(item) > 3 and isinstance(item[3], dict):
                refs.extend(_legacy_kwarg_tensors(item[3]))
        return refs
    return None


def _legacy_kwarg_tensors(kwargs: dict[str, Any]) -> list[TensorAddress]:
    """Tensors tf.keras 2 passed by keyword (a TFOpLambda's `y` in `a + q`), written as
    [name, node, tensor] lists among the constants; in key order."""
    found: list[TensorAddress] = []
    for key in sorted(kwargs):
        value = kwargs[key]
        stack = [value]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list) and len(item) == 3 and parse_history(item) is not None:
                found.append(parse_history(item))  # type: ignore[arg-type]
            elif isinstance(item, list):
                stack[0:0] = item
    return found


def _collect_tensors(value: Any, out: list[TensorAddress]) -> None:
    stack = [value]
    found = []
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                history = as_dict(item.get("config")).get("keras_history")
                ref = parse_history(history)
                if ref is not None:
                    found.append(ref)
                continue
            # Keras flattens a call's arguments with keras.tree: dicts by sorted key
            stack.extend(reversed([item[key] for key in sorted(item)]))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
    out.extend(found)


def parse_history(item: Any) -> TensorAddress | None:
    """A `keras_history` / legacy call entry `[layer, call, index, ...]`; None if malformed."""
    if not isinstance(item, (list, tuple)) or len(item) < 3:
        return None
    name, call, index = item[0], item[1], item[2]
    if not isinstance(name, str) or not _is_count(call) or not _is_count(index):
        return None
    return TensorAddress((), name, call, index)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1_000_000


def _recorded_tensors(
    layer_configs: list[dict[str, Any]],
) -> dict[tuple[str, int, int], tuple[Shape | None, str | None]]:
    """Shapes and dtypes that consumers recorded for the tensors they take (Keras 3 files)."""
    found: dict[tuple[str, int, int], tuple[Shape | None, str | None]] = {}
    stack: list[Any] = [raw.get("inbound_nodes") for raw in layer_configs]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                cfg = as_dict(item.get("config"))
                ref = parse_history(cfg.get("keras_history"))
                if ref is not None and not cfg.get("keras_cut_placeholder"):
                    shape = _shape(cfg.get("shape"))
                    dtype = cfg.get("dtype") if isinstance(cfg.get("dtype"), str) else None
                    found[(ref.layer, ref.call, ref.index)] = (shape, dtype)
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _shape(value: Any) -> Shape | None:
    if not isinstance(value, (list, tuple)):
        return None
    if all(d is None or (_is_count(d) or (isinstance(d, int) and d >= 0)) for d in value):
        return tuple(value)
    return None


def _input_dtype(layer: Layer) -> str | None:
    dtype = layer.config.get("dtype")
    return dtype if isinstance(dtype, str) else _policy_dtype(layer.config)


def compute_dtypes(graph: LayerGraph) -> set[str]:
    """The compute dtypes the layers' dtype policies give (mixed_float16: float16)."""
    return {dtype for _, layer, _ in graph.walk()
            if not layer.is_input and (dtype := _policy_dtype(layer.config)) is not None}


def _policy_dtype(config: dict[str, Any]) -> str | None:
    """The compute dtype a layer's dtype policy gives its outputs ("mixed_float16" → float16)."""
    policy = config.get("dtype")
    if isinstance(policy, dict):
        policy = as_dict(policy.get("config")).get("name")
    if not isinstance(policy, str):
        return "float32" if policy is None else None
    return policy.split("_", 1)[1] if policy.startswith("mixed_") else policy
