"""The submodel's config, written from the parent's config and a cut plan — no Keras involved.

Kept layers' serialized configs are copied verbatim; only their calls are rewired: every
tensor a kept call consumes is renamed to the new `InputLayer` it became, or to the kept call
that produces it (call indices renumbered, since a shared layer may keep fewer calls). A nested
model kept whole is one layer whose config is copied with everything inside it.

Keras addresses a `.keras` file's arrays by position in `model.layers` (`layers/conv2d_3`), and
`model.layers` of a loaded Functional model is the order `map_graph` gives its operations
(keras/src/ops/function.py). `keras_layer_order` reproduces that order, and the config lists
its layers in it, as Keras itself writes them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from keras_cut.core.address import CallAddress, TensorAddress
from keras_cut.core.errors import CutError
from keras_cut.cut.plan import CutPlan, ModelCall
from keras_cut.file.modelfile import NestedKey
from keras_cut.layers.known import TF_OP_LAYERS
from keras_cut.layers.tfops import LEGACY_SEMANTICS, is_constant_entry
from keras_cut.model.endpoint import Role
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import Layer, parse_history

Ref = tuple[str, int, int]  # (layer name, call, output index) in the submodel


@dataclass
class KeptLayer:
    """One layer of the submodel: what it is called and where it comes from in the parent."""

    name: str
    raw: dict[str, Any]  # the serialized layer as written (calls rewired)
    source: Layer | None = None  # the parent's layer; None for a new InputLayer
    key: NestedKey = ()  # the parent layer's name path, which indexes its weights
    calls: list[list[Ref]] = field(default_factory=list)  # per call, the tensors it consumes

    @property
    def class_name(self) -> str:
        return str(self.raw.get("class_name"))

    @property
    def is_input(self) -> bool:
        return self.class_name == "InputLayer"


@dataclass
class Submodel:
    config: dict[str, Any]  # the whole serialized model, as config.json / model_config holds it
    layers: list[KeptLayer]  # in Keras' `model.layers` order, which the config follows
    legacy: bool  # written in tf.keras 2's dialect (list-form calls), like its parent
    outputs: list[Ref] = field(default_factory=list)  # per planned output, the tensor it is


def build_submodel(plan: CutPlan, name: str, legacy_parent: bool, legacy: bool,
                   freeze: bool = False) -> Submodel:
    """The submodel's config and layer list for a planned cut.

    `legacy` writes tf.keras 2's dialect (for an .h5 cut of a tf.keras 2 file); otherwise a
    tf.keras 2 parent's list-form calls are rewritten in Keras 3's form."""
    return _Writer(plan, legacy_parent, legacy).build(name, freeze)


class _Writer:
    def __init__(self, plan: CutPlan, legacy_parent: bool, legacy: bool):
        self.plan = plan
        self.flat: FlatGraph = plan.flat
        self.legacy_parent = legacy_parent
        self.legacy = legacy
        self.layers: dict[NestedKey, KeptLayer] = {}
        self.produced: dict[TensorAddress, Ref] = {}

    def build(self, name: str, freeze: bool) -> Submodel:
        for planned in self.plan.inputs:
            layer = self._input_layer(planned)
            self.layers[("<input>", planned.name)] = layer
            self.produced[planned.parent] = (planned.name, 0, 0)
        for step in self.plan.steps:
            self._add_call(step)
        inputs = [self.produced[p.parent] for p in self.plan.inputs]
        outputs = [self.produced[p.parent] for p in self.plan.outputs]
        order = keras_layer_order(
            {layer.name: layer.calls for layer in self.layers.values()}, inputs, outputs
        )
        by_name = {layer.name: layer for layer in self.layers.values()}
        kept = [by_name[n] for n in order]
        if freeze:
            for layer in kept:
                _freeze(layer.raw)
        config = {
            "name": name,
            "trainable": not freeze,
            "layers": [layer.raw for layer in kept],
            "input_layers": _endpoints(inputs),
            "output_layers": _endpoints([self._endpoint(ref) for ref in outputs]),
        }
        keys = self.plan.input_keys
        if keys is not None and len(keys) == len(inputs) and not self.legacy:
            # the parent took a dict: so does a cut that starts at its inputs
            config["input_layers"] = {key: list(ref) for key, ref in zip(keys, inputs, strict=True)}
        keys = self.plan.output_keys
        if keys is not None and len(keys) == len(outputs) and not self.legacy:
            # the parent returned a dict: so does its head, with the same keys
            config["output_layers"] = {key: list(self._endpoint(ref))
                                       for key, ref in zip(keys, outputs, strict=True)}
        if self.legacy:
            model = {"class_name": "Functional", "config": config}
        else:
            model = {"module": "keras.src.models.functional", "class_name": "Functional",
                     "config": config, "registered_name": "Functional",
                     "build_config": {"input_shape": None}}
        return Submodel(model, kept, self.legacy, outputs)

    def _endpoint(self, ref: Ref) -> Ref:
        """Keras 3 numbers a nested Functional model's calls from 1 in output_layers (its
        construction is node 0; keras/src/models/functional.py, get_tensor)."""
        layer = next(k for k in self.layers.values() if k.name == ref[0])
        source = layer.source
        if self.legacy or source is None or source.submodel is None or \
                source.class_name == "Sequential":
            return ref
        return (ref[0], ref[1] + 1, ref[2])

    # --- layers -------------------------------------------------------------------------

    def _input_layer(self, planned: Any) -> KeptLayer:
        """The parent's own InputLayer for a parent input; a new one for a cut point."""
        if planned.role is Role.PARENT_INPUT:
            source = self.flat.layer(planned.parent)
            # A Sequential without an InputLayer has none to copy; a tf.keras 2 one is
            # written anew in Keras 3's form.
            if source.raw and self.legacy == self.legacy_parent:
                raw = copy.deepcopy(source.raw)
                _rename(raw, planned.name)
                raw["inbound_nodes"] = []
                return KeptLayer(planned.name, raw, source, (planned.parent.layer,))
        shape = list(planned.shape) if planned.shape is not None else None
        dtype = planned.dtype or "float32"
        if self.legacy:
            raw = {"class_name": "InputLayer",
                   "config": {"batch_input_shape": shape, "dtype": dtype, "sparse": False,
                              "ragged": False, "name": planned.name},
                   "name": planned.name, "inbound_nodes": []}
        else:
            raw = {"module": "keras.layers", "class_name": "InputLayer",
                   "config": {"batch_shape": shape, "dtype": dtype, "sparse": False,
                              "ragged": False, "name": planned.name, "optional": False},
                   "registered_name": None, "name": planned.name, "inbound_nodes": []}
        return KeptLayer(planned.name, raw)

    def _add_call(self, step: CallAddress | ModelCall) -> None:
        node = CallAddress(step.context, step.layer, step.call)
        source = self.flat.layer(node)
        key = tuple(n for n, _ in step.context) + (step.layer,)
        kept = self.layers.get(key)
        if kept is None:
            new_name = self.plan.renames.get(self.flat.path(node), step.layer)
            raw = copy.deepcopy(source.raw)
            if raw.get("class_name") == "InputLayer":
                raise CutError(f"internal: input layer {self.flat.path(node)!r} kept as a call")
            if self.legacy and "keras_cut_translated_from" in source.raw:
                raise CutError(
                    f"the cut keeps {self.flat.path(node)!r}, "
                    f"{source.raw['keras_cut_translated_from']} of the tf.keras 2 file, which "
                    "keras-cut translates to a Keras 3 operation; tf.keras 2's .h5 dialect "
                    "cannot hold that: write the cut as .keras"
                )
            if LEGACY_SEMANTICS in source.raw and not self.legacy:
                raise CutError(
                    f"the file written would keep {self.flat.path(node)!r}: "
                    f"{source.raw[LEGACY_SEMANTICS]}; write it as .h5 (for tf.keras 2), or cut "
                    "around that layer"
                )
            if source.class_name in TF_OP_LAYERS and not self.legacy:
                raise CutError(
                    f"the cut keeps {self.flat.path(node)!r}, a TensorFlow operation recorded "
                    f"by tf.keras 2 (tf.{source.config.get('function')}): a .keras file cannot "
                    "hold it (Keras 3 has no such layer) and keras-cut does not translate it "
                    "yet; write the cut as .h5 (for tf.keras 2), or cut around it"
                )
            _rename(raw, new_name)
            raw.pop(LEGACY_SEMANTICS, None)  # keras-cut's own mark, not tf.keras 2's
            raw["inbound_nodes"] = []
            if source.submodel is not None and self.legacy_parent and not self.legacy:
                _modernize_calls(raw, source.submodel)
            kept = KeptLayer(new_name, raw, source, key)
            self.layers[key] = kept
        call_index = len(kept.calls)
        data, refs = self._rewire(node, source)
        kept.raw["inbound_nodes"].append(data)
        kept.calls.append(refs)
        for i, tensor in enumerate(self.flat.outputs_of(node)):
            self.produced.setdefault(tensor, (kept.name, call_index, i))

    def _rewire(self, node: CallAddress, source: Layer) -> tuple[Any, list[Ref]]:
        """The call's serialized form with every tensor pointing into the submodel."""
        data = source.calls[node.call].data
        refs: list[Ref] = []

        def new_ref(name: str, call: int, index: int) -> Ref:
            try:
                tensor = self.flat.canonical(TensorAddress(node.context, name, call, index))
            except (KeyError, IndexError, ValueError):
                tensor = None
            ref = self.produced.get(tensor) if tensor is not None else None
            if ref is None:
                raise CutError(
                    f"layer {self.flat.path(node)!r} takes a tensor from {name!r} (call {call}, "
                    f"output {index}) that the graph does not have; the config is damaged"
                )
            return ref

        if data is None:  # a Sequential's layer: called on what the layer before it gave
            (tensor,) = self.flat.inputs_of(node)
            ref = self.produced[tensor]
            return self._plain_call(tensor, ref), [ref]
        if isinstance(data, list):  # tf.keras 2: [[name, call, index, kwargs], ...]
            # a TFOpLambda's one entry, unnested (its first argument a tensor or a constant)
            flat_form = parse_history(data) is not None or is_constant_entry(data)
            rewired = []
            for item in [data] if flat_form else data:
                head: list[Any] = list(item[:3])  # a constant's entry stays as it is
                if not is_constant_entry(item):
                    head = list(new_ref(item[0], item[1], item[2]))
                    refs.append((head[0], head[1], head[2]))
                extra = copy.deepcopy(item[3:])
                if extra and isinstance(extra[0], dict):  # tensors passed by keyword
                    for key in sorted(extra[0]):
                        extra[0][key] = _rewire_kwarg(extra[0][key], new_ref, refs)
                rewired.append([*head, *extra])
            if flat_form:
                return rewired[0], refs
            if not self.legacy:
                tensors = [self.flat.shape_dtype(self.flat.canonical(
                    TensorAddress(node.context, item[0], item[1], item[2]))) for item in data]
                rewired = _keras3_call(rewired, tensors)
            return rewired, refs
        modern = copy.deepcopy(data)
        for serialized in _keras_tensors(modern):
            config = serialized.get("config")
            history = parse_history(config.get("keras_history")) if isinstance(
                config, dict) else None
            if history is None:
                raise CutError(
                    f"layer {self.flat.path(node)!r} has a malformed call (a tensor without a "
                    "valid keras_history); the config is damaged"
                )
            ref = new_ref(history.layer, history.call, history.index)
            serialized["config"]["keras_history"] = list(ref)
            refs.append(ref)
        return modern, [r for _, r in sorted(zip(_flat_order(modern), refs, strict=True))]

    def _plain_call(self, tensor: TensorAddress, ref: Ref) -> Any:
        """A call on one tensor, as a Functional config records it."""
        if self.legacy:
            return [[*ref, {}]]
        shape, dtype = self.flat.shape_dtype(tensor)
        if shape is None:
            raise CutError(
                f"the shape of {self.flat.label(tensor)!r} is not recorded in the file and "
                "keras-cut cannot work it out, so the Sequential layer after it cannot be "
                "rewired; cut at a neighbouring layer"
            )
        return {"args": [{"class_name": "__keras_tensor__",
                          "config": {"shape": list(shape), "dtype": dtype or "float32",
                                     "keras_history": list(ref)}}],
                "kwargs": {}}


def _keras3_call(items: list[list[Any]], tensors: list[tuple[Any, Any]]) -> Any:
    """A tf.keras 2 call (`[[name, call, index, kwargs], ...]`) in Keras 3's form: Keras
    calls the layer on the one tensor, or the list of them, with the merged kwargs
    (keras/src/models/functional.py, deserialize_node)."""
    if any(shape is None for shape, _ in tensors):
        return items  # Keras 3 reads the old form too; it needs no shapes
    kwargs: dict[str, Any] = {}
    for item in items:
        if len(item) > 3 and isinstance(item[3], dict):
            kwargs.update(item[3])
    args = [{"class_name": "__keras_tensor__",
             "config": {"shape": list(shape), "dtype": dtype or "float32",
                        "keras_history": list(item[:3])}}
            for item, (shape, dtype) in zip(items, tensors, strict=True)]
    return {"args": [args[0] if len(args) == 1 else args], "kwargs": kwargs}


def _modernize_calls(raw: dict[str, Any], graph: Any) -> None:
    """Every tf.keras 2 call inside a nested model kept whole, in Keras 3's form."""
    for layer_raw in raw.get("config", {}).get("layers", []):
        layer = graph.by_name.get(layer_raw.get("name") or layer_raw.get("config", {}).get(
            "name"))
        if layer is None:
            continue
        nodes = layer_raw.get("inbound_nodes") or []
        # an InputLayer has no inbound node but a call of its own; where the counts differ
        # otherwise the old form is kept, which Keras 3 reads too
        if nodes and len(nodes) == len(layer.calls):
            layer_raw["inbound_nodes"] = [
                _keras3_call(node, [(graph.tensor(r).shape, graph.tensor(r).dtype)
                                    for r in call.inputs]) if isinstance(node, list) else node
                for call, node in zip(layer.calls, nodes, strict=True)]
        if layer.submodel is not None:
            _modernize_calls(layer_raw, layer.submodel)


def _rename(raw: dict[str, Any], name: str) -> None:
    raw["name"] = name
    if isinstance(raw.get("config"), dict):
        raw["config"]["name"] = name


def _rewire_kwarg(value: Any, new_ref: Any, refs: list[Ref]) -> Any:
    """A keyword argument of a tf.keras 2 call with its [name, call, index] tensors rewired (in
    the order `graph` reads them)."""
    if isinstance(value, list) and len(value) == 3 and parse_history(value) is not None:
        ref = new_ref(value[0], value[1], value[2])
        refs.append(ref)
        return list(ref)
    if isinstance(value, list):
        return [_rewire_kwarg(v, new_ref, refs) for v in value]
    return value


def _endpoints(refs: list[Ref]) -> Any:
    """Keras writes one input or output flat, several as a list."""
    return list(refs[0]) if len(refs) == 1 else [list(r) for r in refs]


def _freeze(raw: dict[str, Any]) -> None:
    """`trainable: false` in a layer's config and every layer config inside it."""
    stack: list[Any] = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            inner = item.get("config")
            if isinstance(inner, dict) and "trainable" in inner and "class_name" in item:
                inner["trainable"] = False
            stack.extend(v for k, v in item.items() if k != "inbound_nodes")
        elif isinstance(item, list):
            stack.extend(item)


# --- Keras' order ---------------------------------------------------------------------------


def _keras_tensors(data: Any) -> list[dict[str, Any]]:
    """The `__keras_tensor__` entries of a serialized call, in document order."""
    found: list[dict[str, Any]] = []
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                found.append(item)
                continue
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


def _flat_order(data: dict[str, Any]) -> list[tuple[int, ...]]:
    """For each tensor of `_keras_tensors(data)`, its position in `keras.tree.flatten((args,
    kwargs))`, which sorts dict keys: the order `Node.input_tensors` has."""
    positions: dict[int, tuple[int, ...]] = {}

    def walk(item: Any, path: tuple[int, ...]) -> None:
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                positions[id(item)] = path
                return
            for i, key in enumerate(sorted(item)):
                walk(item[key], path + (i,))
        elif isinstance(item, list):
            for i, value in enumerate(item):
                walk(value, path + (i,))

    walk([data.get("args", []), data.get("kwargs", {})], ())
    return [positions[id(t)] for t in _keras_tensors(data)]


def keras_layer_order(calls: dict[str, list[list[Ref]]], inputs: list[Ref],
                      outputs: list[Ref]) -> list[str]:
    """The order of `model.layers` that Keras gives a Functional model with these calls.

    `calls[layer]` lists, per call, the tensors it consumes (flattened as Keras flattens them);
    InputLayers have no calls. This follows `map_graph`/`_build_map` in keras/src/ops/function.py:
    a depth-first walk from the outputs numbers operations in the order first seen; each
    operation's depth is the longest path from it to an output; operations are listed by
    decreasing depth, ties by that number.
    """
    index: dict[str, int] = {}
    finished: set[tuple[str, int]] = set()
    ordered: list[tuple[str, int]] = []  # nodes, inputs first (DFS post-order)

    def visit(ref: Ref) -> None:
        layer, call, _ = ref
        node = (layer, call)
        if node in finished:
            return
        index.setdefault(layer, len(index))
        stack: list[tuple[tuple[str, int], int]] = [(node, 0)]
        in_progress = {node}
        while stack:  # iterative DFS: deep models would exhaust Python's recursion
            current, position = stack[-1]
            parents = _parents(calls, current)
            if position < len(parents):
                stack[-1] = (current, position + 1)
                parent = parents[position]
                if parent in finished or parent in in_progress:
                    continue
                index.setdefault(parent[0], len(index))
                in_progress.add(parent)
                stack.append((parent, 0))
            else:
                stack.pop()
                in_progress.discard(current)
                finished.add(current)
                ordered.append(current)

    for ref in outputs:
        visit(ref)
    node_depth: dict[tuple[str, int], int] = {}
    layer_depth: dict[str, int] = {}
    for node in reversed(ordered):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node[0], 0))
        layer_depth[node[0]] = depth
        node_depth[node] = depth
        for parent in _parents(calls, node):
            node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for layer, _, _ in inputs:  # inputs no output needs still belong to the model
        if layer not in layer_depth:
            layer_depth[layer] = 0
            index[layer] = -1
    return sorted(layer_depth, key=lambda name: (-layer_depth[name], index[name]))


def _parents(calls: dict[str, list[list[Ref]]], node: tuple[str, int]) -> list[tuple[str, int]]:
    layer_calls = calls.get(node[0]) or []
    if node[1] >= len(layer_calls):
        return []
    return [(name, call) for name, call, _ in layer_calls[node[1]]]
