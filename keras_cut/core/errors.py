"""The user-error tree: everything a user can cause, each exiting 2 with one line.

Anything that is not a `KerasCutError` is a bug in keras-cut and shows its traceback.
"""

from __future__ import annotations


class KerasCutError(Exception):
    """A problem the user can fix; the message names the file/layer and what to do."""

    exit_code = 2


class ModelFileError(KerasCutError):
    """The file cannot be read as a Keras model (missing, corrupt, not a model)."""


class UnsafeModelError(KerasCutError):
    """The file would run code or touch other files if loaded; refused without --unsafe."""


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
