"""Bytes per element of each dtype name keras-cut meets (Keras' names, which are NumPy's plus
`bfloat16` and the float8 kinds): the one table, read without importing NumPy."""

from __future__ import annotations

DTYPE_BYTES = {
    "bool": 1, "bfloat16": 2, "complex64": 8, "complex128": 16,
    "float8_e4m3fn": 1, "float8_e5m2": 1,
    **{f"{kind}{bits}": bits // 8 for kind in ("int", "uint") for bits in (8, 16, 32, 64)},
    **{f"float{bits}": bits // 8 for bits in (16, 32, 64)},
}


def dtype_bytes(dtype: str | None) -> int | None:
    """Bytes per element, or None for a name outside the table (or no name)."""
    return DTYPE_BYTES.get(dtype or "")
