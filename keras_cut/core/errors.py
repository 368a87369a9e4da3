"""The user-error tree: everything a user can cause, each exiting 2 with one line.

Anything that is not a `KerasCutError` is a bug in keras-cut and shows its traceback.

An error carries its message as parts: text, and the settings (`Option`) it names. The library
spells a setting as its parameter (`output_layers`, `unsafe=True`); the command line spells
it as its flag (`--output-layer`, `--unsafe`): `text(spell)` writes the message either way, and
`str(error)` is the library's.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class Option(StrEnum):
    """A setting a user chose, named as the library's parameter."""

    OUTPUT_LAYERS = "output_layers"
    INPUT_LAYERS = "input_layers"
    UNSAFE = "unsafe"
    CUSTOM_OBJECTS = "custom_objects"
    INPUTS = "inputs"
    INPUT_SHAPES = "input_shapes"
    FILTER = "filter"
    DEPTH = "depth"
    SEED = "seed"
    SAMPLES = "samples"
    BATCH_SIZE = "batch_size"
    SAVE_GOLDEN = "save_golden"
    ATOL = "atol"
    RTOL = "rtol"
    FORCE = "force"
    VERIFY = "verify"
    MIN_COSINE = "min_cosine"
    QUANTIZE = "quantize"
    CALIBRATION = "calibration"
    FORMAT = "format"
    LOCATE = "locate"
    HTML = "html"
    SAVE_REPRO = "save_repro"
    KEEP_FLOAT = "keep_float"
    BISECT = "bisect"


# True or False
SWITCHES = {Option.UNSAFE, Option.FORCE, Option.VERIFY, Option.LOCATE, Option.BISECT}


def library_spelling(option: Option) -> str:
    """How the Python API names a setting in a message: `unsafe=True`, `output_layers`."""
    return f"{option.value}=True" if option in SWITCHES else option.value


Part = str | Option


class KerasCutError(Exception):
    """A problem the user can fix; the message names the file/layer and what to do."""

    exit_code = 2

    def __init__(self, *parts: Part, layer: str | None = None):
        self.parts: tuple[Part, ...] = parts
        self.layer = layer  # the layer (as the user named it) the error is about, if one
        super().__init__(self.text(library_spelling))

    @property
    def options(self) -> list[Option]:
        """The settings the message names, in order."""
        return [p for p in self.parts if isinstance(p, Option)]

    def text(self, spell: Callable[[Option], str]) -> str:
        return "".join(spell(p) if isinstance(p, Option) else p for p in self.parts)

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled with its parts (verify's second process sends its errors back whole)."""
        return _rebuild, (type(self), self.parts, self.layer)

    def replaced(self, old: str, new: str) -> KerasCutError:
        """The same error with `old` written as `new` in its text parts."""
        copy = type(self)(*(p if isinstance(p, Option) else p.replace(old, new)
                            for p in self.parts), layer=self.layer)
        return copy


def _rebuild(kind: type[KerasCutError], parts: tuple[Part, ...],
             layer: str | None) -> KerasCutError:
    return kind(*parts, layer=layer)


class ModelFileError(KerasCutError):
    """The file cannot be read as a Keras model (missing, corrupt, not a model)."""


class UnsafeModelError(KerasCutError):
    """The file would run code or touch other files if loaded; refused without the opt-in."""


class LayerNameError(KerasCutError):
    """A layer name or path that the model does not have, or that is ambiguous."""


class CutError(KerasCutError):
    """The requested cut cannot be built from this graph."""


class OutputError(KerasCutError):
    """Writing the result is refused or failed (exists, same as input, bad folder)."""


class UsageError(KerasCutError):
    """An option value that makes no sense (bad shape, bad count, bad input file)."""


class LoadError(KerasCutError):
    """Keras could not build or load the model (custom classes, config Keras refuses)."""


class RunError(KerasCutError):
    """Keras could not run a model on the inputs verify gave it (often data out of range)."""


class ArtifactError(KerasCutError):
    """An artifact its runtime cannot load or run, or a runtime that is not installed."""
