"""`verify --save-repro DIR`: a reduced reproducer of where an artifact goes wrong, what a user
attaches to a converter bug report.

The culprit is the first layer (or fused group) `--locate` found past tolerance. The segment
around it runs from the nearest tensors upstream that the artifact computes right (matched
layers that agree, or the artifact's own inputs) to the culprit's output. The directory holds:

- `segment.keras`: those layers of the parent, cut at the file level (`cut`), loadable in plain
  Keras;
- `part.<suffix>`: the same span of the artifact. An `.onnx` part is cut out of the given
  artifact itself (`onnx.utils.extract_model` between the matched tensors), so it fails exactly
  as the whole did; a `.tflite` or `.xml` part is exported afresh from the segment, and the
  report says whether that re-export reproduces the failure;
- `golden.npz`: a keras-cut golden file for the part: the parent's Keras activations at its
  inputs and its output (in the artifact's layout where that differs), on the samples the
  comparison used, and the tolerances it was judged by;
- `README.md`: what was found and the commands that show it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keras_cut.core.address import CallAddress, TensorAddress
from keras_cut.core.errors import KerasCutError, Option, OutputError
from keras_cut.core.shown import shell_word, visible
from keras_cut.model.endpoint import Endpoint, Role
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.verify import golden as goldens
from keras_cut.verify.comparison import Tolerances
from keras_cut.verify.locate import Location
from keras_cut.verify.report import Progress

SEGMENT, GOLDEN, README = "segment.keras", "golden.npz", "README.md"
SUFFIXES = {"onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
# what a reproducer directory may hold: --force replaces only such a directory
WRITTEN = {SEGMENT, GOLDEN, README, "part.onnx", "part.tflite", "part.xml", "part.bin"}


@dataclass
class Repro:
    """What `save_repro` wrote, and whether the part fails as the whole did."""

    directory: str
    culprit: str  # the first failing layer (its group's last)
    class_name: str
    starts_at: list[str]  # the tensors the segment takes as inputs, as a user names them
    layers: list[str]  # the segment's layers, in the order Keras runs them
    segment: str | None  # file names inside `directory`; None where it could not be made
    part: str | None
    part_from: str  # "the artifact" (cut out of it) or "a fresh export"
    reproduces: bool | None  # the part fails its golden file; None: no part
    max_abs_error: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"directory": self.directory, "culprit": self.culprit,
                "class_name": self.class_name, "starts_at": self.starts_at,
                "layers": self.layers, "segment": self.segment, "part": self.part,
                "part_from": self.part_from, "reproduces": self.reproduces,
                "max_abs_error": self.max_abs_error, "notes": self.notes}


def check_repro_dir(directory: str | Path, force: bool, keep: tuple[Path, ...]) -> Path:
    """Refuse a reproducer directory whose writing would lose data: an existing one without
    `force`, one holding other files than a reproducer's, or one holding `keep` (the parent,
    the artifact)."""
    directory = Path(directory)
    here = directory.resolve()
    for path in keep:
        if here == path.resolve() or here in path.resolve().parents:
            raise OutputError(f"{directory}: would hold {path}, a file this command reads "
                              "or writes, and the reproducer replaces the whole directory "
                              "(also with ", Option.FORCE, "); choose another directory")
    if directory.is_file() or directory.is_symlink():
        raise OutputError(f"{directory}: is a file; give a directory name for the reproducer")
    if not directory.parent.is_dir():
        raise OutputError(f"{directory}: its folder {directory.parent} does not exist")
    if directory.is_dir():
        found = {p.name for p in directory.iterdir()}
        if found and not force:
            raise OutputError(f"{directory}: already exists; pass ", Option.FORCE,
                              " to replace the reproducer in it")
        if found - WRITTEN:
            raise OutputError(f"{directory}: holds other files than a reproducer's "
                              f"({', '.join(sorted(found - WRITTEN)[:3])}); keras-cut replaces "
                              "only a reproducer's directory; choose another")
    return directory


@dataclass
class _Span:
    """The segment: the culprit call, the layer calls it runs, the tensors it starts from."""

    culprit: CallAddress
    calls: list[CallAddress]
    starts: list[TensorAddress]


def segment_span(flat: FlatGraph, location: Location, artifact_inputs: set[TensorAddress]
                 ) -> _Span:
    """From the culprit's group upstream, through every layer the artifact was not seen to
    compute right, to the nearest tensors it was: agreeing layers' outputs, its own inputs."""
    first, evidence = location.first, location.evidence
    assert first is not None and evidence is not None
    calls = evidence.calls
    culprit = calls[first.layer]
    agreeing = {calls[row.layer] for row in location.rows if row.passed}
    order = {call: i for i, call in enumerate(calls.values())}
    inside: set[CallAddress] = set()
    starts: list[TensorAddress] = []
    todo = [culprit] + [calls[label] for label in first.fused + first.unseen if label in calls]
    while todo:
        call = todo.pop()
        if call in inside:
            continue
        inside.add(call)
        for tensor in (flat.canonical(t) for t in flat.inputs_of(call)):
            if tensor in artifact_inputs or flat.layer(tensor).is_input or \
                    (tensor.node in agreeing and tensor.index == 0) or tensor.node not in order:
                if tensor not in starts:
                    starts.append(tensor)
            else:
                todo.append(tensor.node)
    return _Span(culprit, sorted(inside, key=order.__getitem__),
                 sorted(starts, key=lambda t: order.get(t.node, -1)))


def save_repro(directory: str | Path, parent: str | Path, artifact: str | Path, fmt: str,
               location: Location, unsafe: bool = False, custom_objects: str | None = None,
               say: Progress | None = None, force: bool = False) -> Repro | None:
    """Write the reproducer of `location`'s first failing layer (a `verify --locate` of
    `artifact` against `parent`) to `directory` (refused as `check_repro_dir` says; `force`
    replaces an earlier reproducer), atomically; None when every layer agreed (nothing to
    reproduce: nothing is written)."""
    from keras_cut.core.writing import atomic_output

    directory, parent, artifact = Path(directory), Path(parent), Path(artifact)
    check_repro_dir(directory, force, (parent, artifact))
    say = say or (lambda _msg: None)
    first, evidence = location.first, location.evidence
    if first is None or evidence is None:
        return None
    flat, artifact_inputs, tol = evidence.flat, evidence.inputs, evidence.tolerances
    span = segment_span(flat, location, set(artifact_inputs))
    repro = Repro(str(directory), first.layer, first.class_name,
                  [flat.label(t) for t in span.starts], [flat.label(c) for c in span.calls],
                  None, None, "the artifact" if fmt == "onnx" else "a fresh export", None)
    say(f"writing the reproducer of {first.layer} to {directory}")
    with atomic_output(directory) as pending:
        folder = pending.path
        folder.mkdir()
        _write_segment(folder, parent, flat, span, unsafe, custom_objects, repro)
        golden = _write_part(folder, parent, artifact, fmt, flat, location, span,
                             artifact_inputs, tol, evidence.quantized, unsafe, custom_objects,
                             say, repro)
        if golden is not None:
            _check_part(folder, golden, fmt, tol, say, repro)
        (folder / README).write_text(
            readme(repro, parent, artifact, tol, _options(tol, unsafe, custom_objects),
                   _layouts(location, span, artifact_inputs, fmt)), encoding="utf-8")
    return repro


def _write_segment(folder: Path, parent: Path, flat: FlatGraph, span: _Span, unsafe: bool,
                   custom_objects: str | None, repro: Repro) -> None:
    from keras_cut.cut.cutting import cut_model

    try:
        cut_model(parent, folder / SEGMENT, [flat.label(span.culprit)],
                  [flat.label(t) for t in span.starts], unsafe=unsafe,
                  custom_objects=custom_objects)
        repro.segment = SEGMENT
    except KerasCutError as exc:
        repro.notes.append(f"the segment could not be cut as a .keras model: {exc}")


def _write_part(folder: Path, parent: Path, artifact: Path, fmt: str, flat: FlatGraph,
                location: Location, span: _Span, artifact_inputs: dict[TensorAddress, str],
                tol: Tolerances, quantized: str | None, unsafe: bool,
                custom_objects: str | None, say: Progress, repro: Repro) -> Path | None:
    """The artifact's part and its golden file; the golden's path, None without a part."""
    from keras_cut.backend.runtime import extract_part

    first, evidence = location.first, location.evidence
    assert first is not None and evidence is not None
    rows = {evidence.calls[row.layer]: row for row in location.rows}
    part = folder / f"part{SUFFIXES[fmt]}"
    if fmt == "onnx":
        names = [artifact_inputs.get(t) or rows[t.node].name for t in span.starts]
        layouts = [None if t in artifact_inputs else rows[t.node].layout for t in span.starts]
        try:
            extract_part(artifact, fmt, part, names, [first.name])
        except KerasCutError as exc:
            repro.notes.append(f"the part could not be cut out of the artifact: {exc}")
            return None
        ins = [(name, flat.label(t), evidence.records[t], layout,
                evidence.tensors.get(name)) for name, t, layout in
               zip(names, span.starts, layouts, strict=True)]
        out = (first.name, first.layer, evidence.records[_output(span.culprit)], first.layout)
    else:
        made = _export_part(folder, part, parent, fmt, flat, span, tol, quantized, unsafe,
                            custom_objects, say, repro)
        if made is None:
            return None
        ins = [(e.name, e.source, evidence.records[flat.canonical(e.parent)], None, None)
               for e in made[0]]
        out = (made[1].name, made[1].source,
               evidence.records[flat.canonical(made[1].parent)], None)
    repro.part = part.name
    golden = folder / GOLDEN
    _write_golden(golden, parent, tol, ins, out, location.samples)
    return golden


def _export_part(folder: Path, part: Path, parent: Path, fmt: str, flat: FlatGraph,
                 span: _Span, tol: Tolerances, quantized: str | None, unsafe: bool,
                 custom_objects: str | None, say: Progress, repro: Repro
                 ) -> tuple[list[Endpoint], Endpoint] | None:
    """The segment exported afresh (the format offers no cutting of the artifact itself): its
    inputs and output, None where it could not be exported."""
    from keras_cut.export.exporting import export_model

    try:
        result = export_model(parent, part, [flat.label(span.culprit)],
                              [flat.label(t) for t in span.starts], format=fmt,
                              tolerances=tol, unsafe=unsafe, custom_objects=custom_objects,
                              progress=say, quantize=quantized, samples=8)
    except KerasCutError as exc:
        repro.notes.append(f"the segment could not be exported afresh: {exc}")
        return None
    written = Path(result.output)
    if written != part:  # its proof failed: kept aside under another name
        written.rename(part)
        for companion in (".bin",) if fmt == "openvino" else ():
            if written.with_suffix(companion).exists():
                shutil.move(written.with_suffix(companion), part.with_suffix(companion))
    return result.inputs, result.outputs[0]


def _output(call: CallAddress) -> TensorAddress:
    return TensorAddress(call.context, call.layer, call.call, 0)


def _in_layout(value: Any, layout: str | None) -> np.ndarray:
    """A Keras activation moved into the artifact's layout ("channels first": the artifact's
    tensor is NCHW where Keras' is NHWC)."""
    array = np.asarray(value)
    if layout == "channels first":
        return np.moveaxis(array, -1, 1)
    if layout == "channels last":
        return np.moveaxis(array, 1, -1)
    return array


def _write_golden(path: Path, parent: Path, tol: Tolerances,
                  inputs: list[tuple[str, str, Any, str | None, Any]],
                  output: tuple[str, str, Any, str | None], samples: int) -> None:
    arrays_in = []
    for _, _, value, layout, like in inputs:
        array = _in_layout(value, layout)
        arrays_in.append(array.astype(like.dtype) if isinstance(like, np.ndarray) else array)
    array_out = _in_layout(output[2], output[3])

    def end(name: str, source: str, role: Role, array: np.ndarray) -> Endpoint:
        return Endpoint(name, source, role, shape=(None, *array.shape[1:]),
                        dtype=str(array.dtype))

    from keras_cut.verify.artifact_check import empty_structure

    record = goldens.Golden(
        parent={"file": parent.name, "bytes": parent.stat().st_size}, seed=None,
        samples=samples, tolerances=tol,
        inputs=[end(name, source, Role.CUT_INPUT, a)
                for (name, source, *_), a in zip(inputs, arrays_in, strict=True)],
        outputs=[end(output[0], output[1], Role.OUTPUT, array_out)], weights={},
        structure=empty_structure(), input_arrays=arrays_in, output_arrays=[array_out])
    goldens.write(path, record)


def _check_part(folder: Path, golden: Path, fmt: str, tol: Tolerances, say: Progress,
                repro: Repro) -> None:
    """Run the part against its golden file, as the README's command does."""
    from keras_cut.verify.artifact_check import verify_artifact_against_golden

    assert repro.part is not None
    record = goldens.read(golden)
    report = verify_artifact_against_golden(golden, record, folder / repro.part, fmt,
                                            tol.over(record.tolerances), record.samples, say)
    repro.reproduces = not report.passed
    repro.max_abs_error = max((o.max_abs_error for o in report.outputs), default=None)


def _options(tol: Tolerances, unsafe: bool, custom_objects: str | None) -> str:
    """The command-line options of the run the reproducer came from, for its README."""
    from keras_cut.verify.comparison import DEFAULT_ATOL, DEFAULT_RTOL

    words = []
    for flag, value, default, per in (("--atol", tol.atol, DEFAULT_ATOL, tol.atol_for),
                                      ("--rtol", tol.rtol, DEFAULT_RTOL, tol.rtol_for),
                                      ("--min-cosine", tol.min_cosine, None,
                                       tol.min_cosine_for)):
        if value is not None and value != default:
            words.append(f"{flag} {value:g}")
        words += [f"{flag} {shell_word(f'{name}={number:g}')}" for name, number in per.items()]
    if custom_objects:
        words.append(f"--custom-objects {shell_word(custom_objects)}")
    if unsafe:
        words.append("--unsafe")
    return "".join(f" {word}" for word in words)


def _layouts(location: Location, span: _Span, artifact_inputs: dict[TensorAddress, str],
             fmt: str) -> list[str]:
    """Which of the golden file's arrays are in another layout than Keras' (an .onnx part's
    NCHW tensors), for its README; a part exported afresh takes Keras' own."""
    first, evidence = location.first, location.evidence
    if fmt != "onnx" or first is None or evidence is None:
        return []
    rows = {evidence.calls[row.layer]: row for row in location.rows}
    found = [(f"input `{visible(rows[t.node].name)}`", rows[t.node].layout)
             for t in span.starts if t not in artifact_inputs and t.node in rows]
    found.append((f"output `{visible(first.name)}`", first.layout))
    moves = {"channels first": "channels first (NCHW): `np.moveaxis(a, 1, -1)` gives Keras' "
             "NHWC", "channels last": "channels last (NHWC): `np.moveaxis(a, -1, 1)` gives "
             "Keras' NCHW"}
    return [f"{what} is {moves[layout]}" for what, layout in found if layout in moves]


def readme(repro: Repro, parent: Path, artifact: Path, tol: Tolerances, options: str = "",
           layouts: list[str] | None = None) -> str:
    """The reproducer's README: what differs, the files, the commands that show it."""
    part = repro.part or "part"
    lines = [f"# {visible(artifact.name)} differs from {visible(parent.name)} at layer "
             f"`{visible(repro.culprit)}` ({visible(repro.class_name)})", "",
             f"Found by `keras-cut verify {shell_word(parent.name)} "
             f"{shell_word(artifact.name)} --locate{options}`: the first "
             "Keras layer whose tensor in the artifact leaves the parent's activation "
             f"({_rule(tol)}).", "", "## Files", ""]
    if repro.segment:
        lines.append(f"- `{repro.segment}`: the parent's layer(s) {_names(repro.layers)}, fed "
                     f"by {_names(repro.starts_at)}, cut from `{visible(parent.name)}` by "
                     "keras-cut at the file level. It loads in plain "
                     "Keras: `keras.saving.load_model(\"segment.keras\", compile=False)`.")
    if repro.part:
        how = ("cut out of the artifact itself between the matched tensors "
               "(`onnx.utils.extract_model`): it computes what those nodes of the whole "
               "compute" if repro.part_from == "the artifact" else
               "the segment exported afresh by `keras-cut export` (this format offers no "
               "cutting of the artifact itself)")
        lines.append(f"- `{part}`: the same span of the artifact, {how}.")
        lines.append(f"- `{GOLDEN}`: a keras-cut golden file: the parent's Keras activations "
                     "at the part's inputs and its output (in the artifact's layout where it "
                     "keeps another), on the samples the comparison used.")
        lines += [f"  - its {layout}" for layout in layouts or []]
    lines += ["", "## Show it", ""]
    if repro.part:
        verdict = ("exits 1: the part differs from Keras" if repro.reproduces else
                   "exits 0: this part does NOT reproduce the failure")
        error = f", max abs error {repro.max_abs_error:.3g}" \
            if repro.max_abs_error is not None else ""
        lines += ["```sh", f"keras-cut verify {GOLDEN} {part}   # {verdict}{error}", "```", ""]
    if repro.segment:
        lines += ["The segment agrees with its parent in Keras:", "", "```sh",
                  f"keras-cut verify path/to/{shell_word(parent.name)} {repro.segment}"
                  f"{options}",
                  "```", ""]
    lines += [f"- {note}" for note in repro.notes]
    return "\n".join(lines).rstrip() + "\n"


def _names(names: list[str]) -> str:
    return ", ".join(f"`{visible(name)}`" for name in names)


def _rule(tol: Tolerances) -> str:
    if tol.min_cosine is not None:
        return f"cosine similarity below {tol.min_cosine:g}"
    return f"atol {tol.global_atol:g}, rtol {tol.global_rtol:g}"
