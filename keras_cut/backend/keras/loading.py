"""Load models with Keras' own loaders: compile=False, safe mode unless the user opts out."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keras_cut.backend.keras import private
from keras_cut.core.errors import LoadError, Option, UsageError

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


def use_threads(threads: int) -> bool:
    """Run TensorFlow's operations on `threads` threads (when two processes share the cores);
    False when TensorFlow has already started its thread pools and cannot change them."""
    keras_module()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the runtime is initialised already (a library user's session)
        return False
    return True


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


def load_custom_objects(spec: str | None) -> dict[str, Any]:
    """Classes and functions from a Python file or an importable module (runs that code)."""
    if not spec:
        return {}
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise UsageError(Option.CUSTOM_OBJECTS, f" {spec}: no such Python file")
        module_spec = importlib.util.spec_from_file_location(f"keras_cut_custom_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(Option.CUSTOM_OBJECTS, f" {spec}: cannot be imported")
        module = importlib.util.module_from_spec(module_spec)
        keras_module()  # custom code usually imports keras; do it quietly first
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: report it as theirs
            raise UsageError(Option.CUSTOM_OBJECTS, f" {spec} failed to import: {exc}") from exc
    else:
        keras_module()
        try:
            module = importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            top = spec.split(".")[0]
            if exc.name == top:
                raise UsageError(
                    Option.CUSTOM_OBJECTS,
                    f" {spec}: no module {top!r} is installed where keras-cut runs "
                    f"({sys.executable}); install it (pip install "
                    f"{top.replace('_', '-')}) or give a .py file"
                ) from exc
            raise UsageError(Option.CUSTOM_OBJECTS,
                             f" {spec}: cannot import module ({exc})") from exc
        except Exception as exc:
            raise UsageError(Option.CUSTOM_OBJECTS,
                             f" {spec}: cannot import module ({exc})") from exc
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
        raise LoadError(f"{path}: Keras could not load the model ({one_line(exc)})") from exc


def load_normalized(model_file: Any, unsafe: bool = False,
                    custom_objects: dict[str, Any] | None = None) -> Any:
    """Build a model from a normalised legacy config, then load weights by name from the file."""
    try:
        model = _from_legacy_config(model_file.config, custom_objects, unsafe)
    except Exception as exc:
        raise LoadError(
            f"{model_file.path}: Keras 3 cannot build even the normalised legacy config "
            f"({one_line(exc)})"
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
    if unsafe:
        keras.config.enable_unsafe_deserialization()
    return private.legacy_model_from_config(config, custom_objects, safe_mode=not unsafe)


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(exc: BaseException, limit: int = 300) -> str:
    """Keras' messages span lines, colour a part with terminal codes and end with the arguments
    of the failing call; an error here is one line of what went wrong."""
    text = ANSI.sub("", str(exc)).split("Arguments received by", 1)[0]
    text = text.replace("Exception encountered when calling", "in")
    return " ".join(text.split())[:limit]


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
    # By name only where names are unique on both sides: a Bidirectional layer holds two
    # `kernel`s (forward and backward), which only their order tells apart.
    if len(set(names)) == len(names) == len(by_name) and set(names) == set(by_name):
        pairs = [(by_name[n], value, n) for n, value in zip(names, values, strict=False)]
    else:
        pairs = [(v, value, n) for v, value, n in zip(variables, values, names, strict=False)]
    for variable, value, name in pairs:
        if tuple(variable.shape) != tuple(value.shape):
            raise LoadError(
                f"{where}: weight {path}/{name} has shape {tuple(value.shape)}, Keras 3 builds "
                f"{tuple(variable.shape)}; the legacy weights cannot be mapped"
            )
        variable.assign(value)


def keras_layer(model: Any, path: list[str]) -> Any:
    """The layer object at a path of names (through nested models)."""
    owner = model
    for name in path:
        owner = owner.get_layer(name)
    return owner


