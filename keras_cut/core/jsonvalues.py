"""Values read from a model file's JSON are untrusted: typed views that never raise."""

from __future__ import annotations

from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    """A dict as it is; anything else (a damaged or hostile config) as an empty one."""
    return value if isinstance(value, dict) else {}

