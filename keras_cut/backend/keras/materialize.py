"""A model saved as its class (a keras_hub backbone) turned into its functional graph.

Runs only on the user's explicit opt-in (`--custom-objects keras_hub`): the class's code
builds the model (Keras' own loader, compile=False, safe mode unless --unsafe), every
Functional subclass in it (the model, and nested ones such as a task's backbone) is rebuilt as
a plain Functional model made of the same layer objects, and that is saved with Keras' own
`model.save` to a private temporary folder. keras-cut then reads that file like any other:
one graph reader, one cut path.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_cut.backend.keras import loading, private
from keras_cut.core.errors import LoadError


@dataclass(frozen=True)
class BuiltFrom:
    """What built the functional graph keras-cut reads in place of the file's config."""

    class_name: str  # "BertBackbone"
    registered_name: str | None  # "keras_hub>BertBackbone"
    code: str  # the --custom-objects given ("keras_hub")
    rebuilt: tuple[str, ...]  # every model rebuilt as plain Functional ("bert_backbone", ...)
    # layers whose own saved config does not rebuild them (path, why): the class's
    # get_config and __init__ disagree, so a file that keeps such a layer cannot be loaded
    unbuildable: tuple[tuple[str, str], ...] = ()
    # layer path -> per call, its outputs' shapes as Keras built them: Keras 3's config records
    # a tensor's shape only where it is consumed, and keras-cut has no shape rule for a
    # package's own layers
    shapes: dict[str, list[list[tuple[int | None, ...]]]] = field(
        default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"class_name": self.class_name, "registered_name": self.registered_name,
                "code": self.code, "rebuilt": list(self.rebuilt),
                "unbuildable": [{"layer": p, "why": why} for p, why in self.unbuildable]}


_folders: list[str] = []
# One build per file and code in a process: Keras names operations it creates (`get_item`,
# `get_item_1`) by what the process built before, so a second build of the same model could
# name them differently from the graph already read. Also what `verify` runs as the parent:
# the model object as the class built it. (file, code, unsafe) -> (copy, built, model)
_built: dict[tuple[str, str, bool], tuple[Path, BuiltFrom, Any]] = {}


@atexit.register
def _remove_folders() -> None:
    for folder in _folders:
        shutil.rmtree(folder, ignore_errors=True)


def functional_copy(path: Path, class_name: str, registered_name: str | None, code: str,
                    escape: Callable[[str], str], unsafe: bool = False) -> tuple[Path, BuiltFrom]:
    """Load `path` with `code`, rebuild it as plain Functional models, save that; return the
    saved file (removed when the process ends) and what was done. Layers are named in what
    it reports as `escape` writes one layer's name in a path (the caller's name syntax)."""
    stat = Path(path).stat()  # a file rewritten since (a library session) is built anew
    key = (f"{Path(path).resolve()}:{stat.st_mtime_ns}:{stat.st_size}", code, unsafe)
    if key in _built:
        return _built[key][0], _built[key][1]
    custom = loading.load_custom_objects(code)  # imports it: its classes register themselves
    model = loading.load_model(path, unsafe=unsafe, custom_objects=custom)
    if not private.is_functional(model):
        raise LoadError(
            f"{path}: {class_name!r} is a subclassed model with its own call(), not one built "
            "with the functional API; it has no layer graph keras-cut could cut"
        )
    rebuilt: list[str] = []
    plain = _plain(model, path, rebuilt)
    folder = tempfile.mkdtemp(prefix="keras-cut-functional-")
    _folders.append(folder)
    target = Path(folder) / (Path(path).stem + ".keras")
    try:
        plain.save(target)
    except Exception as exc:
        raise LoadError(
            f"{path}: Keras could not save the functional graph of {class_name!r} "
            f"({loading.one_line(exc, 1000)})"
        ) from exc
    built = BuiltFrom(class_name, registered_name, code, tuple(rebuilt),
                      tuple(_unbuildable(plain, "", escape) + _shared_across_models(plain, escape)),
                      _output_shapes(plain, "", escape))
    _built[key] = (target, built, model)
    return target, built


def built_model(copy: Path) -> Any:
    """The model object (of its own class) whose functional graph was saved to `copy`."""
    for target, _, model in _built.values():
        if target == copy:
            return model
    return None


def _plain(layer: Any, path: Path, rebuilt: list[str]) -> Any:
    """`layer` itself, or a plain Functional of the same layer objects where it (or a model
    inside it) is a Functional subclass."""
    if not private.is_functional(layer) or not _needs_rebuild(layer):
        return layer
    if private.overrides_call(layer):
        raise LoadError(
            f"{path}: {type(layer).__name__!r} ({layer.name}) overrides call(), so what it "
            "computes is not its functional graph; keras-cut will not cut it"
        )
    keras = loading.keras_module()
    # New inputs named as the model's own input layers: clone_model would name them after
    # their tensors (`keras_tensor` for an unnamed keras.Input), which the loaded model, fed
    # by input name, does not know.
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, sparse=t.sparse,
                              name=private.history(t)[0].name), layer.input)
    copy = keras.models.clone_model(layer, input_tensors=inputs,
                                    clone_function=lambda op: _plain(op, path, rebuilt))
    if not private.is_plain_functional(copy):
        raise LoadError(f"{path}: could not rebuild {layer.name!r} as a Functional model")
    rebuilt.append(layer.name)
    return copy


def _unbuildable(model: Any, prefix: str, escape: Callable[[str], str]) -> list[tuple[str, str]]:
    """Layers that `from_config(get_config())` does not rebuild: what loading any file that
    keeps them would hit (keras_hub 0.32's ViTPatchingAndEmbedding saves arguments its
    constructor refuses). Building a layer from its config creates no weights."""
    found = []
    for layer in model.layers:
        path = prefix + escape(layer.name)
        if private.is_functional(layer):
            found += _unbuildable(layer, path + "/", escape)
            continue
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            type(layer).from_config(layer.get_config())
        except Exception as exc:  # the package's code: any failure means "will not load"
            why = loading.one_line(exc, 100_000)
            # Keras wraps it: "Error when deserializing class … using config={…}. Exception
            # encountered: <the class's own error>"
            why = why.rsplit("Exception encountered:", 1)[-1].strip()
            found.append((path, f"its own saved config does not rebuild it ({why[:300]}), "
                                "a bug in the class's get_config"))
    return found


def _output_shapes(model: Any, prefix: str,
                   escape: Callable[[str], str]) -> dict[str, list[list[tuple[Any, ...]]]]:
    """Each layer's calls' output shapes, by path, as the built graph has them."""
    found: dict[str, list[list[tuple[Any, ...]]]] = {}
    for layer in model.layers:
        path = prefix + escape(layer.name)
        if private.is_functional(layer):
            found.update(_output_shapes(layer, path + "/", escape))
        else:
            found[path] = [private.output_shapes(node)
                           for node in private.own_calls(model, layer)]
    return found


def _shared_across_models(model: Any, escape: Callable[[str], str]) -> list[tuple[str, str]]:
    """Layer objects used in two models of the graph (GPT2CausalLM's output layer is its
    backbone's `token_embedding`, called again with reverse=True: tied weights). Keras saves a
    layer's arrays once, where it meets it first, and its other place in an empty group; a
    file that keeps the other place cannot be loaded (Keras' own files neither)."""
    first: dict[int, str] = {}
    found = []

    def walk(graph: Any, prefix: str) -> None:
        for layer in graph.layers:
            path = prefix + escape(layer.name)
            if id(layer) in first:
                found.append((path, f"the same layer object as {first[id(layer)]!r}, whose "
                              "arrays Keras saves only there (weights tied across models)"))
                continue
            first[id(layer)] = path
            if private.is_functional(layer):
                walk(layer, path + "/")

    walk(model, "")
    return found


def _needs_rebuild(layer: Any) -> bool:
    if not private.is_functional(layer):
        return False
    if not private.is_plain_functional(layer):
        return True
    return any(_needs_rebuild(inner) for inner in layer.layers)
