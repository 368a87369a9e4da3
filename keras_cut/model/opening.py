"""Opening a model file: read it and build its layer graph, the one way every operation starts.

A model saved as its class (a keras_hub backbone) has no graph in the file; with the user's
opt-in to run its code, the Keras backend builds it and writes its functional graph to a
temporary file, which is read instead.
"""

from __future__ import annotations

from pathlib import Path

from keras_cut.core.jsonvalues import as_dict
from keras_cut.file.modelfile import ModelFile
from keras_cut.file.reading import read_model_file
from keras_cut.model.classmodel import is_class_model, needs_code_error, nested_class_models
from keras_cut.model.graph import LayerGraph, build_graph
from keras_cut.model.names import escape
from keras_cut.model.safety import find_hazards


def open_model(path: str | Path, code: str | None = None, unsafe: bool = False,
               what: str = "see the layers of") -> tuple[ModelFile, LayerGraph]:
    """Read a model file and build its graph; the one way every command opens a file.

    A model saved as its class (a keras_hub backbone) has no graph in the file: with `code`
    (`--custom-objects`, the user's opt-in to running it) it is built and its functional
    graph read instead (`backend.materialize`); without, the error says so (`what` the
    command wanted to do)."""
    return graph_of(read_model_file(path), code, unsafe, what)


def graph_of(model_file: ModelFile, code: str | None = None, unsafe: bool = False,
             what: str = "see the layers of") -> tuple[ModelFile, LayerGraph]:
    """`open_model` for a file already read."""
    if is_class_model(model_file):
        if not code:
            raise needs_code_error(model_file, what)
        return _built_from_code(model_file, code, unsafe)
    graph = build_graph(model_file)
    if code and nested_class_models(model_file, graph):
        return _built_from_code(model_file, code, unsafe, graph)
    return model_file, graph


def _built_from_code(model_file: ModelFile, code: str, unsafe: bool,
                     graph: LayerGraph | None = None) -> tuple[ModelFile, LayerGraph]:
    from keras_cut.backend.keras import materialize
    from keras_cut.model.safety import UNSAFE, check_loadable, config_findings

    # building runs the model's code: what would run code from the file needs --unsafe first
    config = model_file.config
    inner = as_dict(config.get("config"))
    found = find_hazards(model_file, graph) if graph is not None else \
        list(config_findings("", inner))
    check_loadable(model_file.path, [f for f in found if f.severity == UNSAFE], unsafe, True)
    registered = config.get("registered_name")
    storage, built_from = materialize.functional_copy(
        model_file.path, str(config.get("class_name")),
        registered if isinstance(registered, str) else None, code, escape, unsafe)
    built = read_model_file(storage)
    built.path, built.storage, built.built_from = model_file.path, storage, built_from
    built.date_saved, built.keras_version = model_file.date_saved, model_file.keras_version
    built.format = model_file.format
    return built, build_graph(built)
