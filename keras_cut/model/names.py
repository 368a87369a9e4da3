"""Layer names as users type and read them: one parser, one formatter.

    backbone/block_conv      a layer inside a nested model (path segments joined by `/`)
    shared@1                 call 1 of a layer called several times (calls count from 0)
    encoder@1/proj           a layer inside the second call of a nested model
    lstm[1]                  output 1 of a call with several outputs (an RNN's state)
    dense\\@1                 the layer whose own name is `dense@1` (a backslash escapes `@`,
                             `/`, `[`, `]` and itself; quote it in a shell: 'dense\\@1')

Keras allows `@` and `[` in layer names (and tf.keras 2 allowed `/`), so every name keras-cut
prints escapes those characters and every name it accepts can be one it printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keras_cut.core.errors import Option, UsageError

SPECIAL = "\\/@[]"


@dataclass(frozen=True)
class Segment:
    name: str  # the layer's own name, unescaped
    call: int | None = None  # `@N`, when given
    literal: str | None = None  # the name if `@N` was part of it ("enc@0"), when it could be

    def readings(self) -> list[tuple[str, int | None]]:
        """(layer name, call) this segment can mean: `NAME@N` as call N of NAME first, then as
        the layer named "NAME@N" (`NAME\\@N` has only that reading)."""
        found: list[tuple[str, int | None]] = [(self.name, self.call)]
        if self.literal is not None:
            found.append((self.literal, None))
        return found


@dataclass(frozen=True)
class LayerName:
    segments: tuple[Segment, ...]
    index: int | None = None  # `[i]`: one output of the call

    @property
    def path(self) -> str:
        """The plain path (names joined by `/`, unescaped), for messages and lookups."""
        return "/".join(s.name for s in self.segments)


class NameSyntaxError(ValueError):
    """A name that cannot be parsed (the caller adds which option gave it)."""


def escape(name: str) -> str:
    """One layer's own name as typed: `\\` before each of `\\ / @ [`."""
    return "".join("\\" + c if c in SPECIAL else c for c in name)


def format_name(parts: list[tuple[str, int | None]], index: int | None = None) -> str:
    """[("backbone", 1), ("conv", None)], 0 -> "backbone@1/conv[0]" (names escaped)."""
    text = "/".join(escape(name) + ("" if call is None else f"@{call}") for name, call in parts)
    return text if index is None else f"{text}[{index}]"


def parse_name(text: str) -> LayerName:
    """Parse what a user typed; raise NameSyntaxError for an empty or malformed name."""
    text = text.strip()
    index = None
    if text.endswith("]") and not _is_escaped(text, len(text) - 1):
        start = _unescaped_find(text, "[")
        if start < 0:
            raise NameSyntaxError(f"{text!r} has a `]` without `[`")
        inner = text[start + 1:-1]
        if not inner.isdigit():
            raise NameSyntaxError(f"{text!r}: `[...]` takes an output number, such as [1]")
        index, text = int(inner), text[:start]
    raw_segments = _split(text)
    if not raw_segments or any(not s for s in raw_segments):
        raise NameSyntaxError("an empty layer name" if not text.strip("/") else
                              f"{text!r} has an empty path segment")
    return LayerName(tuple(_segment(s) for s in raw_segments), index)


def _split(text: str) -> list[str]:
    """Split on unescaped `/`, keeping escapes (undone per segment)."""
    parts, current, i = [], [], 0
    text = text.strip("/") if not text.endswith("\\/") else text.lstrip("/")
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if c == "/":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _segment(raw: str) -> Segment:
    at = _unescaped_rfind(raw, "@")
    if at > 0 and raw[at + 1:].isdigit():
        name = _unescape(raw[:at])
        return Segment(name, int(raw[at + 1:]), literal=f"{name}@{raw[at + 1:]}")
    return Segment(_unescape(raw))


def _is_escaped(text: str, pos: int) -> bool:
    """Whether the character at `pos` follows an odd number of backslashes."""
    count = 0
    while pos - count - 1 >= 0 and text[pos - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _unescaped_positions(text: str, char: str) -> list[int]:
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == char:
            found.append(i)
        i += 1
    return found


def _unescaped_find(text: str, char: str) -> int:
    found = _unescaped_positions(text, char)
    return found[0] if found else -1


def _unescaped_rfind(text: str, char: str) -> int:
    found = _unescaped_positions(text, char)
    return found[-1] if found else -1


def compile_filter(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(Option.FILTER,
                         f" {pattern!r} is not a valid regular expression ({exc})") from exc
