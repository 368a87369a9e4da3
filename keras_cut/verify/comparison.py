"""How verify judges an output: tolerances (global and per output), error statistics folded
batch by batch, and the verdict. NumPy only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from keras_cut.core.errors import Option, Part, UsageError

# Same weights and same ops agree to ~1e-6 on CPU; these leave room for float32 round-off in
# deep stacks (ResNet50 activations differ by up to ~2e-6 between graph and eager execution).
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-5


@dataclass
class Tolerances:
    """How close a submodel output must be to the parent's: |sub - parent| <= atol +
    rtol * |parent|. A global value left None is the default (1e-5), or, checking a golden
    file, the file's; `atol_for`/`rtol_for` set one output's, by its name or the parent layer
    it stands for."""

    atol: float | None = None
    rtol: float | None = None
    atol_for: dict[str, float] = field(default_factory=dict)
    rtol_for: dict[str, float] = field(default_factory=dict)
    # for a quantized artifact: the least cosine similarity an output must reach
    min_cosine: float | None = None
    min_cosine_for: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for option, value, per in ((Option.ATOL, self.atol, self.atol_for),
                                   (Option.RTOL, self.rtol, self.rtol_for)):
            if value is not None:
                check_tolerance(option, value)
            for name, number in per.items():
                check_tolerance(option, number, name)
        cosines: list[tuple[str, float | None]] = [("", self.min_cosine),
                                                   *self.min_cosine_for.items()]
        for output, cosine in cosines:
            if cosine is not None and not (isinstance(cosine, (int, float)) and
                                           not isinstance(cosine, bool) and -1 <= cosine <= 1):
                raise UsageError(Option.MIN_COSINE, f" {output}=..." if output else "",
                                 f": a cosine similarity is a number from -1 to 1, "
                                 f"not {cosine!r}")

    def over(self, base: Tolerances | None) -> Tolerances:
        """These tolerances, with what they leave unset taken from `base`, then the defaults."""
        base = base or Tolerances()
        atol = self.atol if self.atol is not None else base.atol
        rtol = self.rtol if self.rtol is not None else base.rtol
        cosine = self.min_cosine if self.min_cosine is not None else base.min_cosine
        return Tolerances(DEFAULT_ATOL if atol is None else atol,
                          DEFAULT_RTOL if rtol is None else rtol,
                          {**base.atol_for, **self.atol_for}, {**base.rtol_for, **self.rtol_for},
                          cosine, {**base.min_cosine_for, **self.min_cosine_for})

    def check(self, name: str, source: str) -> OutputCheck:
        """An empty check of one output, judged as these tolerances say."""
        return OutputCheck(name, source, *self.for_output(name, source),
                           min_cosine=self.cosine_for(name, source))

    def cosine_for(self, name: str, source: str) -> float | None:
        """The least cosine similarity an output must reach (None: judged by atol/rtol)."""
        return self.min_cosine_for.get(name, self.min_cosine_for.get(source, self.min_cosine))

    @property
    def global_atol(self) -> float:
        return DEFAULT_ATOL if self.atol is None else self.atol

    @property
    def global_rtol(self) -> float:
        return DEFAULT_RTOL if self.rtol is None else self.rtol

    def check_names(self, names: list[str], sources: list[str]) -> None:
        known = set(names) | set(sources)
        for option, per in ((Option.ATOL, self.atol_for), (Option.RTOL, self.rtol_for),
                            (Option.MIN_COSINE, self.min_cosine_for)):
            for name in per:
                if name not in known:
                    raise UsageError(option, f" {name}=...: the submodel has no output "
                                     f"{name!r} (outputs: {', '.join(names)})")

    def for_output(self, name: str, source: str) -> tuple[float, float]:
        atol = self.atol_for.get(name, self.atol_for.get(source, self.global_atol))
        rtol = self.rtol_for.get(name, self.rtol_for.get(source, self.global_rtol))
        return atol, rtol

    def to_dict(self) -> dict[str, Any]:
        return {"atol": self.global_atol, "rtol": self.global_rtol, "atol_for": self.atol_for,
                "rtol_for": self.rtol_for, "min_cosine": self.min_cosine,
                "min_cosine_for": self.min_cosine_for}

    def with_cosines(self, entry: dict[str, Any]) -> Tolerances:
        """These tolerances with the cosine rule `entry` stores (a golden file's, an artifact
        record's) where they set none: a global --min-cosine given here replaces the stored
        rule whole (per-output values included); a bad value is a UsageError."""
        cosine, per = entry.get("min_cosine"), entry.get("min_cosine_for") or {}
        if not isinstance(per, dict):
            raise UsageError(Option.MIN_COSINE, ": the stored per-output values are not an "
                             "object")
        if self.min_cosine is not None:
            return self
        return replace(self, min_cosine=cosine, min_cosine_for={**per, **self.min_cosine_for})


def check_tolerance(what: Part, value: Any, output: str | None = None) -> float:
    """A tolerance as given: a finite number >= 0 (NaN would pass everything, a negative
    one fail everything, inf hide any difference), else a UsageError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and value >= 0
    if not ok:
        raise UsageError(what, f" {output}=..." if output is not None else "",
                         f": a tolerance is a finite number >= 0, not {value!r}")
    return float(value)


@dataclass
class OutputCheck:
    """One submodel output against the parent tensor it stands for, over every batch."""

    name: str
    source: str
    atol: float
    rtol: float
    shape: list[int | None] = field(default_factory=list)
    parent_shape: list[int | None] = field(default_factory=list)
    dtype: str = ""
    parent_dtype: str = ""
    max_abs_error: float = 0.0
    mean_abs_error: float = 0.0
    median_abs_error: float = 0.0
    max_rel_error: float = 0.0
    cosine_similarity: float = 1.0
    mismatched: int = 0  # elements outside atol + rtol * |parent|
    elements: int = 0
    nan: int = 0
    inf: int = 0
    parent_nonfinite: int = 0  # NaN or Inf in the reference: equal there proves little
    problem: str = ""  # shape/dtype disagreement, if any
    # a quantized artifact is judged by how close its outputs point, not by the float
    # tolerance: cosine similarity at least this (None: judged by atol/rtol)
    min_cosine: float | None = None
    snr_db: float = math.inf  # 10 log10(sum parent^2 / sum (sub - parent)^2)
    parent_max_abs: float = 0.0  # the largest |parent| value seen
    _abs: list[np.ndarray] = field(default_factory=list, repr=False)
    _dots: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0], repr=False)
    _relative: bool = field(default=False, repr=False)  # some parent value was above atol

    @property
    def passed(self) -> bool:
        if self.min_cosine is not None:
            return not self.problem and self.nan == 0 and self.inf == 0 and \
                self.cosine_similarity >= self.min_cosine
        return not self.problem and self.mismatched == 0

    def add(self, got: np.ndarray, want: np.ndarray) -> None:
        """Fold one batch in."""
        self.shape = [None, *got.shape[1:]]
        self.parent_shape = [None, *want.shape[1:]]
        self.dtype, self.parent_dtype = str(got.dtype), str(want.dtype)
        if got.shape[1:] != want.shape[1:] or len(got) != len(want):
            self.problem = (f"shape {tuple(self.shape)} differs from the parent's "
                            f"{tuple(self.parent_shape)}")
        else:
            if got.dtype != want.dtype:
                self.problem = f"dtype {got.dtype} differs from the parent's {want.dtype}"
            self._add_values(got, want)

    def _add_values(self, got: np.ndarray, want: np.ndarray) -> None:
        a, b = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
        self.elements += a.size
        if not a.size:
            return
        with np.errstate(invalid="ignore", over="ignore"):
            diff = a - b
        if np.isfinite(diff).all():  # both finite (the usual case), in few passes
            np.abs(diff, out=diff)
            scale = np.abs(b)
        else:
            self.nan += int(np.isnan(a).sum())
            self.inf += int(np.isinf(a).sum())
            self.parent_nonfinite += int((~np.isfinite(b)).sum())
            diff = error(a, b)
            scale = np.abs(np.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0))
            a, b = np.nan_to_num(a), np.nan_to_num(b)
        self.parent_max_abs = max(self.parent_max_abs, float(scale.max()))
        work = np.multiply(scale, self.rtol)
        work += self.atol
        self.mismatched += int(np.count_nonzero(diff > work))
        self.max_abs_error = max(self.max_abs_error, float(diff.max()))
        big = scale > max(self.atol, np.finfo(np.float32).tiny)
        self._relative = self._relative or bool(big.any())
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(diff, scale, out=work)
        self.max_rel_error = max(self.max_rel_error,
                                 float(np.max(work, where=big, initial=0.0)))
        self._abs.append(diff.astype(np.float32))
        self._dots[0] += float(a @ b)
        self._dots[1] += float(a @ a)
        self._dots[2] += float(b @ b)

    def finish(self) -> None:
        if not self._relative:  # every parent value within atol of 0: no relative error
            self.max_rel_error = math.nan
        if self._abs:
            every = np.concatenate(self._abs)
            finite = every if np.isfinite(every).all() else every[np.isfinite(every)]
            self.mean_abs_error = float(finite.mean(dtype=np.float64)) if finite.size \
                else math.inf
            self.median_abs_error = float(np.median(every, overwrite_input=True))
        dot, aa, bb = self._dots
        if aa == 0.0 and bb == 0.0:
            self.cosine_similarity = 1.0
        elif aa == 0.0 or bb == 0.0:
            self.cosine_similarity = 0.0
        else:
            self.cosine_similarity = dot / math.sqrt(aa * bb)
        noise = max(aa - 2 * dot + bb, 0.0)
        self.snr_db = math.inf if noise == 0.0 else \
            (10 * math.log10(bb / noise) if bb > 0 else -math.inf)
        self._abs = []

    def to_dict(self) -> dict[str, Any]:
        judged = {} if self.min_cosine is None else {
            "min_cosine": self.min_cosine, "snr_db": finite(self.snr_db)}
        return {
            **judged,
            "name": self.name, "source": self.source, "shape": self.shape,
            "parent_shape": self.parent_shape, "dtype": self.dtype,
            "parent_dtype": self.parent_dtype, "atol": self.atol, "rtol": self.rtol,
            "max_abs_error": finite(self.max_abs_error),
            "mean_abs_error": finite(self.mean_abs_error),
            "median_abs_error": finite(self.median_abs_error),
            "max_rel_error": finite(self.max_rel_error),
            "cosine_similarity": finite(self.cosine_similarity),
            "mismatched": self.mismatched, "elements": self.elements, "nan": self.nan,
            "inf": self.inf, "parent_nonfinite": self.parent_nonfinite,
            "problem": self.problem or None, "passed": self.passed,
        }


def error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| elementwise, 0 where both are equal (NaN included), inf where one is NaN."""
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
    return np.where(np.isnan(diff), np.inf, diff)


def agree(got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> tuple[bool, float]:
    """Whether two activations agree within tolerance, and their max absolute error."""
    if got.shape != want.shape:
        return False, math.inf
    a, b = np.asarray(got, np.float64), np.asarray(want, np.float64)
    diff = error(a, b)
    if not diff.size:
        return True, 0.0
    bound = atol + rtol * np.abs(np.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0))
    return bool((diff <= bound).all()), float(diff.max())


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def weak_check_notices(checks: list[OutputCheck]) -> list[str]:
    """Outputs whose parent values are all within the absolute tolerance of zero: any output
    of that size agrees, so agreement proves little; the cosine similarity says more."""
    return [f"every value of the parent's {c.name!r} is within atol ({c.atol:g}) of zero (the "
            f"largest is {c.parent_max_abs:.3g}): agreement within the tolerance proves "
            f"little here; the cosine similarity is {c.cosine_similarity:.3f}, give a smaller "
            "atol to compare them"
            for c in checks if c.min_cosine is None and c.elements
            and c.parent_max_abs <= c.atol
            and c.parent_nonfinite < c.elements]  # all NaN: its own notice says so


LOW_PRECISION = {"float16": "about 3", "bfloat16": "about 2"}  # significant decimal digits


def precision_notices(checks: list[OutputCheck], computes: set[str] | frozenset[str] = frozenset()
                      ) -> list[str]:
    """Failed outputs of a model that computes in float16/bfloat16 (mixed precision: the output
    itself may be float16, or float32 computed in float16) judged by float tolerances: the
    defaults are for float32, and saying so is the useful part of such a failure."""
    low = sorted(d for d in computes if d in LOW_PRECISION)
    notices = []
    for c in checks:
        if c.passed or c.problem or c.min_cosine is not None:
            continue
        dtype = c.dtype if c.dtype in LOW_PRECISION else \
            c.parent_dtype if c.parent_dtype in LOW_PRECISION else None
        how = f"is {dtype}" if dtype else \
            f"is computed in {low[0]} (mixed precision)" if low else None
        if how is None:
            continue
        digits = LOW_PRECISION[dtype or low[0]]
        notices.append(
            f"{c.name!r} {how}, {digits} significant digits, and the tolerance (atol "
            f"{c.atol:g}, rtol {c.rtol:g}) is one for float32; its cosine similarity is "
            f"{c.cosine_similarity:.6f}: if the other side computes in another order or "
            "precision, give tolerances suited to it (e.g. --atol 1e-2 --rtol 1e-2)")
    return notices


def check_notices(checks: list[OutputCheck], computes: set[str] | frozenset[str] = frozenset()
                  ) -> list[str]:
    """What the report should say about how much a verdict means (`computes`: the compute
    dtypes of the model's layers)."""
    return weak_check_notices(checks) + precision_notices(checks, computes)
