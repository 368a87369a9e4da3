"""keras-cut: take saved Keras models apart — inspect, cut, verify, draw, diff.

The library API returns plain dataclasses with `to_dict()`; it never imports Typer or Rich,
and imports TensorFlow only when a model must be built or run. Names are imported on first use,
so that `keras-cut --help` and `inspect` start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "CutResult": "cut.cutting", "cut_model": "cut.cutting", "convert_model": "cut.cutting",
    "ChangeKind": "diff.filediff", "DiffReport": "diff.diffing", "diff_models": "diff.diffing",
    "Drawing": "draw.drawing", "draw_model": "draw.drawing",
    "ExportResult": "export.exporting", "export_model": "export.exporting",
    "Repro": "export.repro", "save_repro": "export.repro",
    "KerasCutError": "core.errors", "Option": "core.errors",
    "Endpoint": "model.endpoint", "Role": "model.endpoint",
    "Tolerances": "verify.comparison",
    "InspectReport": "inspect.inspection", "inspect_layer": "inspect.inspection",
    "inspect_model": "inspect.inspection",
    "VerifyReport": "verify.report", "verify_models": "verify.verification",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'keras_cut' has no attribute {name!r}")
