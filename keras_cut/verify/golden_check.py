"""Golden files: saving a parent's inputs, answers, tolerances and weight hashes, and checking a
submodel against them without the parent."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from keras_cut.core.address import TensorAddress
from keras_cut.core.writing import atomic_output
from keras_cut.model import provenance
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.structure import (
    ParentStructure,
    check_structure,
)
from keras_cut.verify import golden as goldens
from keras_cut.verify.comparison import Tolerances
from keras_cut.verify.correspondence import Correspondence, endpoint_names
from keras_cut.verify.execution import GOLDEN_HINT, import_backend, run_batch
from keras_cut.verify.report import Progress, VerifyReport, WeightCheck


def write_golden(path: Path, report: VerifyReport, links: Correspondence,
                 inputs: list[list[np.ndarray]], outputs: list[list[np.ndarray]],
                 parent: Path, hashes: dict[str, str], tol: Tolerances,
                 structure: ParentStructure) -> None:
    record = goldens.Golden(
        parent={"file": parent.name, "bytes": parent.stat().st_size}, seed=report.seed,
        samples=report.samples, tolerances=tol,
        inputs=[replace(link.end, shape=(None, *a.shape[1:]), dtype=str(a.dtype))
                for link, a in zip(links.inputs, inputs[0], strict=True)],
        outputs=[replace(link.end, shape=(None, *a.shape[1:]), dtype=str(a.dtype))
                 for link, a in zip(links.outputs, outputs[0], strict=True)],
        weights=hashes, structure=structure,
        input_arrays=[np.concatenate(parts) for parts in zip(*inputs, strict=True)],
        output_arrays=[np.concatenate(parts) for parts in zip(*outputs, strict=True)],
    )
    with atomic_output(path) as pending:
        goldens.write(pending.path, record)
    report.saved_golden = str(path)


def verify_golden(path: Path, golden: goldens.Golden, submodel: Path, sub_flat: FlatGraph,
                   tol: Tolerances, batch_size: int, unsafe: bool, custom_objects: str | None,
                   say: Progress, submodel_label: str | None,
                   sub_assets: dict[str, dict[str, str]]) -> VerifyReport:
    """Check the submodel against a golden file: no parent is opened or loaded."""
    sub = sub_flat.top
    names_in = endpoint_names(sub_flat, sub.inputs)
    names_out = endpoint_names(sub_flat, sub.outputs)
    goldens.check_against(
        golden, path,
        [(n, *_shape_dtype(sub_flat, r)) for n, r in zip(names_in, sub.inputs, strict=True)],
        [(n, *_shape_dtype(sub_flat, r)) for n, r in zip(names_out, sub.outputs, strict=True)],
    )
    tol.check_names(names_out, [t.source for t in golden.outputs])
    import_backend(say)
    from keras_cut.backend.keras import loading, running

    custom = loading.load_custom_objects(custom_objects)
    say(f"loading {submodel_label or submodel}")
    sub_model = loading.load_model(submodel, unsafe=unsafe, custom_objects=custom)
    run, keys = running.model_function(sub_model)
    positions = [keys.index(r.at_top()) for r in sub.outputs]
    checks = [tol.check(name, t.source)
              for name, t in zip(names_out, golden.outputs, strict=True)]
    samples = len(golden.input_arrays[0]) if golden.input_arrays else 0
    for number, start in enumerate(range(0, samples, batch_size), 1):
        say(f"batch {number} of {math.ceil(samples / batch_size)}")
        feed = {r.layer: a[start:start + batch_size]
                for r, a in zip(sub.inputs, golden.input_arrays, strict=True)}
        got = run_batch(Path(submodel_label or submodel), run, feed, GOLDEN_HINT)
        for check, position, want in zip(checks, positions, golden.output_arrays, strict=True):
            check.add(got[position], want[start:start + batch_size])
    for check in checks:
        check.finish()
    record = provenance.read(submodel)
    parent_path = provenance.record_layer_paths(record)
    configs = check_structure(sub_flat, parent_path, golden.structure, provenance.is_frozen(record),
                              sub_assets, against="golden file")
    weights = WeightCheck(against="golden file")
    for sub_path, layer in running.all_layers(sub_model):
        if running.is_model(layer):
            continue
        source = parent_path(sub_path)
        for key, (label, value) in running.weight_state(layer).items():
            weights.checked += 1
            stored = golden.weights.get(goldens.weight_key(source, key))
            if stored is None:
                weights.mismatched.append(f"{sub_path}/{label}: not in the golden file")
            elif goldens.digest(value) != stored:
                weights.mismatched.append(f"{sub_path}/{label}: differs from the parent's "
                                          "(SHA-256)")
    notices = []
    if any(not c.passed for c in checks):
        notices.append("the first diverging layer is found only against the parent model; "
                       "run `keras-cut verify PARENT SUBMODEL` to see it")
    return VerifyReport(
        parent=f"{golden.parent.get('file')} (golden file {path})",
        submodel=submodel_label or str(submodel), samples=samples, batch_size=batch_size,
        seed=golden.seed, atol=tol.global_atol, rtol=tol.global_rtol,
        inputs=golden.inputs,
        outputs=checks, weights=weights, configs=configs, notices=notices, golden=str(path),
    )


def _shape_dtype(flat: FlatGraph, ref: Any) -> tuple[list, str]:
    shape, dtype = flat.shape_dtype(TensorAddress((), ref.layer, ref.call, ref.index))
    return list(shape or []), str(dtype)
