"""keras-cut: take saved Keras models apart — inspect, cut, verify.

The library API returns plain dataclasses with `to_dict()`; it never imports Typer or Rich,
and imports TensorFlow only when a model must be built or run.
"""

__version__ = "0.1.0"

from .cutting import CutResult, cut_model  # noqa: E402
from .errors import KerasCutError  # noqa: E402
from .inspection import InspectReport, inspect_layer, inspect_model  # noqa: E402
from .verification import VerifyReport, verify_models  # noqa: E402

__all__ = [
    "CutResult", "InspectReport", "KerasCutError", "VerifyReport", "__version__", "cut_model",
    "inspect_layer", "inspect_model", "verify_models",
]
