"""Library results for people (Rich) or machines (one JSON document): one module per command
(`inspect_view`, `cut_view`, `verify_view`, `diff_view`) over `tables` and `console`. This
module names what the command line uses."""

from __future__ import annotations

from keras_cut.present.console import ShownConsole, print_json, stderr_console, stdout_console
from keras_cut.present.cut_view import render_cut
from keras_cut.present.diff_view import render_diff
from keras_cut.present.export_view import render_export
from keras_cut.present.inspect_view import (
    COLUMNS,
    parse_columns,
    render_class_model,
    render_inspect,
    render_layer,
)
from keras_cut.present.tables import Grid
from keras_cut.present.verify_view import render_verify

__all__ = ["COLUMNS", "Grid", "ShownConsole", "parse_columns", "print_json", "render_class_model",
           "render_cut", "render_diff", "render_export", "render_inspect", "render_layer",
           "render_verify", "stderr_console", "stdout_console"]
