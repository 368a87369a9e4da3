"""Every intermediate tensor of a `.onnx` artifact in one ONNX Runtime run: a copy of the graph
with each node's outputs added as graph outputs (the artifact itself is not changed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keras_cut.backend.native import error_line, missing_runtime, quiet_native_logs
from keras_cut.core.errors import ArtifactError


def intermediate_tensors(path: Path, feed: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of every node output, in the graph's node order (ONNX requires
    topological order), on `feed` (inputs by name)."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise missing_runtime(path, "onnxruntime", "onnx") from exc
    model = onnx.load(str(path))
    declared = {o.name for o in model.graph.output}
    names = [name for node in model.graph.node for name in node.output
             if name and name not in declared]
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # the graph as written: no fusing that would compute other intermediates than the file's
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        with quiet_native_logs():
            session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                                   providers=["CPUExecutionProvider"])
            wanted = [i.name for i in session.get_inputs()]
            values = session.run(names, {name: feed[name] for name in wanted})
    except Exception as exc:  # the runtime's own error types differ by build
        raise ArtifactError(f"{path}: ONNX Runtime could not run the artifact with its "
                            f"intermediate tensors as outputs ({error_line(exc)})") from exc
    return list(zip(names, values, strict=True))
