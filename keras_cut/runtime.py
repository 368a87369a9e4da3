"""The one module that imports TensorFlow and Keras: load models, rebuild cuts, run them.

Imported lazily, only by commands that must build or run a model. Everything else in keras-cut
works from the file alone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .cutplan import CutPlan, ModelCall
from .errors import LoadError, UsageError
from .flatgraph import FlatNode, FlatTensor

_keras: Any = None


def keras_module(quiet: bool = True) -> Any:
    """Import Keras on TensorFlow, without TensorFlow's start-up chatter on stderr."""
    global _keras
    if _keras is not None:
        return _keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _silenced_fd2(quiet):
        import keras
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    with contextlib.suppress(ImportError):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    warnings.filterwarnings("ignore", module="keras")
    _keras = keras
    return keras


@contextlib.contextmanager
def _silenced_fd2(quiet: bool) -> Iterator[None]:
    """TensorFlow's C++ logs go to file descriptor 2 before any Python setting applies."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def streaming_save() -> Iterator[None]:
    """Make Keras write the weights of a .keras file through a temporary file beside it rather
    than first into memory (it buffers whenever it guesses memory suffices): a cut of a 1 GB
    model would otherwise hold its weights twice."""
    keras_module()
    try:
        from keras.src.saving import saving_lib
    except ImportError:  # a Keras without this switch: save as it does
        yield
        return
    original = getattr(saving_lib, "is_memory_sufficient", None)
    if original is None:
        yield
        return
    saving_lib.is_memory_sufficient = lambda model: False
    try:
        yield
    finally:
        saving_lib.is_memory_sufficient = original


def load_custom_objects(spec: str | None) -> dict[str, Any]:
    """Classes and functions from a Python file or an importable module (runs that code)."""
    if not spec:
        return {}
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"--custom-objects {spec}: no such Python file")
        module_spec = importlib.util.spec_from_file_location(f"keras_cut_custom_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(f"--custom-objects {spec}: cannot be imported")
        module = importlib.util.module_from_spec(module_spec)
        keras_module()  # custom code usually imports keras; do it quietly first
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: report it as theirs
            raise UsageError(f"--custom-objects {spec} failed to import: {exc}") from exc
    else:
        keras_module()
        try:
            module = importlib.import_module(spec)
        except Exception as exc:
            raise UsageError(f"--custom-objects {spec}: cannot import module ({exc})") from exc
    return {
        name: value for name, value in vars(module).items()
        if not name.startswith("_") and (isinstance(value, type) or callable(value))
    }


def load_model(path: Path, unsafe: bool = False, custom_objects: dict[str, Any] | None = None):
    """Keras' own loader: compile=False, safe mode unless --unsafe."""
    keras = keras_module()
    try:
        if unsafe:
            keras.config.enable_unsafe_deserialization()
        return keras.saving.load_model(
            path, compile=False, safe_mode=not unsafe, custom_objects=custom_objects or None
        )
    except Exception as exc:
        raise LoadError(f"{path}: Keras could not load the model ({_one_line(exc)})") from exc


def load_parent(model_file: Any, unsafe: bool = False,
                custom_objects: dict[str, Any] | None = None) -> tuple[Any, str | None]:
    """Keras' own loader; for a tf.keras 2 file it refuses, the normalised config instead.

    Returns the model and, when normalisation was needed, a sentence saying so."""
    try:
        return load_model(model_file.path, unsafe, custom_objects), None
    except LoadError:
        if not model_file.legacy:
            raise
    model = load_normalized(model_file, unsafe, custom_objects)
    changes = len(model_file.legacy_changes)
    return model, (
        f"{model_file.path} is a tf.keras 2 file Keras 3 refuses; it was loaded through "
        f"keras-cut's legacy normalisation ({changes} change(s), see `keras-cut inspect`) "
        "with weights assigned by layer and weight name"
    )


def load_normalized(model_file: Any, unsafe: bool = False,
                    custom_objects: dict[str, Any] | None = None) -> Any:
    """Build a model from a normalised legacy config, then load weights by name from the file."""
    try:
        model = _from_legacy_config(model_file.config, custom_objects, unsafe)
    except Exception as exc:
        raise LoadError(
            f"{model_file.path}: Keras 3 cannot build even the normalised legacy config "
            f"({_one_line(exc)})"
        ) from exc
    with model_file.open_weights() as h5:
        for path, entries in model_file.weights.items():
            layer = keras_layer(model, list(path))
            values = [model_file.read_weight(h5, entry) for entry in entries]
            _assign_by_name(model_file.path, "/".join(path), layer, entries, values)
    return model


def _from_legacy_config(config: dict[str, Any], custom_objects: dict[str, Any] | None,
                        unsafe: bool) -> Any:
    """Build from an h5-style config (no `module` keys) the way Keras' own h5 loader does."""
    keras = keras_module()
    from keras.src.legacy.saving import saving_options, saving_utils
    from keras.src.saving import serialization_lib

    if unsafe:
        keras.config.enable_unsafe_deserialization()
    with saving_options.keras_option_scope(use_legacy_config=True), \
            serialization_lib.SafeModeScope(not unsafe):
        return saving_utils.model_from_config(config, custom_objects=custom_objects or None)


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """Keras' messages span lines; an error here is one line."""
    return " ".join(str(exc).split())[:limit]


def _assign_by_name(where: Any, path: str, layer: Any, entries: list[Any],
                    values: list[Any]) -> None:
    """Stored arrays onto a layer's variables: by weight name, else in order when the names
    differ only by convention (tf.keras 2 `depthwise_kernel` is Keras 3 `kernel`)."""
    variables = list(layer.weights)
    if len(variables) != len(values):
        raise LoadError(
            f"{where}: layer {path!r} stores {len(values)} array(s) but Keras 3 builds "
            f"{len(variables)}; the legacy weights cannot be mapped"
        )
    by_name = {v.name: v for v in variables}
    names = [entry.name.rsplit("/", 1)[-1] for entry in entries]
    if set(names) == set(by_name):
        pairs = [(by_name[n], value, n) for n, value in zip(names, values)]
    else:
        pairs = [(v, value, n) for v, value, n in zip(variables, values, names)]
    for variable, value, name in pairs:
        if tuple(variable.shape) != tuple(value.shape):
            raise LoadError(
                f"{where}: weight {path}/{name} has shape {tuple(value.shape)}, Keras 3 builds "
                f"{tuple(variable.shape)}; the legacy weights cannot be mapped"
            )
        _put(variable, value)


def keras_layer(model: Any, path: list[str]) -> Any:
    """The layer object at a path of names (through nested models)."""
    owner = model
    for name in path:
        owner = owner.get_layer(name)
    return owner


@contextlib.contextmanager
def renamed_layers(parent: Any, renames: dict[str, str]) -> Iterator[None]:
    """Give clashing layers their submodel names while the submodel is built and saved."""
    layers = [(keras_layer(parent, path.split("/")), new) for path, new in renames.items()]
    old = [layer.name for layer, _ in layers]
    try:
        for layer, new in layers:
            layer.name = new
        yield
    finally:
        for (layer, _), name in zip(layers, old):
            layer.name = name


def build_submodel(parent: Any, plan: CutPlan, name: str) -> Any:
    """Replay the planned calls on the parent's own layer objects (so weights are shared).

    Call inside `renamed_layers(parent, plan.renames)`."""

    def layer_for(step: Any) -> Any:
        return keras_layer(parent, [n for n, _ in step.context] + [step.layer])

    return _replay(plan, layer_for, name)


def build_partial(model_file: Any, plan: CutPlan, name: str, unsafe: bool = False,
                  custom_objects: dict[str, Any] | None = None) -> Any:
    """Build only what the cut keeps: each kept layer from its own config, its arrays read
    from the file. The parent is never built, and weights it drops are never read."""
    keras = keras_module()
    factory = _LayerFactory(model_file, plan.flat, unsafe, custom_objects or {})
    for path, new_name in plan.renames.items():
        factory.names[tuple(path.split("/"))] = new_name
    # Variables are created without values (no random initial weights that the file's would
    # overwrite: on a 1 GB cut that is seconds and hundreds of MB), then given the file's.
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = _replay(plan, factory.layer_for, name)
        factory.load_weights()
    finally:
        _initialize_the_rest()
    return model


def can_build_partially(plan: CutPlan) -> bool:
    """Partial building gives each layer path one object; a layer that is both inside a nested
    model kept whole and opened up elsewhere would be duplicated, so it needs the full parent."""
    whole: set[tuple[str, ...]] = set()
    opened: set[tuple[str, ...]] = set()
    for step in plan.steps:
        path = tuple(n for n, _ in step.context) + (step.layer,)
        if isinstance(step, ModelCall):
            layer = plan.flat.layer(FlatNode(step.context, step.layer, step.call))
            whole.update(path + tuple(inner.path.split("/")[len(path):])
                         for _, inner, _ in layer.submodel.walk())
        else:
            opened.add(path)
    return not (whole & opened)


class _LayerFactory:
    def __init__(self, model_file: Any, flat: Any, unsafe: bool,
                 custom_objects: dict[str, Any]):
        self.file = model_file
        self.flat = flat
        self.unsafe = unsafe
        self.custom = custom_objects
        self.made: dict[tuple[str, ...], Any] = {}
        self.names: dict[tuple[str, ...], str] = {}

    def layer_for(self, step: Any) -> Any:
        path = tuple(n for n, _ in step.context) + (step.layer,)
        if path not in self.made:
            layer = self._deserialize(step)
            if path in self.names:
                layer.name = self.names[path]
            self.made[path] = layer
        return self.made[path]

    def _deserialize(self, step: Any) -> Any:
        graph_layer = self.flat.layer(FlatNode(step.context, step.layer, step.call))
        keras = keras_module()
        try:
            if self.file.format == "keras" and not self.file.legacy:
                if self.unsafe:
                    keras.config.enable_unsafe_deserialization()
                return keras.saving.deserialize_keras_object(
                    graph_layer.raw, custom_objects=self.custom or None, safe_mode=not self.unsafe
                )
            return _from_legacy_config(graph_layer.raw, self.custom, self.unsafe)
        except Exception as exc:
            raise LoadError(
                f"{self.file.path}: Keras could not build layer {graph_layer.path!r} "
                f"({_one_line(exc)})"
            ) from exc

    def load_weights(self) -> None:
        """Read exactly the arrays of the layers built, and assign them."""
        with self.file.open_weights() as h5:
            for path, layer in self.made.items():
                targets = [(path, layer)]
                if hasattr(layer, "layers"):  # a nested model kept whole: its own layers
                    targets = [(path + tuple(sub.split("/")), inner)
                               for sub, inner in all_layers(layer)]
                for key, target in targets:
                    entries = self.file.weights.get(key)
                    if not entries:
                        continue
                    values = [self.file.read_weight(h5, e) for e in entries]
                    if self.file.format == "keras" and not self.file.legacy:
                        _load_own_variables(self.file.path, "/".join(key), target, entries,
                                            values)
                    else:
                        _assign_by_name(self.file.path, "/".join(key), target, entries, values)


def _load_own_variables(where: Any, path: str, layer: Any, entries: list[Any],
                        values: list[Any]) -> None:
    """What Keras' loader does: each object's `vars/N`, in its own variable order."""
    from keras.src.layers.layer import Layer

    stores: dict[str, dict[str, Any]] = {}
    for entry, value in zip(entries, values):
        owner, _, index = entry.name.rpartition("vars/")
        stores.setdefault(owner.rstrip("/"), {})[index] = value
    for owner_path, store in stores.items():
        target = layer
        for attribute in filter(None, owner_path.split("/")):
            target = getattr(target, attribute)
        try:
            if type(target).load_own_variables is Layer.load_own_variables:
                variables = target._trainable_variables + target._non_trainable_variables
                if len(variables) != len(store):
                    raise ValueError(f"expected {len(variables)} variables, the file holds "
                                     f"{len(store)}")
                for i, variable in enumerate(variables):
                    _put(variable, store[str(i)])
            else:  # a layer with its own loading logic (quantized, ...): let it do its work
                for variable in target.variables:
                    _materialize(variable)
                target.load_own_variables(store)
        except Exception as exc:
            raise LoadError(f"{where}: the weights of layer {path!r} do not fit it "
                            f"({_one_line(exc, 200)})") from exc


def _put(variable: Any, value: Any) -> None:
    """Give a variable its stored value: as its first value if it has none yet (no copy of a
    random start), else by assignment."""
    import numpy as np

    if tuple(variable.shape) != tuple(value.shape):
        raise ValueError(f"{variable.path} has shape {tuple(variable.shape)}, the file "
                         f"{tuple(value.shape)}")
    if getattr(variable, "_value", True) is None:
        wanted = np.dtype(keras_module().backend.standardize_dtype(variable.dtype)) if \
            variable.dtype != "bfloat16" else value.dtype
        variable._initialize(value if value.dtype == wanted else value.astype(wanted))
        variable._initializer = None
    else:
        variable.assign(value)


def _materialize(variable: Any) -> None:
    if getattr(variable, "_value", True) is None:
        variable._deferred_initialize()


def _initialize_the_rest() -> None:
    """Variables the file holds no value for (seed states, ...) start as Keras would start
    them; then nothing is left pending for Keras to trip over later."""
    from keras.src.backend.common import global_state

    pending = global_state.get_global_attribute("uninitialized_variables") or []
    for variable in pending:
        _materialize(variable)
    global_state.set_global_attribute("uninitialized_variables", [])


def _replay(plan: CutPlan, layer_for: Any, name: str) -> Any:
    """Call each planned step's layer on the submodel's tensors, in order; wrap as a Model."""
    keras = keras_module()
    flat = plan.flat
    built: dict[FlatTensor, Any] = {}
    for planned in plan.inputs:
        built[planned.tensor] = keras.Input(
            batch_shape=planned.shape, dtype=planned.dtype, name=planned.name
        )
    for step in plan.steps:
        node = FlatNode(step.context, step.layer, step.call)
        layer = layer_for(step)
        args, kwargs = _call_arguments(keras, flat, node, built)
        result = layer(*args, **kwargs)
        for tensor, value in zip(flat.outputs_of(node), keras.tree.flatten(result)):
            built[tensor] = value
    inputs = [built[p.tensor] for p in plan.inputs]
    outputs = [built[p.tensor] for p in plan.outputs]
    for planned, tensor in zip(plan.outputs, outputs):
        planned.name = tensor._keras_history[0].name
    return keras.Model(
        inputs=inputs[0] if len(inputs) == 1 else inputs,
        outputs=outputs[0] if len(outputs) == 1 else outputs,
        name=name,
    )


def _call_arguments(
    keras: Any, flat: Any, node: FlatNode, built: dict[FlatTensor, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The args and kwargs of a recorded call, with the submodel's tensors put in."""
    call = flat.layer(node).calls[node.call]
    data = call.data

    def tensor(name: str, call_index: int, index: int) -> Any:
        key = flat.canonical(FlatTensor(node.context, name, call_index, index))
        return built[key]

    if data is None:  # a Sequential layer: called on what the previous layer gave
        return [built[flat.inputs_of(node)[0]]], {}
    if isinstance(data, list):  # legacy: [[name, call, index, kwargs], ...]
        tensors = [tensor(item[0], item[1], item[2]) for item in data]
        kwargs: dict[str, Any] = {}
        for item in data:
            if len(item) > 3 and isinstance(item[3], dict):
                kwargs.update(item[3])
        return [tensors[0] if len(tensors) == 1 else tensors], kwargs
    args = keras.saving.deserialize_keras_object(data.get("args", []))
    kwargs = keras.saving.deserialize_keras_object(data.get("kwargs", {})) or {}

    def convert(value: Any) -> Any:
        history = getattr(value, "_pre_serialization_keras_history", None)
        if history is not None:
            return tensor(history[0], history[1], history[2])
        return value

    args = keras.tree.map_structure(convert, list(args))
    kwargs = keras.tree.map_structure(convert, dict(kwargs))
    return args, kwargs


def count_params(model: Any) -> tuple[int, int]:
    import math

    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return model.count_params(), trainable


def _own_graph(model: Any) -> Any:
    """The Functional graph a model runs (a Sequential keeps one inside)."""
    return getattr(model, "_functional", None) or model


def _is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and hasattr(_own_graph(layer), "_nodes_by_depth")


def probe_model(parent: Any, wanted: list[tuple[Any, str, int, int]]) -> Any:
    """A model from the parent's inputs to the activations at each wanted tensor, given as
    (context, layer name, call, output index) with context the nested-model calls around it.

    Built by walking Keras' own node graph, nested models included, and replaying each node on
    new inputs: independent of the config replay that `cut` uses, so that a bug there cannot
    make both sides of a comparison wrong in the same way.
    """
    keras = keras_module()
    graph = _own_graph(parent)
    inputs = [
        keras.Input(batch_shape=tuple(kt.shape), dtype=kt.dtype, name=kt.name)
        for kt in graph.inputs
    ]
    record: dict[tuple[Any, str, int], list[Any]] = {}

    def walk(owner: Any, values: list[Any], context: tuple) -> list[Any]:
        inner = _own_graph(owner)
        known = {id(kt): v for kt, v in zip(inner.inputs, values)}
        for depth in sorted(inner._nodes_by_depth, reverse=True):
            for node in inner._nodes_by_depth[depth]:
                if node.is_input:
                    continue
                op = node.operation
                args, kwargs = node.arguments.fill_in(known)
                own = [
                    n for i, n in enumerate(op._inbound_nodes)
                    if f"{id(op)}_ib-{i}" in inner._nodes
                ]
                call = own.index(node)
                if _is_model(op):
                    outs = walk(op, keras.tree.flatten(args[0]), context + ((op.name, call),))
                else:
                    outs = keras.tree.flatten(op(*args, **kwargs))
                record[(context, op.name, call)] = outs
                for kt, value in zip(node.outputs, outs):
                    known[id(kt)] = value
        return [known[id(kt)] for kt in inner.outputs]

    walk(parent, inputs, ())
    outputs = []
    for context, name, call, index in wanted:
        outs = record.get((context, name, call))
        if outs is None or index >= len(outs):
            where = "/".join([n for n, _ in context] + [name])
            raise UsageError(f"the parent has no output {index} of call {call} of {where!r}")
        outputs.append(outs[index])
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name="keras_cut_probe")


def all_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every layer with its path, nested models walked into."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if _is_model(layer):
            yield from all_layers(layer, prefix + layer.name + "/")


def runner(model: Any) -> Any:
    """One compiled inference function for `model` (training=False), traced once for any
    batch size; twice as fast as eager calls on CPU for convolutional models."""
    import numpy as np
    import tensorflow as tf

    keras = keras_module()
    inputs = model.inputs
    signature = [tf.TensorSpec((None, *kt.shape[1:]), kt.dtype) for kt in inputs]

    @tf.function(input_signature=signature, reduce_retracing=True)
    def infer(*xs: Any) -> Any:
        return model(list(xs) if len(xs) > 1 else xs[0], training=False)

    def run_batch(batch: list[Any]) -> list[Any]:
        return [np.asarray(x) for x in keras.tree.flatten(infer(*batch))]

    return run_batch
