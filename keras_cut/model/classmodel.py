"""Models saved as a class and its constructor arguments (keras_hub backbones and tasks).

A subclass of `keras.Model` built with the functional API (`BertBackbone`, `GPT2Backbone`,
`BertTextClassifier`) saves the arguments of its constructor, not its layer graph: the graph
exists only when the class's code runs. Without that code, keras-cut shows what the file
itself says (this module, no TensorFlow): the class, the constructor config, the weights
tree and the package loading needs. With it (`--custom-objects keras_hub`, an explicit
opt-in), `backend.materialize` builds the model and saves its functional graph, which every
command then reads like any Functional model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from keras_cut.core.errors import ModelFileError, Option
from keras_cut.core.jsonvalues import as_dict
from keras_cut.core.packages import is_keras_module, package_of
from keras_cut.file.modelfile import ModelFile, is_model_config
from keras_cut.model.safety import UNLOADABLE, Finding, FindingKind, config_findings, needs_text


def is_class_model(model_file: ModelFile) -> bool:
    """The top-level config holds constructor arguments, not layers."""
    return not is_model_config(model_file.config)


def describe_class(model_file: ModelFile) -> str:
    """`'BertBackbone' (keras_hub>BertBackbone)`: how messages name the saved class."""
    config = model_file.config
    name = str(config.get("class_name"))
    registered = config.get("registered_name")
    if isinstance(registered, str) and registered and registered != name:
        return f"{name!r} ({registered})"
    return repr(name)


def package_of_file(model_file: ModelFile) -> str | None:
    """The package whose code builds the model (`keras_hub`), from the config's module."""
    config = model_file.config
    return package_of(_text(config.get("module")), _text(config.get("registered_name")))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def needs_code_error(model_file: ModelFile, what: str) -> ModelFileError:
    """The one-line refusal when a command needs the layer graph and no code was given."""
    package = package_of_file(model_file)
    code = package or "FILE.py"
    install = f"; install it with pip install {package.replace('_', '-')}" if package else ""
    return ModelFileError(
        f"{model_file.path}: the model is a {describe_class(model_file)}, whose layer graph "
        f"exists only in {package + chr(39) + 's' if package else 'its'} code; to {what} it, "
        "let keras-cut build it with ", Option.CUSTOM_OBJECTS, f" {code} (this runs that code"
        f"{install}), or run `keras-cut inspect` without it to see what the file holds"
    )


def nested_class_models(model_file: ModelFile, graph: Any) -> list[str]:
    """Paths of layers that are models saved as their class (a backbone inside a user's
    Functional model): not Keras, no layers in their config, but their weights are grouped
    under `layers/` as a model's are."""
    found: list[str] = []

    def walk(graph: Any, key: tuple[str, ...]) -> None:
        for layer in graph.layers:
            if layer.submodel is not None:
                walk(layer.submodel, key + (layer.name,))
                continue
            if layer.module is None or is_keras_module(layer.module):
                continue
            group = model_file.groups.get(key + (layer.name,))
            if group and any(p.startswith(group + "/layers/") for p in model_file.arrays):
                found.append(layer.path)

    walk(graph, ())
    return found


@dataclass
class ArrayInfo:
    name: str  # inside its group: "vars/0"
    path: str  # in the weight file: "layers/dense/vars/0"
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class WeightGroup:
    """One group of the weight file with the arrays and groups under it."""

    name: str
    path: str
    arrays: list[ArrayInfo] = field(default_factory=list)
    groups: list[WeightGroup] = field(default_factory=list)
    params: int = 0
    nbytes: int = 0
    # the optimizer's (or other training) state Keras saves beside the model: not params
    training_state: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "params": self.params,
                "training_state": self.training_state,
                "bytes": self.nbytes, "arrays": [a.to_dict() for a in self.arrays],
                "groups": [g.to_dict() for g in self.groups]}


@dataclass
class FileHeader:
    """What every `inspect` report starts with: the file and the model it holds."""

    file: str
    format: str
    keras_version: str | None
    date_saved: str | None
    name: str
    class_name: str

    def header_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "keras_version": self.keras_version,
                "date_saved": self.date_saved, "name": self.name, "class_name": self.class_name}


@dataclass
class ClassModelReport(FileHeader):
    """`inspect` of a model saved as a class and its constructor arguments, without its code."""

    registered_name: str | None
    module: str | None
    package: str | None  # what loading needs (`keras_hub`)
    config: dict[str, Any]  # the constructor arguments, as saved
    weights: WeightGroup
    total_params: int
    weight_bytes: int
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.header_dict(),
            "registered_name": self.registered_name, "module": self.module,
            "layer_graph": False, "needs": self.package,
            "config": self.config, "weights": self.weights.to_dict(),
            "total_params": self.total_params, "weight_bytes": self.weight_bytes,
            "findings": [f.to_dict() for f in self.findings],
        }


def inspect_class_model(model_file: ModelFile) -> ClassModelReport:
    """What the file itself says of a model saved as a class: nothing runs."""
    config = model_file.config
    inner = as_dict(config.get("config"))
    module, registered = _text(config.get("module")), _text(config.get("registered_name"))
    package = package_of_file(model_file)
    tree = weights_tree(model_file)
    findings = [Finding(
        "", UNLOADABLE, FindingKind.CUSTOM,
        f"the model is a {describe_class(model_file)} from "
        f"{module or 'code outside Keras'}: its layer graph exists only in that code; "
        f"loading {needs_text(module or package)}, and so does "
        "seeing its layers, cutting and verifying it", package,
    )]
    findings.extend(config_findings("", inner))
    name = str(inner["name"]) if isinstance(inner.get("name"), str) else str(
        config.get("class_name"))
    return ClassModelReport(
        file=str(model_file.path), format=model_file.format,
        keras_version=model_file.keras_version, date_saved=model_file.date_saved,
        name=name, class_name=str(config.get("class_name")), registered_name=registered,
        module=module, package=package, config=inner, weights=tree,
        total_params=tree.params, weight_bytes=tree.nbytes, findings=findings,
    )


def weights_tree(model_file: ModelFile) -> WeightGroup:
    """Every stored array, grouped as the weight file groups them, with totals per group."""
    from keras_cut.file.modelfile import itemsize

    root = WeightGroup("", "")
    for path in sorted(model_file.arrays, key=_natural):
        shape, dtype = model_file.arrays[path]
        parts = path.split("/")
        # `vars/0` belongs to the group above it: one row per layer, not per `vars`
        split = len(parts) - 2 if len(parts) >= 2 and parts[-2] == "vars" else len(parts) - 1
        group = root
        for i in range(split):
            child = next((g for g in group.groups if g.name == parts[i]), None)
            if child is None:
                child = WeightGroup(parts[i], "/".join(parts[:i + 1]))
                group.groups.append(child)
            group = child
        group.arrays.append(ArrayInfo("/".join(parts[split:]), path, shape, dtype))
    for group in root.groups:
        group.training_state = group.name not in MODEL_STATE
    _total(root, itemsize)
    return root


# What a model's own state is saved under; the rest at the top (`optimizer`) is training state.
MODEL_STATE = ("layers", "vars", "model_weights")


def _total(group: WeightGroup, itemsize: Any) -> None:
    group.params = sum(a.size for a in group.arrays)
    group.nbytes = sum(a.size * itemsize(a.dtype) for a in group.arrays)
    for child in group.groups:
        _total(child, itemsize)
        if not child.training_state:
            group.params += child.params
            group.nbytes += child.nbytes


def _natural(path: str) -> list[tuple[int, int, str]]:
    """`layers/dense_2` before `layers/dense_10`, `vars/2` before `vars/10`."""
    import re

    return [(0, int(p), "") if p.isdigit() else (1, 0, p)
            for p in re.split(r"(\d+)", path) if p]
