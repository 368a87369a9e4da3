"""What in a model would run code, read other files, or fail to load — found from the config.

Severity decides what `cut` and `verify` do before any loading:
- "unsafe": loading would run code from the file or touch other files; refused without --unsafe;
- "unloadable": needs code the file does not carry (custom classes); needs --custom-objects;
- "broken": the weights do not fit the config (missing, extra or mis-shaped arrays); refused;
- "warning": worth knowing, loads anyway (e.g. weights the config does not account for);
- "note": what keras-cut changed to load a tf.keras 2 config in Keras 3.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from keras_cut.core.errors import LoadError, ModelFileError, Option, UnsafeModelError
from keras_cut.core.packages import is_keras_module, needed_package, package_of, registered_package
from keras_cut.file.modelfile import ModelFile
from keras_cut.layers import known
from keras_cut.layers.known import TF_OP_LAYERS, expected_shapes, implausible, weight_specs
from keras_cut.layers.shapes import format_shape
from keras_cut.layers.tfops import LEGACY_SEMANTICS
from keras_cut.model.graph import MODEL_CLASSES, Layer, LayerGraph


class Severity(StrEnum):
    """What a finding means for `cut` and `verify` (the module docstring says each)."""

    UNSAFE = "unsafe"
    UNLOADABLE = "unloadable"
    BROKEN = "broken"
    WARNING = "warning"
    NOTE = "note"


class FindingKind(StrEnum):
    """What a finding is about."""

    CODE = "code"  # the file would run code (Lambda, a TorchModuleWrapper, a stored function)
    FILE = "file"  # the file would read other files (vocabulary paths, a SavedModel)
    CUSTOM = "custom"  # a class or function the file does not carry
    CONFIG = "config"  # a layer whose saved config does not rebuild it
    WEIGHTS = "weights"  # arrays missing, extra or mis-shaped for the config
    LEGACY = "legacy"  # what keras-cut changed to read a tf.keras 2 config
    LEGACY_SEMANTICS = "legacy-semantics"  # tf.keras 2 arguments Keras 3 computes differently
    TF_OP = "tf-op"  # a TensorFlow op stored as a layer (TFOpLambda) with no translation


UNSAFE, UNLOADABLE, BROKEN = Severity.UNSAFE, Severity.UNLOADABLE, Severity.BROKEN
WARNING, NOTE = Severity.WARNING, Severity.NOTE



@dataclass(frozen=True)
class Finding:
    layer: str  # layer path, or "" for the whole file
    severity: Severity
    kind: FindingKind
    message: str
    needs: str | None = None  # the package loading needs ("keras_hub"), where one is known

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def find_hazards(model_file: ModelFile, graph: LayerGraph) -> list[Finding]:
    """Everything in the file that is unsafe, unloadable or suspicious, layer by layer."""
    found: list[Finding] = []
    for _, layer, owner in graph.walk():
        found.extend(_layer_findings(layer))
        found.extend(_weight_shape_findings(layer, owner))
        found.extend(_nested_input_findings(layer, owner))
    for change in model_file.legacy_changes:
        found.append(Finding(change.layer, NOTE, FindingKind.LEGACY, change.message))
    built = model_file.built_from
    if built is not None:
        package = registered_package(built.registered_name) or needed_package(built.code)
        found.append(Finding(
            "", UNLOADABLE, FindingKind.CUSTOM,
            f"the file holds a {built.class_name!r} ({built.registered_name or 'custom'}): "
            f"loading it needs {built.code} (--custom-objects {built.code}); the layer graph "
            "shown was built by running that code", package))
    for layer, why in (built.unbuildable if built is not None else ()):
        assert built is not None
        found.append(Finding(
            layer, UNLOADABLE, FindingKind.CONFIG,
            f"{why}: the model loads through its class ({built.class_name}), but a file "
            "that keeps this layer cannot be loaded; cut around it",
            built.code))
    if model_file.stray_weights:
        shown = ", ".join(model_file.stray_weights[:3])
        more = f" and {len(model_file.stray_weights) - 3} more" if len(
            model_file.stray_weights
        ) > 3 else ""
        found.append(
            Finding(
                "", WARNING, FindingKind.WEIGHTS,
                f"the weight file holds arrays no layer accounts for ({shown}{more})",
            )
        )
    return found


def _layer_findings(layer: Layer) -> Iterator[Finding]:
    cls = layer.class_name
    hazard = known.entry(cls).hazard
    if hazard is not None and hazard.what == known.CODE:
        yield Finding(layer.path, UNSAFE, FindingKind.CODE, f"{cls}: {hazard.why}")
    elif hazard is not None and hazard.what == known.FOREIGN:
        yield Finding(layer.path, UNLOADABLE, FindingKind.CUSTOM, f"{cls}: {hazard.why}")
    elif cls in TF_OP_LAYERS:
        function = layer.config.get("function")
        yield Finding(
            layer.path, UNLOADABLE, FindingKind.TF_OP,
            f"a TensorFlow operation recorded by tf.keras 2 ({cls}, tf.{function}) that "
            "keras-cut cannot translate to Keras 3 (see the legacy notes): cut around it (a "
            "cut without it loads in Keras 3; one that keeps it can be written as .h5)",
        )
    elif not _is_keras_class(layer):
        origin = layer.registered_name or (
            f"{layer.module}.{cls}" if layer.module else cls
        )
        package = package_of(layer.module, layer.registered_name)
        yield Finding(
            layer.path, UNLOADABLE, FindingKind.CUSTOM,
            f"class {origin!r} is not part of Keras; loading {needs_text(package)}", package,
        )
    if isinstance(layer.raw.get(LEGACY_SEMANTICS), str):
        yield Finding(layer.path, UNLOADABLE, FindingKind.LEGACY_SEMANTICS,
                      layer.raw[LEGACY_SEMANTICS])
    odd = implausible(layer.config)
    if odd is not None:
        yield Finding(layer.path, BROKEN, FindingKind.CONFIG,
                      f"{odd[0]} is {odd[1]!r}, not a size Keras can build: the file is damaged "
                      "or was edited; its shapes and costs are shown as unknown")
    # a nested model's own layers are findings of their own, not of the model's config
    own = {k: v for k, v in layer.config.items() if k != "layers"} \
        if layer.submodel is not None else layer.config
    yield from config_findings(layer.path, own, cls == "Lambda")
    if hazard is not None and hazard.what == known.READS_FILES:
        for key in hazard.fields:
            value = layer.config.get(key)
            if isinstance(value, str) and value:
                yield Finding(
                    layer.path, UNSAFE, FindingKind.FILE,
                    f"{cls} reads its {key} from another file ({value!r})",
                )
    yield from _weight_count_findings(layer)


def needs_text(module: str | None) -> str:
    package = needed_package(module)
    return (f"needs {package} (--custom-objects {package})" if package
            else "needs its code (--custom-objects)")


def config_findings(where_layer: str, config: dict[str, Any],
                    is_lambda: bool = False) -> Iterator[Finding]:
    """Serialized objects inside a config that would run code or need code to load."""
    for where, obj in _nested_objects(config):
        if obj.get("class_name") == "__lambda__" and not is_lambda:
            yield Finding(
                where_layer, UNSAFE, FindingKind.CODE,
                f"{where}: serialized Python function (bytecode) that would run on load",
            )
        elif (name := _registered_function(obj)) is not None:
            package = name.split(">", 1)[0]
            yield Finding(
                where_layer, UNLOADABLE, FindingKind.CUSTOM,
                f"{where}: function {name!r} is not part of Keras; loading "
                f"{needs_text(package)}", needed_package(package),
            )
        elif _foreign_object(obj):
            name = str(obj.get("registered_name") or obj.get("class_name"))
            owner = package_of(_text(obj.get("module")), _text(obj.get("registered_name")))
            yield Finding(
                where_layer, UNLOADABLE, FindingKind.CUSTOM,
                f"{where}: {name!r} from module {obj.get('module')!r} is not part of Keras; "
                f"loading {needs_text(owner)}", owner,
            )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _weight_count_findings(layer: Layer) -> Iterator[Finding]:
    specs = weight_specs(layer.class_name, layer.config)
    if specs is None or layer.submodel is not None:
        return
    if len(layer.weights) not in (0, len(specs)) or (not layer.weights and specs):
        yield Finding(
            layer.path, BROKEN, FindingKind.WEIGHTS,
            f"{layer.class_name} should store {len(specs)} array(s) "
            f"({', '.join(n for n, _ in specs)}) but the file holds {len(layer.weights)}",
        )


def _weight_shape_findings(layer: Layer, owner: LayerGraph) -> Iterator[Finding]:
    """Stored arrays whose shape contradicts the config (a weight file from another model)."""
    if not layer.weights or not layer.calls or not layer.calls[0].inputs:
        return
    input_shape = owner.tensor(layer.calls[0].inputs[0]).shape
    expected = expected_shapes(layer.class_name, layer.config, input_shape)
    for weight in layer.weights:
        want = expected.get(weight.name)
        if want is not None and tuple(weight.shape) != tuple(want):
            yield Finding(
                layer.path, BROKEN, FindingKind.WEIGHTS,
                f"{weight.name} is stored with shape {tuple(weight.shape)} but the config "
                f"implies {tuple(want)}; the weights do not belong to this architecture",
            )


def _nested_input_findings(layer: Layer, owner: LayerGraph) -> Iterator[Finding]:
    """A nested model called on a tensor its input cannot take (another last dimension or
    rank). Keras loads such a parent (a nested call is not checked against the inner input's
    shape), but it cannot run, and a cut that takes the inner layers out loads no more."""
    if layer.submodel is None:
        return
    inner = layer.submodel
    for call in layer.calls:
        if len(call.inputs) != len(inner.inputs):
            continue
        for ref, inner_ref in zip(call.inputs, inner.inputs, strict=True):
            given, takes = owner.tensor(ref).shape, inner.tensor(inner_ref).shape
            if given is None or takes is None:
                continue
            if len(given) != len(takes) or any(
                    a is not None and b is not None and a != b
                    for a, b in zip(given[1:], takes[1:], strict=True)):
                yield Finding(
                    layer.path, BROKEN, FindingKind.CONFIG,
                    f"call {call.index} passes {ref.layer!r} of shape {format_shape(given)} "
                    f"to input {inner_ref.layer!r}, which takes {format_shape(takes)}: the "
                    "model cannot run; the file is damaged or was edited")
                return


def _nested_objects(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Serialized objects inside a layer's config (activations, initializers, ...)."""
    stack: list[tuple[str, Any]] = [(k, v) for k, v in config.items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            if "class_name" in value:
                yield where, value
            stack.extend((f"{where}.{k}", v) for k, v in value.items() if isinstance(v, dict))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))


def _registered_function(obj: dict[str, Any]) -> str | None:
    """A function registered by a package, as Keras writes it: module `builtins`, class
    `function`, config `"keras_hub>gelu_approximate"`; None for anything else."""
    if obj.get("module") == "builtins" and obj.get("class_name") == "function":
        name = obj.get("config")
        if isinstance(name, str) and ">" in name:
            return name
    return None


def _foreign_object(obj: dict[str, Any]) -> bool:
    module = obj.get("module")
    registered = obj.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        return True
    if isinstance(module, str) and module and not is_keras_module(module):
        return True
    return False


def _is_keras_class(layer: Layer) -> bool:
    """Part of Keras only when the config's module says so (a class registered without a
    package prefix, as some keras_hub layers are, is not Keras because of its name)."""
    registered = layer.registered_name
    if registered and ">" in registered:
        return False
    if layer.module is not None:
        return is_keras_module(layer.module)
    return layer.class_name in MODEL_CLASSES or layer.class_name in keras_layer_classes()


@lru_cache(maxsize=1)
def keras_layer_classes() -> frozenset[str]:
    """Public Keras layer class names, read from the installed package's API file (no import)."""
    names: set[str] = {"InputLayer", "Functional", "Sequential", "Model"}
    spec = importlib.util.find_spec("keras")
    if spec and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            for api in (Path(base) / "layers" / "__init__.py",
                        Path(base) / "api" / "layers" / "__init__.py"):
                if api.exists():
                    # "from keras.src... import Conv2D as Convolution2D": the class is Conv2D.
                    names.update(re.findall(r"\b(\w+) as \w+", api.read_text()))
    return frozenset(names)


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
            "pass ", Option.UNSAFE, " only if you trust where this file came from"
        )
    other = [f for f in findings if f.kind is FindingKind.LEGACY_SEMANTICS]
    if other:
        raise LoadError(
            f"{path}: layer {other[0].layer!r} would compute other values in Keras 3 than in "
            f"tf.keras 2 ({other[0].message.split(';')[0]}): verify runs the parent in Keras 3, "
            "so it cannot use this file as the reference"
        )
    tf_ops = [f for f in findings if f.kind is FindingKind.TF_OP]
    if tf_ops:
        names = ", ".join(f.layer for f in tf_ops[:3]) + (", ..." if len(tf_ops) > 3 else "")
        raise LoadError(
            f"{path}: holds {len(tf_ops)} TensorFlow operation(s) recorded by tf.keras 2 "
            f"({names}) that Keras 3 cannot load and keras-cut cannot translate, "
            "so it cannot run here (a cut that leaves them out is a plain Keras 3 model)"
        )
    missing = [f for f in findings if f.severity == UNLOADABLE]
    if missing and not custom:
        where = "; ".join(f"{f.layer}: {f.message}" for f in missing[:3])
        raise LoadError(
            f"{path}: needs code that is not in the file ({where}); pass ",
            Option.CUSTOM_OBJECTS, " FILE.py or MODULE that defines it"
        )
