"""`export`: cut a model (the file-level cut `cut` makes), let Keras export the cut as a LiteRT or
ONNX artifact, and prove the artifact in its own runtime against the parent, on the inputs and
with the tolerances `verify` uses. Only a proven artifact is written where the user asked; one
that differs is kept beside it under another name, and the report says where.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keras_cut.backend.runtime import ARTIFACT_FORMATS, runtime_name, write_record
from keras_cut.core.errors import ArtifactError, KerasCutError, UsageError
from keras_cut.core.writing import atomic_output, check_output
from keras_cut.cut.cutting import CutResult, cut_model
from keras_cut.model.endpoint import Endpoint
from keras_cut.verify.comparison import Tolerances
from keras_cut.verify.report import (
    DEFAULT_BATCH,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    Progress,
    VerifyReport,
)

FORMAT_SUFFIXES = {fmt: suffix for suffix, fmt in ARTIFACT_FORMATS.items()}


@dataclass
class ExportResult:
    output: str  # the artifact: where the user asked, or where one that differs was kept
    format: str  # Keras' name for it: "litert", "onnx"
    runtime: str
    cut: CutResult  # the cut that was exported: its endpoints, notices and costs
    inputs: list[Endpoint]  # named as in the artifact, each with its parent tensor
    outputs: list[Endpoint]
    size_bytes: int
    verify: VerifyReport | None = None  # the proof (None with verify=False)
    notices: list[str] = field(default_factory=list)

    @property
    def proven(self) -> bool | None:
        return None if self.verify is None else self.verify.passed

    def to_dict(self) -> dict[str, Any]:
        cut = self.cut.to_dict()
        return {
            "output": self.output, "format": self.format, "runtime": self.runtime,
            "size_bytes": self.size_bytes, "proven": self.proven,
            "inputs": [e.to_dict() for e in self.inputs],
            "outputs": [e.to_dict() for e in self.outputs],
            "cut": {k: v for k, v in cut.items() if k not in ("output", "format", "size_bytes",
                                                              "verify", "notices")},
            "verify": self.verify.to_dict() if self.verify else None,
            "notices": self.notices,
        }


def export_model(
    model: str | Path,
    output: str | Path,
    output_layers: list[str] | tuple[str, ...] = (),
    input_layers: list[str] | tuple[str, ...] = (),
    format: str | None = None,
    verify: bool = True,
    tolerances: Tolerances | None = None,
    samples: int = DEFAULT_SAMPLES,
    batch_size: int = DEFAULT_BATCH,
    seed: int = DEFAULT_SEED,
    inputs: str | Path | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    force: bool = False,
    unsafe: bool = False,
    custom_objects: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export the cut of `model` (the whole model without layer names) to `output` as `format`
    (from the suffix: .tflite LiteRT, .onnx ONNX), proven in that runtime unless `verify` is
    False."""
    say = progress or (lambda _msg: None)
    model, output = Path(model), Path(output)
    fmt = _format(output, format)
    output = check_output(output, model, force, {FORMAT_SUFFIXES[fmt]: fmt})
    with tempfile.TemporaryDirectory(prefix="keras-cut-export-") as folder:
        cut_file = Path(folder) / "cut.keras"
        whole = not output_layers and not input_layers
        cut = cut_model(model, cut_file, output_layers, input_layers, progress=progress,
                        unsafe=unsafe, custom_objects=custom_objects, whole=whole)
        say(f"exporting {output} ({fmt})")
        from keras_cut.backend.keras import exporting, loading

        custom = loading.load_custom_objects(custom_objects)
        with atomic_output(output) as pending:
            try:
                order = exporting.export_file(cut_file, pending.path, fmt, unsafe, custom)
                names = _artifact_names(pending.path, fmt, verify)
                ins, outs = _named_endpoints(cut, order, names)
                if names is not None:
                    write_record(pending.path, fmt, json.dumps(
                        artifact_record(model, fmt, ins, outs), indent=1))
                report = None
                if verify:
                    from keras_cut.verify.verification import verify_models

                    report = verify_models(
                        model, cut_file, samples=samples, batch_size=batch_size, seed=seed,
                        tolerances=tolerances, inputs=inputs, input_shapes=input_shapes,
                        unsafe=unsafe, custom_objects=custom_objects, progress=progress,
                        submodel_label=str(output), artifact=(pending.path, fmt))
                    if not report.passed:
                        pending.target = _unproven_name(output)
            except KerasCutError as exc:  # it names the temporary file: name the user's
                raise exc.replaced(str(pending.path), str(output)) from exc
        written = pending.target
    notices = list(cut.notices)
    if report is not None and not report.passed:
        notices.append(f"the artifact's outputs differ from the parent's; it was kept as "
                       f"{written} for examination, not written to {output}")
    if names is None:
        notices.append("the artifact's runtime is not installed, so its input and output "
                       "names are the submodel's and it carries no keras-cut record")
    return ExportResult(
        output=str(written), format=fmt, runtime=runtime_name(fmt), cut=cut, inputs=ins,
        outputs=outs, size_bytes=written.stat().st_size, verify=report, notices=notices,
    )


def _format(output: Path, given: str | None) -> str:
    known = ", ".join(f"{suffix} ({fmt})" for suffix, fmt in ARTIFACT_FORMATS.items())
    if given is not None:
        if given not in FORMAT_SUFFIXES:
            raise UsageError(f"format {given!r} is not one keras-cut exports; it exports "
                             f"{known}")
        if output.suffix.lower() != FORMAT_SUFFIXES[given]:
            raise UsageError(f"{output}: a {given} artifact is named *{FORMAT_SUFFIXES[given]}")
        return given
    fmt = ARTIFACT_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise UsageError(f"{output}: keras-cut exports {known}; name the artifact after one")
    return fmt


def _unproven_name(output: Path) -> Path:
    candidate, n = output.with_name(f"{output.stem}.unproven{output.suffix}"), 1
    while candidate.exists():
        candidate = output.with_name(f"{output.stem}.unproven-{n}{output.suffix}")
        n += 1
    return candidate


def _artifact_names(path: Path, fmt: str, needed: bool) -> tuple[list[str], list[str]] | None:
    """The artifact's own input and output names, from its runtime; None where that runtime
    is not installed and nothing needs it (no proof asked for)."""
    from keras_cut.backend.runtime import open_artifact

    try:
        runner = open_artifact(path, fmt)
    except ArtifactError:
        if needed:
            raise
        return None
    return runner.input_names, runner.output_names


def artifact_record(model: Path, fmt: str, inputs: list[Endpoint],
                    outputs: list[Endpoint]) -> dict[str, Any]:
    """What the artifact keeps of where it came from: for each of its inputs and outputs (by
    its name in the artifact, in the artifact's order) the parent tensor it stands for."""
    return {
        "tool": "keras-cut", "format": fmt,
        "parent": {"file": model.name, "bytes": model.stat().st_size},
        "inputs": [e.record() for e in inputs], "outputs": [e.record() for e in outputs],
    }


def _named_endpoints(cut: CutResult, order: list[str],
                     names: tuple[list[str], list[str]] | None
                     ) -> tuple[list[Endpoint], list[Endpoint]]:
    """The cut's endpoints named as the artifact names them: inputs keep their names (Keras
    exports an input under its name); outputs come in Keras' flattened order."""
    by_layer = {e.name: e for e in cut.outputs}
    outputs = [by_layer[layer] for layer in order if layer in by_layer] or list(cut.outputs)
    if names is None:
        return list(cut.inputs), outputs
    in_names, out_names = names
    by_input = {e.name: e for e in cut.inputs}
    inputs = [by_input.get(n) or Endpoint(n, "?", cut.inputs[0].role) for n in in_names]
    if len(out_names) == len(outputs):
        outputs = [replace(e, name=n) for e, n in zip(outputs, out_names, strict=True)]
    return inputs, outputs
