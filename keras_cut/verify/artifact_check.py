"""`verify PARENT ARTIFACT` and `verify GOLDEN ARTIFACT`: an exported artifact (`.tflite`,
`.onnx`) run in its own runtime, against its parent or a golden file. The record keras-cut
keeps inside the artifact says which parent tensor each of its inputs and outputs stands for.
Checking against a golden file imports the artifact's runtime and NumPy, never TensorFlow.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from keras_cut.backend.runtime import Runner, open_artifact, runtime_name
from keras_cut.core.address import TensorAddress
from keras_cut.core.errors import ArtifactError, UsageError
from keras_cut.model.endpoint import Endpoint, Role, tensor_from_json
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import compute_dtypes
from keras_cut.model.structure import ConfigCheck, ParentStructure
from keras_cut.verify import golden as goldens
from keras_cut.verify.comparison import Tolerances, check_notices
from keras_cut.verify.correspondence import Correspondence, Link
from keras_cut.verify.execution import GOLDEN_HINT, Batches, run_batch
from keras_cut.verify.locate import SAMPLES, Location, locate, span
from keras_cut.verify.parent_process import Parent
from keras_cut.verify.report import Progress, VerifyReport, WeightCheck


def artifact_record(runner: Runner) -> dict[str, Any]:
    """The record keras-cut's `export` wrote into the artifact (untrusted: checked)."""
    text = runner.record_text
    try:
        record = json.loads(text) if text else None
    except ValueError as exc:
        raise ArtifactError(f"{runner.path}: the artifact's keras-cut record is damaged (not "
                            "JSON); export it again") from exc
    if not isinstance(record, dict) or not isinstance(record.get("inputs"), list) or \
            not isinstance(record.get("outputs"), list):
        raise ArtifactError(
            f"{runner.path}: the artifact carries no keras-cut record of which parent tensors "
            "its inputs and outputs stand for (only `keras-cut export` writes one); export it "
            "with keras-cut, or verify the .keras cut it was made from")
    return record


def artifact_links(runner: Runner, record: dict[str, Any], parent: FlatGraph
                   ) -> tuple[Correspondence, list[int]]:
    """Each artifact input and output tied to the parent tensor the record names, and where
    each output is among the artifact's."""
    def link(entry: Any, names: list[str], what: str, role: Role | None) -> Link:
        name = entry.get("name") if isinstance(entry, dict) else None
        wanted = tensor_from_json(entry.get("tensor")) if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in names or wanted is None:
            raise ArtifactError(f"{runner.path}: the keras-cut record does not match the "
                                f"artifact's {what}s ({', '.join(names)})")
        tensor = parent.find_tensor(wanted)
        if tensor is None:
            raise ArtifactError(f"{runner.path}: {what} {name!r} stands for a tensor the parent "
                                "does not have; was the artifact exported from this parent?")
        kind = entry.get("kind")
        chosen = role or (Role(kind) if kind in {r.value for r in Role} else Role.CUT_INPUT)
        source = entry.get("source") if isinstance(entry.get("source"), str) else name
        return Link(Endpoint(name, source, chosen, tensor), TensorAddress((), name), name)

    inputs = [link(e, runner.input_names, "input", None) for e in record["inputs"]]
    outputs = [link(e, runner.output_names, "output", Role.OUTPUT) for e in record["outputs"]]
    if len(inputs) != len(runner.input_names) or len(outputs) != len(runner.output_names):
        raise ArtifactError(f"{runner.path}: the keras-cut record lists other inputs or outputs "
                            "than the artifact has; the file was edited")
    positions = [runner.output_names.index(o.name) for o in outputs]
    return Correspondence(inputs, outputs, {}), positions


def verify_artifact_against_parent(
    parent_path: Path, artifact: Path, fmt: str, flat: FlatGraph, data: dict[str, Any],
    tol: Tolerances, batch_size: int, seed: int | None, parent: Parent, custom: dict[str, Any],
    notices: list[str], say: Progress, keep: bool, locate: bool = False,
) -> tuple[VerifyReport, Batches, Correspondence, Tolerances]:
    """The artifact against its parent, tied by its record; also the tolerances it was judged
    by (a quantized artifact's record adds its cosine rule), for a golden file. `parent` runs
    in a second process, or here (Keras imported, `custom` its --custom-objects)."""
    runner = open_artifact(artifact, fmt)
    record = artifact_record(runner)
    links, positions = artifact_links(runner, record, flat)
    tol, judged = _record_rule(artifact, record, tol)
    tol.check_names([link.name for link in links.outputs],
                    [link.source for link in links.outputs])
    parent.start([lk.parent for lk in links.inputs + links.outputs], data, batch_size, None, [])
    parent.load(custom, say)
    note = parent.note()
    notices = notices + ([note] if note else [])
    batches = Batches(
        parent=parent.run, sub=(runner.run, positions), links=links,
        checks=[tol.check(lk.name, lk.source)
                for lk in links.outputs], keep=keep)
    samples = len(next(iter(data.values())))
    batches.run(data, batch_size, parent_path, artifact, None, say)
    notices = notices + judged + check_notices(batches.checks, compute_dtypes(flat.top))
    report = VerifyReport(
        parent=str(parent_path), submodel=str(artifact), samples=samples,
        batch_size=batch_size, seed=seed, atol=tol.global_atol, rtol=tol.global_rtol,
        inputs=[lk.end for lk in links.inputs], outputs=batches.checks,
        weights=WeightCheck(), configs=ConfigCheck(), notices=notices,
        runtime=runtime_name(fmt))
    if locate:
        report.locate = locate_in_artifact(artifact, fmt, parent, flat, links, batches, data,
                                           tol, say, (runner.run, positions), record)
    return report, batches, links, tol


def locate_in_artifact(artifact: Path, fmt: str, parent: Parent, flat: FlatGraph,
                       links: Correspondence, batches: Batches, data: dict[str, Any],
                       tol: Tolerances, say: Progress,
                       run: tuple[Any, list[int]], record: dict[str, Any] | None = None
                       ) -> Location:
    """Where inside the artifact its values leave the parent's: the first failing batch's
    first samples (else the first batch's) through the artifact with every intermediate
    tensor kept, and through the parent with every layer call recorded."""
    from keras_cut.backend.runtime import intermediate_tensors
    from keras_cut.verify.execution import import_backend

    number, batch = (batches.first_failure[0], batches.first_failure[1]) \
        if batches.first_failure else (1, data)
    samples = min(SAMPLES, len(next(iter(batch.values()))))
    batch = {name: array[:samples] for name, array in batch.items()}
    import_backend(say)
    from keras_cut.backend.keras import running

    say(f"locating: the parent's every layer on batch {number}")
    records = {key: np.asarray(value)
               for key, value in running.walk(parent.model(), batch).items()}
    feed = {link.layer: records[link.parent] for link in links.inputs}
    say("locating: the artifact with its intermediate tensors")
    tensors = intermediate_tensors(artifact, fmt, feed)
    run_artifact, positions = run
    got = run_artifact(feed)
    outputs = {link.parent.node: (link.name, got[position])
               for link, position in zip(links.outputs, positions, strict=True)
               if link.parent.index == 0}
    inside = span(flat, [link.parent for link in links.inputs],
                  [link.parent for link in links.outputs])
    calls = list(dict.fromkeys(key.node for key in records if key.node in inside))
    location = locate(flat, records, calls, tensors, outputs, tol.global_atol, tol.global_rtol,
                      tol.min_cosine, number, samples)
    if location.evidence is not None:
        evidence = location.evidence
        evidence.inputs = {link.parent: link.name for link in links.inputs}
        evidence.outputs = [link.parent for link in links.outputs]
        evidence.tolerances = tol
        record = record or artifact_record(open_artifact(artifact, fmt))  # read once
        quantized, kept = record.get("quantized"), record.get("keep_float")
        evidence.quantized = quantized if isinstance(quantized, str) else None
        evidence.kept_float = [k for k in kept if isinstance(k, str)] \
            if isinstance(kept, list) else []
    return location


def _record_rule(artifact: Path, record: dict[str, Any], tol: Tolerances
                 ) -> tuple[Tolerances, list[str]]:
    """A quantized artifact is judged as `export` judged it, by the cosine rule its record
    keeps (the record is untrusted: only a quantization keras-cut makes carries one, and the
    report says which rule was used); --min-cosine given here replaces it."""
    from keras_cut.backend.keras.exporting import QUANTIZATIONS

    quantized = record.get("quantized")
    offered = {q for qs in QUANTIZATIONS.values() for q in qs}
    if quantized not in offered or tol.min_cosine is not None:
        return tol, []
    try:
        judged = tol.with_cosines(record)
    except UsageError as exc:
        raise ArtifactError(f"{artifact}: the keras-cut record's cosine rule is damaged "
                            f"({exc})") from exc
    if judged.min_cosine is None:
        return tol, []
    return judged, [f"the artifact is {quantized}-quantized: judged by cosine similarity, at "
                    f"least {judged.min_cosine:g}, the rule its export used and its record "
                    "keeps (give --min-cosine to judge otherwise)"]


def verify_artifact_against_golden(path: Path, golden: goldens.Golden, artifact: Path, fmt: str,
                                   tol: Tolerances, batch_size: int,
                                   say: Progress) -> VerifyReport:
    """The artifact against a golden file: its runtime and NumPy, no TensorFlow."""
    runner = open_artifact(artifact, fmt)
    in_names = [t.name for t in golden.inputs]
    out_names = [t.name for t in golden.outputs]
    if sorted(in_names) != sorted(runner.input_names) or \
            sorted(out_names) != sorted(runner.output_names):
        raise ArtifactError(
            f"{path}: the golden file's inputs and outputs ({', '.join(in_names + out_names)}) "
            f"are not the artifact's ({', '.join(runner.input_names + runner.output_names)}); "
            "was it written for this artifact?")
    tol.check_names(out_names, [t.source for t in golden.outputs])
    checks = [tol.check(t.name, t.source)
              for t in golden.outputs]
    positions = [runner.output_names.index(n) for n in out_names]
    samples = len(golden.input_arrays[0]) if golden.input_arrays else 0
    for number, start in enumerate(range(0, samples, batch_size), 1):
        say(f"batch {number} of {math.ceil(samples / batch_size)}")
        feed = {name: a[start:start + batch_size]
                for name, a in zip(in_names, golden.input_arrays, strict=True)}
        got = run_batch(artifact, runner.run, feed, GOLDEN_HINT)
        for check, position, want in zip(checks, positions, golden.output_arrays, strict=True):
            check.add(got[position], want[start:start + batch_size])
    for check in checks:
        check.finish()
    return VerifyReport(
        parent=f"{golden.parent.get('file')} (golden file {path})", submodel=str(artifact),
        samples=samples, batch_size=batch_size, seed=golden.seed, atol=tol.global_atol,
        rtol=tol.global_rtol, inputs=golden.inputs, outputs=checks,
        weights=WeightCheck(against="golden file"), configs=ConfigCheck(against="golden file"),
        golden=str(path), runtime=runtime_name(fmt), notices=check_notices(checks) + ([
            f"judged by cosine similarity, at least {tol.min_cosine:g}: the rule the golden "
            "file keeps (written for a quantized artifact) or --min-cosine; to judge a float "
            "artifact by atol/rtol, save a golden file from a float one"]
            if tol.min_cosine is not None else []))


def empty_structure() -> ParentStructure:
    """A golden file written for an artifact keeps no layer structure to compare."""
    return ParentStructure({}, {}, [], [], {})
