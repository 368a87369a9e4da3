"""What `verify` reports: each output against the parent, the weights, the configs, the first
diverging layer, and the verdict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keras_cut.model.endpoint import Endpoint
from keras_cut.model.structure import (
    ConfigCheck,
)
from keras_cut.verify.comparison import OutputCheck, finite

DEFAULT_SAMPLES = 32


DEFAULT_BATCH = 8


DEFAULT_SEED = 0


Progress = Callable[[str], None]


if TYPE_CHECKING:
    from keras_cut.verify.locate import Location


@dataclass
class WeightCheck:
    checked: int = 0
    mismatched: list[str] = field(default_factory=list)
    against: str = "parent"  # or "golden file" (SHA-256 of the parent's arrays)

    @property
    def passed(self) -> bool:
        return not self.mismatched

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "mismatched": self.mismatched,
                "against": self.against}


@dataclass
class Divergence:
    """Where a failing output starts to go wrong: the first kept layer call, in graph order,
    whose activation differs from the parent's on the first failing batch."""

    batch: int
    compared: int  # layer calls compared
    layer: str | None = None  # the submodel's layer call (None: every kept layer agrees)
    parent_layer: str | None = None
    max_abs_error: float | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "compared": self.compared, "layer": self.layer,
                "parent_layer": self.parent_layer,
                "max_abs_error": None if self.max_abs_error is None
                else finite(self.max_abs_error), "problem": self.problem or None}


@dataclass
class VerifyReport:
    parent: str
    submodel: str
    samples: int
    batch_size: int
    seed: int | None
    atol: float
    rtol: float
    inputs: list[Endpoint]
    outputs: list[OutputCheck]
    weights: WeightCheck
    configs: ConfigCheck
    notices: list[str] = field(default_factory=list)
    golden: str | None = None  # the golden file checked against, instead of the parent
    saved_golden: str | None = None
    divergence: Divergence | None = None
    runtime: str | None = None  # the submodel is an artifact run in this runtime
    locate: Location | None = None  # where inside the artifact it leaves the parent

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs) and self.weights.passed and \
            self.configs.passed

    def to_dict(self) -> dict[str, Any]:
        runtime = {"runtime": self.runtime} if self.runtime else {}
        return {
            "passed": self.passed, "parent": self.parent, "submodel": self.submodel,
            "samples": self.samples, "batch_size": self.batch_size, "seed": self.seed,
            "atol": self.atol, "rtol": self.rtol, "inputs": [e.label() for e in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs], "weights": self.weights.to_dict(),
            "configs": self.configs.to_dict(), "notices": self.notices, "golden": self.golden,
            "saved_golden": self.saved_golden,
            "divergence": self.divergence.to_dict() if self.divergence else None,
            **runtime,
            **({"locate": self.locate.to_dict()} if self.locate else {}),
        }
