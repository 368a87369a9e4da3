"""Text read from a model file, made safe to show: a layer name can hold any character, and a
terminal obeys escape sequences (ESC c resets it, ESC M moves the cursor up over earlier
lines), an XML picture refuses control characters, and bidirectional overrides make a name
read as another. Every such character is shown as a visible stand-in instead, never sent.
"""

from __future__ import annotations

# Bidirectional formatting characters: embeddings and overrides (U+202A-202E), isolates
# (U+2066-2069), the implicit marks (U+200E/200F, U+061C)
BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A)) | \
    {0x200E, 0x200F, 0x061C}
LIMIT = 60  # characters of a name drawn in a picture (the whole name is in its tooltip)


def _stand_in(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode's control pictures: ␛ for ESC, ␀ for NUL
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


_TABLE = {code: _stand_in(code) for code in
          [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *sorted(BIDI)]
          if code not in (0x0A,)}  # a newline stays a newline


_NAME_TABLE = {**_TABLE, 0x0A: _stand_in(0x0A)}


def visible(text: str) -> str:
    """`text` with every control and bidirectional formatting character (C0 but the newline,
    DEL, C1, U+202A-202E, U+2066-2069, U+200E/200F, U+061C) replaced by a visible stand-in."""
    return text.translate(_TABLE)


def name(text: str) -> str:
    """A name from a file as one visible line: `visible`, and a newline shown as `␊` too (a
    name with a line break would read as two). Apply it before Rich sees the text: Rich drops
    BEL, BS, VT, FF and CR silently, so two names could look the same."""
    return text.translate(_NAME_TABLE)


def shell_word(text: str) -> str:
    """`text` as one word for a POSIX shell that shows what it is: `shlex.quote` where every
    character is printable, else bash's `$'…'` with the others escaped (`$'a\x1bb'`), so a
    copied command neither sends them to the terminal nor hides them."""
    import shlex

    if name(text) == text:
        return shlex.quote(text)
    out = []
    for char in text:
        code = ord(char)
        if char in "\\'":
            out.append("\\" + char)
        elif name(char) != char:
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "$'" + "".join(out) + "'"


def bounded(text: str, limit: int = LIMIT) -> str:
    """`visible(text)`, cut to `limit` characters with an ellipsis (for a picture's box)."""
    shown = visible(text)
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"
