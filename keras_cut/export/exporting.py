"""`export`: cut a model (the file-level cut `cut` makes), let Keras export the cut as a LiteRT,
ONNX, OpenVINO or SavedModel artifact, and prove the artifact in its own runtime against the
parent, on the inputs and with the tolerances `verify` uses. Only a proven artifact is written
where the user asked; one that differs is kept beside it under another name, and the report
says where.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keras_cut.backend.runtime import (
    ARTIFACT_FORMATS,
    FORMATS,
    SAVED_MODEL_FILE,
    SAVED_MODEL_LAYOUT,
    runtime_name,
    write_record,
)
from keras_cut.core.errors import ArtifactError, KerasCutError, Option, UsageError
from keras_cut.core.writing import atomic_output, check_artifact_output
from keras_cut.cut.cutting import CutResult, cut_model
from keras_cut.export.keep_float import (
    FLOAT_TRIALS,
    FloatLayers,
    FloatTrial,
    float_layers,
    try_keep_float,
)
from keras_cut.model.endpoint import Endpoint
from keras_cut.verify.comparison import Tolerances
from keras_cut.verify.report import (
    DEFAULT_BATCH,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    Progress,
    VerifyReport,
)

# an artifact's input names, output names, and shapes by name (None: a dimension left open)
ArtifactNames = tuple[list[str], list[str], dict[str, tuple[int | None, ...]]]


@dataclass
class ExportResult:
    output: str  # the artifact: where the user asked, or where one that differs was kept
    format: str  # Keras' name for it: "litert", "onnx", "openvino", "tf_saved_model"
    runtime: str
    cut: CutResult  # the cut that was exported: its endpoints, notices and costs
    inputs: list[Endpoint]  # named as in the artifact, each with its parent tensor
    outputs: list[Endpoint]
    size_bytes: int
    verify: VerifyReport | None = None  # the proof (None with verify=False)
    notices: list[str] = field(default_factory=list)
    # int8 that failed its proof, with --locate: the same export with the layers losing most
    # on their own kept in float, one more each time, until one is proven
    float_trials: list[FloatTrial] = field(default_factory=list)
    kept_float: dict[str, list[str]] = field(default_factory=dict)  # layer -> float ops

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
            **({"keep_float_trials": [vars(t) for t in self.float_trials]}
               if self.float_trials else {}),
            **({"kept_float": self.kept_float} if self.kept_float else {}),
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
    quantize: str | None = None,
    calibration: str | Path | None = None,
    locate: bool = False,
    keep_float: list[str] | tuple[str, ...] = (),
    keep_float_trials: int = FLOAT_TRIALS,
) -> ExportResult:
    """Export the cut of `model` (the whole model without layer names) to `output` as `format`
    (from the suffix: .tflite LiteRT, .onnx ONNX, .xml OpenVINO IR, none: a SavedModel
    directory), proven in that runtime unless `verify` is
    False. `quantize`: float16, dynamic or int8 (LiteRT; ONNX offers dynamic, OpenVINO
    float16 weights), int8 calibrated
    on `calibration` (an .npz of the parent's inputs, by name; else seeded inputs). A quantized
    artifact is judged by cosine similarity (`tolerances.min_cosine`, default 0.99). `locate`:
    when the proof fails, where inside the artifact it leaves the parent (`verify`'s).
    `keep_float` (int8 .tflite): layers of the cut whose operations stay in float; with
    `locate`, an int8 export whose proof fails tries up to `keep_float_trials` more layers in
    float, one at a time (`keep_float.try_keep_float`)."""
    say = progress or (lambda _msg: None)
    model, output = Path(model), Path(output)
    fmt = _format(output, format)
    _check_quantize(fmt, quantize, calibration)
    if locate and not verify:
        raise UsageError(Option.LOCATE, " looks inside an artifact whose proof failed, so it "
                         "needs the proof: leave ", Option.VERIFY, " on")
    if keep_float and (fmt != "litert" or quantize != "int8"):
        raise UsageError(Option.KEEP_FLOAT, " keeps layers in float inside an int8 .tflite "
                         "only; export to .tflite with ", Option.QUANTIZE, " int8")
    kind = FORMATS[fmt]
    given = tuple(Path(p) for p in (inputs, calibration, custom_objects)
                  if p is not None and Path(p).is_file())
    output = check_artifact_output(output, model, force, kind.suffix, kind.companions,
                                   SAVED_MODEL_LAYOUT, SAVED_MODEL_FILE, given)
    if quantize is not None:
        tolerances = tolerances or Tolerances()
        if tolerances.min_cosine is None:
            tolerances = replace(tolerances, min_cosine=DEFAULT_MIN_COSINE)
    with tempfile.TemporaryDirectory(prefix="keras-cut-export-") as folder:
        cut_file = Path(folder) / "cut.keras"
        whole = not output_layers and not input_layers
        cut = cut_model(model, cut_file, output_layers, input_layers, progress=progress,
                        unsafe=unsafe, custom_objects=custom_objects, whole=whole)
        floats = float_layers(model, cut_file, list(keep_float), unsafe, custom_objects) \
            if keep_float else None
        from keras_cut.backend.keras import exporting, loading

        custom = loading.load_custom_objects(custom_objects)
        notices: list[str] = []
        arrays = _calibration_arrays(model, cut, calibration, seed, input_shapes, unsafe,
                                     custom_objects, notices, say) if quantize == "int8" else None
        # the temporary file has the suffix converters insist on (OpenVINO's: ".xml", not
        # ".XML"); the artifact lands under the user's name
        with atomic_output(output, kind.companions, kind.suffix or None) as pending:
            made = _Made()

            def make(sub_model: Any) -> None:
                """Export the submodel (Keras' loaded object, or None to load the cut file),
                then name its inputs and outputs and write keras-cut's record into it."""
                say(f"exporting {output} ({fmt})")
                order = exporting.export_file(cut_file, pending.path, fmt, unsafe, custom,
                                              quantize, arrays, model=sub_model,
                                              keep_float=floats)
                made.names = _artifact_names(pending.path, fmt, verify)
                made.inputs, made.outputs = _named_endpoints(pending.path, cut, order,
                                                             made.names)
                if made.names is not None:
                    write_record(pending.path, fmt, json.dumps(artifact_record(
                        model, fmt, made.inputs, made.outputs, quantize, tolerances,
                        list(keep_float)), indent=1))

            try:
                report = None
                if verify:  # the model verify loads is the one exported: loaded once
                    from keras_cut.verify.verification import verify_models

                    report = verify_models(
                        model, cut_file, samples=samples, batch_size=batch_size, seed=seed,
                        tolerances=tolerances, inputs=inputs, input_shapes=input_shapes,
                        unsafe=unsafe, custom_objects=custom_objects, progress=progress,
                        submodel_label=str(output), artifact=(pending.path, fmt),
                        prepare_artifact=make, locate=locate)
                    if not report.passed:
                        pending.target = _unproven_name(output, kind.companions)
                else:
                    make(None)
            except KerasCutError as exc:  # it names the temporary file: name the user's
                raise exc.replaced(str(pending.path), str(output)) from exc
        written = pending.target
    notices = list(cut.notices) + notices
    if report is not None and not report.passed:
        notices.append(f"the artifact's outputs differ from the parent's; it was kept as "
                       f"{written} for examination, not written to {output}")
    names, ins, outs = made.names, made.inputs, made.outputs
    if names is None:
        notices.append("the artifact's runtime is not installed, so its input and output "
                       "names are the submodel's and it carries no keras-cut record")
    result = ExportResult(
        output=str(written), format=fmt, runtime=runtime_name(fmt), cut=cut, inputs=ins,
        outputs=outs, size_bytes=_size(written, kind.companions), verify=report, notices=notices,
    )
    _float_notices(result, floats, calibration is not None and inputs is None)
    location = report.locate if report is not None else None
    if quantize == "int8" and keep_float_trials and location is not None and \
            location.first is not None:
        def again(layers: list[str], target: Path) -> ExportResult:
            return export_model(model, target, output_layers, input_layers, format=fmt,
                                tolerances=tolerances, samples=samples, batch_size=batch_size,
                                seed=seed, inputs=inputs, input_shapes=input_shapes,
                                unsafe=unsafe, custom_objects=custom_objects, progress=say,
                                quantize=quantize, calibration=calibration, keep_float=layers,
                                locate=True, keep_float_trials=0)

        ranked = [layer for layer, _ in location.own_losses]
        result.float_trials = try_keep_float(again, list(keep_float), ranked, say)
    return result


def _float_notices(result: ExportResult, floats: FloatLayers | None,
                   calibrated_only: bool) -> None:
    """What an int8 export says of its calibration and of the layers it kept in float."""
    if calibrated_only and result.verify is not None:
        result.notices.append(
            "the proof ran on seeded random inputs (floats in [-1, 1)), not on data like the "
            "calibration's: int8 scales fitted to real data may fail on them; give --inputs "
            "with data like the calibration's to prove it on that")
    if floats is not None:
        result.kept_float = floats.kept
        result.notices.append("kept in float: " + "; ".join(
            f"{layer} ({', '.join(kinds)})" for layer, kinds in floats.kept.items()))


@dataclass
class _Made:
    """What exporting found out about the artifact it wrote."""

    names: ArtifactNames | None = None
    inputs: list[Endpoint] = field(default_factory=list)
    outputs: list[Endpoint] = field(default_factory=list)


DEFAULT_MIN_COSINE = 0.99
CALIBRATION_SAMPLES = 64


def _check_quantize(fmt: str, quantize: str | None, calibration: Any) -> None:
    from keras_cut.backend.keras.exporting import QUANTIZATIONS

    offered = QUANTIZATIONS[fmt]
    if quantize is not None and quantize not in offered:
        raise UsageError(Option.QUANTIZE, f" {quantize!r}: {fmt} artifacts offer "
                         f"{', '.join(offered) or 'no quantization'}")
    if calibration is not None and quantize != "int8":
        raise UsageError(Option.CALIBRATION, " calibrates int8 quantization only; add ",
                         Option.QUANTIZE, " int8")


def _calibration_arrays(model: Path, cut: CutResult, calibration: str | Path | None, seed: int,
                        input_shapes: dict[str, tuple[int, ...]] | None, unsafe: bool,
                        custom_objects: str | None, notices: list[str],
                        say: Progress) -> dict[str, Any]:
    """Samples of the cut's inputs for int8 calibration: the parent run (by Keras) on the
    calibration inputs (or seeded ones), read at the tensors the cut starts from."""
    import numpy as np

    from keras_cut.model.flatgraph import FlatGraph
    from keras_cut.model.opening import open_model
    from keras_cut.verify.feeds import parent_data

    parent_file, graph = open_model(model, custom_objects, unsafe, "calibrate")
    data = parent_data(FlatGraph(graph), graph, CALIBRATION_SAMPLES, seed, calibration,
                       input_shapes or {}, notices, Option.CALIBRATION)
    if calibration is None:
        notices.append("int8 was calibrated on seeded random inputs, a poor proxy for real "
                       "data: its accuracy on real inputs may be worse than the proof shows")
    say("calibrating")
    from keras_cut.backend.keras import loading, running, saved

    parent_model, _ = saved.load_saved_model(parent_file, unsafe,
                                             loading.load_custom_objects(custom_objects))
    run = running.parent_function(parent_model, [e.parent for e in cut.inputs])
    count = len(next(iter(data.values())))
    parts = [run({k: v[i:i + 16] for k, v in data.items()}) for i in range(0, count, 16)]
    return {e.name: np.concatenate([p[j] for p in parts])
            for j, e in enumerate(cut.inputs)}


def _format(output: Path, given: str | None) -> str:
    """The format `--format` names, else the one the output's name says: a known suffix, or
    none (or an existing SavedModel directory) for a SavedModel."""
    known = ", ".join(f.described() for f in FORMATS.values())
    suffix = output.suffix.lower()
    by_name = ARTIFACT_FORMATS.get(suffix) or ("tf_saved_model" if not suffix or (
        output / SAVED_MODEL_FILE).exists() else None)
    if given is not None:
        kind = FORMATS.get(given)
        if kind is None:
            raise UsageError(f"format {given!r} is not one keras-cut exports; it exports {known}")
        if kind.is_directory and suffix in ARTIFACT_FORMATS:
            raise UsageError(f"{output}: an artifact in the {given} format is a directory; "
                             f"give a folder name without the suffix {suffix}")
        if not kind.is_directory and suffix != kind.suffix:
            raise UsageError(f"{output}: an artifact in the {given} format is named "
                             f"*{kind.suffix}")
        return given
    if by_name is None:
        raise UsageError(f"{output}: keras-cut exports {known}; name the artifact after one "
                         "(or give ", Option.FORMAT, ")")
    return by_name


def _unproven_name(output: Path, companions: tuple[str, ...]) -> Path:
    def name(tag: str) -> Path:
        return output.with_name(f"{output.stem}.{tag}{output.suffix}")

    candidate, n = name("unproven"), 1
    while any(p.exists() for p in (candidate, *(candidate.with_suffix(c) for c in companions))):
        candidate, n = name(f"unproven-{n}"), n + 1
    return candidate


def _size(path: Path, companions: tuple[str, ...]) -> int:
    """The artifact's bytes: its file and companions, or every file in its directory."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return sum(p.stat().st_size for p in (path, *(path.with_suffix(c) for c in companions)))


def _artifact_names(path: Path, fmt: str, needed: bool) -> ArtifactNames | None:
    """The artifact's own input and output names and shapes, from its runtime; None where
    that runtime is not installed and nothing needs it (no proof asked for)."""
    from keras_cut.backend.runtime import open_artifact

    try:
        runner = open_artifact(path, fmt)
    except ArtifactError:
        if needed:
            raise
        return None
    return runner.input_names, runner.output_names, runner.shapes


def artifact_record(model: Path, fmt: str, inputs: list[Endpoint], outputs: list[Endpoint],
                    quantize: str | None = None, tolerances: Tolerances | None = None,
                    keep_float: list[str] | None = None) -> dict[str, Any]:
    """What the artifact keeps of where it came from: for each of its inputs and outputs (by
    its name in the artifact, in the artifact's order) the parent tensor it stands for; for a
    quantized one, how it is judged (the least cosine similarity, overall and per output) and
    the layers it keeps in float."""
    judged: dict[str, Any] = {} if quantize is None or tolerances is None else {
        "min_cosine": tolerances.min_cosine, "min_cosine_for": tolerances.min_cosine_for}
    if keep_float:
        judged["keep_float"] = keep_float
    return {
        "tool": "keras-cut", "format": fmt, "quantized": quantize, **judged,
        "parent": {"file": model.name, "bytes": model.stat().st_size},
        "inputs": [e.record() for e in inputs], "outputs": [e.record() for e in outputs],
    }


def _named_endpoints(path: Path, cut: CutResult, order: list[str],
                     names: ArtifactNames | None) -> tuple[list[Endpoint], list[Endpoint]]:
    """The cut's endpoints as the artifact has them: inputs by their layers' names (every
    format keras-cut writes names an input after its layer), outputs in Keras' flattened order
    (`order`); each with the artifact's shape, None where it leaves a dimension open (the
    batch, at least)."""
    by_layer = {e.name: e for e in cut.outputs}
    outputs = [by_layer[layer] for layer in order if layer in by_layer] or list(cut.outputs)
    if names is None:
        return list(cut.inputs), outputs
    in_names, out_names, shapes = names
    by_input = {e.name: e for e in cut.inputs}
    if sorted(in_names) != sorted(by_input):
        raise ArtifactError(f"{path}: the artifact's inputs ({', '.join(in_names)}) are not "
                            f"the submodel's ({', '.join(by_input)})")
    if len(out_names) != len(outputs):
        raise ArtifactError(f"{path}: the artifact has {len(out_names)} outputs, the submodel "
                            f"{len(outputs)}")
    return ([replace(by_input[n], shape=shapes.get(n)) for n in in_names],
            [replace(e, name=n, shape=shapes.get(n))
             for e, n in zip(outputs, out_names, strict=True)])
