"""Running both models batch by batch through the Keras backend (imported only here, when a
model must run), and turning Keras' refusals into one-line errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keras_cut.core.errors import ArtifactError, KerasCutError, LoadError, Option, Part, RunError
from keras_cut.model.endpoint import Role
from keras_cut.verify.comparison import OutputCheck
from keras_cut.verify.correspondence import Correspondence
from keras_cut.verify.report import Progress


def load_submodel(sub_file: Any, unsafe: bool, custom: Any, submodel: Path,
                   label: str | None, notices: list[str]) -> Any:
    """Keras' load of the submodel; `cut --verify` checks a temporary file, so an error names
    the user's output (`label`) instead."""
    from keras_cut.backend.keras import saved

    try:
        sub_model, note = saved.load_saved_model(sub_file, unsafe, custom)
    except LoadError as exc:
        if label is None:
            raise
        raise exc.replaced(str(submodel), label) from exc
    notices += [note] if note else []
    return sub_model


Failure = tuple[int, dict[str, Any], dict[str, Any]]  # batch number, parent feed, sub feed


@dataclass
class Batches:
    """Both models run batch by batch: the parent's activations at the submodel's inputs feed
    the submodel, its activations at the outputs are the reference."""

    parent: Any  # feed by parent input name -> activations at the linked tensors
    sub: tuple[Any, list[int]]  # the submodel's call, and where each linked output is
    links: Correspondence
    checks: list[OutputCheck]
    keep: bool  # keep what was fed and expected (a golden file)
    first_failure: Failure | None = None
    kept_inputs: list[list[np.ndarray]] = field(default_factory=list)
    kept_outputs: list[list[np.ndarray]] = field(default_factory=list)

    def run(self, data: dict[str, np.ndarray], batch_size: int, parent: Path, submodel: Path,
            given: Any, say: Progress) -> None:
        samples = len(next(iter(data.values())))
        run_sub, positions = self.sub
        n_in = len(self.links.inputs)
        direct = self._direct(data)
        for number, start in enumerate(range(0, samples, batch_size), 1):
            say(f"batch {number} of {math.ceil(samples / batch_size)}")
            batch = {name: array[start:start + batch_size] for name, array in data.items()}
            # a submodel fed by the parent's own inputs runs before the parent's answer comes
            # (the parent may be running in its second process meanwhile)
            early = {layer: batch[name] for layer, name in direct.items()}
            got = run_batch(submodel, run_sub, early, given) if early else None
            reference = run_batch(parent, self.parent, batch, given)
            feed = {link.layer: value for link, value in zip(self.links.inputs,
                                                             reference[:n_in], strict=True)}
            if got is None or not _same(early, feed):
                got = run_batch(submodel, run_sub, feed, given)
            for i, check in enumerate(self.checks):
                check.add(got[positions[i]], reference[n_in + i])
            if self.first_failure is None and not all(c.passed for c in self.checks):
                self.first_failure = (number, batch, feed)
            if self.keep:
                self.kept_inputs.append(reference[:n_in])
                self.kept_outputs.append(reference[n_in:])
        for check in self.checks:
            check.finish()

    def _direct(self, data: dict[str, np.ndarray]) -> dict[str, str]:
        """Submodel input layer -> the parent input whose data it takes, when every submodel
        input is one of the parent's own inputs (else empty)."""
        found = {link.layer: link.parent.layer for link in self.links.inputs
                 if link.end.role is Role.PARENT_INPUT and link.parent.context == ()
                 and link.parent.layer in data}
        return found if len(found) == len(self.links.inputs) else {}


def _same(early: dict[str, np.ndarray], feed: dict[str, Any]) -> bool:
    """What the submodel was fed early is exactly what the parent saw at those tensors."""
    return all(np.asarray(feed[k]).dtype == v.dtype and np.array_equal(np.asarray(feed[k]), v)
               for k, v in early.items())


GOLDEN_HINT = "the golden file's inputs do not fit this submodel; was it written for it?"


def run_batch(path: Path, function: Any, feed: dict[str, Any], given: Any) -> list[Any]:
    """Run one batch; Keras refusing the data (an id outside a vocabulary, a shape the model
    cannot take) is a one-line error, not a difference and not a traceback. `given`: the
    --inputs file, or a hint of its own (golden files)."""
    try:
        return function(feed)
    except (KerasCutError, AssertionError):
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())[:240]
        hint: tuple[Part, ...] = (
            (given,) if given == GOLDEN_HINT else ("check the arrays in ", Option.INPUTS)
            if given is not None else
            ("give real data with ", Option.INPUTS, " FILE.npz (and ", Option.INPUT_SHAPES,
             " for unknown dimensions)"))
        if "scope name" in detail:  # TensorFlow names its ops after the layers
            hint = ("TensorFlow refuses a layer name of the model (control characters and "
                    "some punctuation cannot name its operations); rename the layer",)
        raise RunError(f"{path}: Keras could not run the model on the inputs ({detail}); ",
                       *hint) from exc


def submodel_function(sub_model: Any, links: Correspondence, path: Path
                       ) -> tuple[Any, list[int]]:
    """The submodel's compiled call, and where each linked output is among its flat outputs
    (Keras flattens dict outputs by key, not in config order)."""
    from keras_cut.backend.keras import running

    run, keys = running.model_function(sub_model)
    positions = []
    for link in links.outputs:
        key = link.sub
        if key not in keys:
            raise KerasCutError(f"{path}: Keras' loaded submodel has no output {link.name!r} "
                                "where its config has one; the file is inconsistent")
        positions.append(keys.index(key))
    return run, positions


def import_backend(say: Any) -> None:
    """keras-cut's TensorFlow side; a one-line error when TensorFlow cannot be imported."""
    say("loading TensorFlow")
    try:
        from keras_cut.backend.keras import loading

        loading.keras_module()
    except ImportError as exc:
        raise LoadError(f"verify runs both models, and TensorFlow cannot be imported ({exc}); "
                        "install it (pip install tensorflow)") from exc


def artifact_function(artifact: Path, fmt: str, sub_model: Any, links: Correspondence,
                      path: Path) -> tuple[Any, list[int]]:
    """The artifact's run in its own runtime, fed by input name (every artifact keras-cut
    writes names an input after its layer), and where each linked output is among its outputs:
    the artifact was exported from `sub_model`, so its outputs come in the order Keras flattens
    the submodel's (what `submodel_function` finds for the Keras call)."""
    from keras_cut.backend.runtime import open_artifact

    _, positions = submodel_function(sub_model, links, path)
    runner = open_artifact(artifact, fmt)
    layers = [link.layer for link in links.inputs]
    if sorted(layers) != sorted(runner.input_names):
        raise ArtifactError(f"{artifact}: the artifact's inputs ({', '.join(runner.input_names)})"
                            f" are not the submodel's ({', '.join(layers)}); was it exported "
                            f"from {path}?")
    if len(runner.output_names) != len(sub_model.outputs):
        raise ArtifactError(f"{artifact}: the artifact has {len(runner.output_names)} outputs, "
                            f"the submodel {len(sub_model.outputs)}; was it exported from {path}?")
    return runner.run, positions
