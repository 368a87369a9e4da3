"""What a shell completes: layer names read from the model file on the command line, and model
files. Reading only the config (never the weights) keeps it well under a quarter of a second on
ResNet50, so completion can run on every Tab."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from keras_cut.core.errors import KerasCutError
from keras_cut.core.shown import name as shown_name
from keras_cut.model.names import format_name

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def layer_names(model: str | Path) -> list[str]:
    """Every name a layer option accepts, as typed: paths, nested paths, `NAME@N` for each call
    of a layer called several times, in the model's order; [] if the file cannot be read."""
    from keras_cut.file.reading import read_model_file
    from keras_cut.model.graph import LayerGraph, build_graph

    try:
        graph = build_graph(read_model_file(model, weights=False))
    except (KerasCutError, OSError, ValueError, RecursionError):
        return []
    names: list[str] = []

    def walk(g: LayerGraph, prefix: list[tuple[str, int | None]]) -> None:
        for layer in g.layers:
            here = prefix + [(layer.name, None)]
            names.append(format_name(here))
            calls = [prefix + [(layer.name, c.index)] for c in layer.calls] \
                if len(layer.calls) > 1 else []
            names.extend(format_name(call) for call in calls)
            if layer.submodel is not None:
                walk(layer.submodel, here)
                for call in calls:  # inside one call of a model called several times
                    walk(layer.submodel, call)

    walk(graph, [])
    return list(dict.fromkeys(names))


def complete_layer(model: str | Path | None, incomplete: str) -> list[str]:
    """Layer names of `model` that start with what has been typed (case-sensitive, as Keras
    names are; a name without a match of its own case matches ignoring case). Bash inserts a
    completion as it is, so there a name with a backslash escape comes quoted."""
    if model is None:
        return []
    model = typed_path(str(model))
    if not Path(model).is_file():
        return []
    # a name holding control or bidirectional characters cannot be offered on a command line
    # safely (they would reach the terminal and the shell as they are): it is typed by hand
    names = [n for n in layer_names(model) if shown_name(n) == n]
    found = [n for n in names if n.startswith(incomplete)]
    if not found:
        found = [n for n in names if n.lower().startswith(incomplete.lower())]
    if os.environ.get("_KERAS_CUT_COMPLETE", "").endswith("bash"):
        found = [_bash_escaped(n) for n in found]
    return found


def _bash_escaped(name: str) -> str:
    """What to put on a bash command line so that the program receives `name`: a backslash
    before each character the shell would take (keras-cut's own escapes included)."""
    return "".join("\\" + c if c in SHELL_SPECIAL else c for c in name)


SHELL_SPECIAL = set("\\[]*?$`\"' !&;|<>(){}#~")


def model_on_command_line() -> str | None:
    """The model file anywhere on the line being completed (it may come after the option):
    the first word that names an existing model file, from the shell's completion variables."""
    line = os.environ.get("COMP_WORDS") or os.environ.get("_TYPER_COMPLETE_ARGS") or ""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    for word in words[1:]:
        path = typed_path(word)
        if path.lower().endswith(MODEL_SUFFIXES) and Path(path).is_file():
            return path
    return None


def typed_path(word: str) -> str:
    """A path as the shell will expand it once the line runs (`~/m.keras`, `$HOME/m.keras`):
    completion sees the words as typed."""
    return os.path.expandvars(os.path.expanduser(word))


def complete_model_file(incomplete: str) -> list[str]:
    """Model files (and folders, to descend into) whose path starts with what has been typed."""
    if "/" in incomplete:
        folder, _, stem = incomplete.rpartition("/")
        where, prefix = Path(os.path.expanduser(folder or "/")), folder + "/"
    else:
        where, stem, prefix = Path("."), incomplete, ""
    try:
        entries = sorted(os.scandir(where), key=lambda e: e.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem):
            continue
        shown = prefix + entry.name
        if entry.is_dir():
            found.append(shown + "/")
        elif entry.name.lower().endswith(MODEL_SUFFIXES):
            found.append(shown)
    return found
