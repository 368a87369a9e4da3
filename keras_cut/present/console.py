"""Where output goes: Rich consoles for stdout and stderr (names shown, never sent as control
characters; plain text to pipes) and one JSON document for machines."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.segment import Segment

from keras_cut.core.shown import visible


def _plain() -> bool:
    """NO_COLOR (https://no-color.org) and TERM=dumb: no escape codes at all, bold included."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


class ShownConsole(Console):
    """A Console that never sends a control or bidirectional formatting character from text
    it is given: each is shown as a visible stand-in (`shown.visible`), on every path to the
    stream (tables, fast tables, plain lines, errors). Rich's own escape codes (colours, styles)
    are added after, from its styles, and pass."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(visible(segment.text), segment.style)
            for segment in buffer)


def stdout_console() -> Console:
    """Results go to stdout; a pipe or file gets plain text as wide as the content needs, so
    nothing is wrapped or cut (a terminal gets its own width), or as wide as COLUMNS says
    where the user set it."""
    tty = sys.stdout.isatty()
    return ShownConsole(file=sys.stdout, width=None if tty else _columns() or PIPE_WIDTH,
                        highlight=False, soft_wrap=False,
                        color_system=None if _plain() else "auto")


def _columns() -> int | None:
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and 20 <= int(value) <= PIPE_WIDTH else None


def stderr_console() -> Console:
    return ShownConsole(file=sys.stderr, highlight=False,
                        color_system=None if _plain() else "auto")


PIPE_WIDTH = 10_000  # "unlimited": tables size their columns to the content


def print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, allow_nan=False, default=_default) + "\n")


def _default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
