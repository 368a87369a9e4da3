"""keras-cut: take saved Keras models apart — inspect, cut, verify.

The library API returns plain dataclasses with `to_dict()`; it never imports Typer or Rich,
and imports TensorFlow only when a model must be built or run.
"""

from .errors import KerasCutError
from .inspection import InspectReport, inspect_layer, inspect_model

__version__ = "0.1.0"

__all__ = ["KerasCutError", "InspectReport", "inspect_layer", "inspect_model", "__version__"]
