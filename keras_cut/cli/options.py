"""Option values in the command line's own syntax, parsed into the library's typed values."""

from __future__ import annotations

from keras_cut.core.errors import UsageError
from keras_cut.verify.comparison import Tolerances, check_tolerance


def parse_input_shapes(values: list[str]) -> dict[str, tuple[int, ...]]:
    """--input-shape NAME=D1,D2,… (non-batch dimensions)."""
    shapes = {}
    for value in values:
        name, sep, dims = value.partition("=")
        try:
            parsed = tuple(int(d) for d in dims.split(","))
        except ValueError:
            parsed = ()
        if not sep or not name or not parsed or any(d <= 0 for d in parsed):
            raise UsageError(f"--input-shape {value!r}: expected NAME=D1,D2,… with positive "
                             "integers (the dimensions after the batch)")
        shapes[name] = parsed
    return shapes


def parse_tolerances(atol: list[str] | None, rtol: list[str] | None,
                     min_cosine: list[str] | None = None) -> Tolerances:
    """--atol/--rtol/--min-cosine values: a number sets the global value, NAME=number one
    output's."""
    tol = Tolerances()
    for value in min_cosine or []:
        name, sep, number = value.rpartition("=")
        try:
            parsed = float(number)
        except ValueError:
            parsed = float("nan")
        if not -1 <= parsed <= 1 or (sep and not name):
            raise UsageError(f"--min-cosine {value!r}: a number from -1 to 1, or NAME=number "
                             "for one output")
        if sep:
            tol.min_cosine_for[name] = parsed
        else:
            tol.min_cosine = parsed
    for option, values, per in (("--atol", atol, tol.atol_for), ("--rtol", rtol, tol.rtol_for)):
        for value in values or []:
            name, sep, number = value.rpartition("=")
            parsed = _tolerance(option, value, number)
            if sep and not name:
                raise UsageError(f"{option} {value!r}: expected a number or NAME=number")
            if sep:
                per[name] = parsed
            elif option == "--atol":
                tol.atol = parsed
            else:
                tol.rtol = parsed
    return tol


def _tolerance(option: str, value: str, number: str) -> float:
    try:
        return check_tolerance(option, float(number))
    except (ValueError, UsageError):
        raise UsageError(f"{option} {value!r}: a tolerance is a finite number >= 0 (or "
                         "NAME=number for one output)") from None
